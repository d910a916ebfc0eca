/**
 * OpenTelemetry: the SDK start-up (off unless the standard `OTEL_*`
 * variables ask for it) and the helpers every service uses to start spans and
 * to carry W3C trace context in NATS headers and message payloads, so one
 * push is one trace from ingest on the primary to transfer on a secondary.
 *
 * Only `@opentelemetry/api` is used outside {@link startTelemetry}: without a
 * started SDK every helper is a cheap no-op.
 */
import { INVALID_SPAN_CONTEXT, ProxyTracerProvider, ROOT_CONTEXT, SpanKind, SpanStatusCode, context, propagation, trace } from "@opentelemetry/api";
import type { Context, Link, Span, SpanOptions } from "@opentelemetry/api";

/** A W3C trace context as georep messages carry it (`TraceContext` of `@georep/schema`). */
export interface TraceCarrier {
  readonly traceparent: string;
  readonly tracestate?: string;
}

/** NATS headers, as far as propagation needs them (`MsgHdrs` of `@nats-io/nats-core`). */
export interface HeaderCarrier {
  get(key: string): string;
  set(key: string, value: string): void;
  keys(): string[];
}

/** What {@link startTelemetry} started. */
export interface Telemetry {
  readonly enabled: boolean;
  /** Flushes pending spans and stops the SDK (a no-op when not enabled). */
  shutdown(): Promise<void>;
}

/** Options of {@link startTelemetry}. */
export interface TelemetryOptions {
  /** `service.name` unless `OTEL_SERVICE_NAME` says otherwise. */
  readonly serviceName: string;
  /** Environment to read (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * True when the environment asks for traces: an OTLP endpoint or a traces
 * exporter other than `none`, and the SDK not disabled.
 */
export function telemetryRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === "true") return false;
  const exporter = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  if (exporter === "none") return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || exporter);
}

/**
 * Starts the OpenTelemetry Node SDK when {@link telemetryRequested}: traces
 * exported as the `OTEL_*` variables say (OTLP by default), with spans for
 * HTTP servers and clients, undici (registry requests) and pg (database
 * queries). Metrics and logs stay with Prometheus and pino unless
 * `OTEL_METRICS_EXPORTER` / `OTEL_LOGS_EXPORTER` are set.
 *
 * Call it before the modules it instruments are loaded: each service's
 * `main.ts` imports its `telemetry.ts` first.
 */
export async function startTelemetry(options: TelemetryOptions): Promise<Telemetry> {
  const env = options.env ?? process.env;
  if (!telemetryRequested(env)) return active;
  env.OTEL_METRICS_EXPORTER ??= "none";
  env.OTEL_LOGS_EXPORTER ??= "none";
  const [{ NodeSDK }, { HttpInstrumentation }, { UndiciInstrumentation }, { PgInstrumentation }] = await Promise.all([
    import("@opentelemetry/sdk-node"),
    import("@opentelemetry/instrumentation-http"),
    import("@opentelemetry/instrumentation-undici"),
    import("@opentelemetry/instrumentation-pg"),
  ]);
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ?? options.serviceName,
    instrumentations: [
      // Health probes and scrapes are not worth a trace each.
      new HttpInstrumentation({ ignoreIncomingRequestHook: (request) => /^\/(health|metrics)/.test(request.url ?? "") }),
      new UndiciInstrumentation(),
      new PgInstrumentation({ requireParentSpan: true }),
    ],
  });
  sdk.start();
  active = { enabled: true, shutdown: () => sdk.shutdown() };
  return active;
}

const DISABLED: Telemetry = { enabled: false, shutdown: async () => undefined };
let active: Telemetry = DISABLED;

/** Flushes and stops what {@link startTelemetry} started in this process (for the shutdown hooks). */
export function shutdownTelemetry(): Promise<void> {
  return active.shutdown();
}

const TRACER_NAME = "georep";

/** Options of {@link withSpan}. */
export interface WithSpanOptions {
  /** Parent context (e.g. extracted from a message); default the active one. */
  readonly parent?: Context;
  readonly kind?: SpanKind;
  readonly attributes?: SpanOptions["attributes"];
  readonly links?: readonly Link[];
}

/** The provider the API answers with while no SDK registered one. */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();
/** What {@link withSpan} hands to `fn` while nothing records spans. */
const NOOP_SPAN = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** Whether an SDK registered a tracer provider in this process (spans are recorded somewhere). */
function tracing(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NOOP_PROVIDER;
}

/**
 * Runs `fn` inside a new active span named `name`: the span records an
 * exception and an error status when `fn` throws, and ends either way.
 */
export async function withSpan<T>(name: string, options: WithSpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  // Without an SDK the API would still build a context and a non-recording span per call:
  // ingest calls this thousands of times a second.
  if (!tracing()) return fn(NOOP_SPAN);
  const tracer = trace.getTracer(TRACER_NAME);
  const spanOptions: SpanOptions = {
    kind: options.kind ?? SpanKind.INTERNAL,
    ...(options.attributes === undefined ? {} : { attributes: options.attributes }),
    ...(options.links === undefined ? {} : { links: [...options.links] }),
  };
  return tracer.startActiveSpan(name, spanOptions, options.parent ?? context.active(), async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Puts the active (or given) context's trace headers (`traceparent`, `tracestate`) into NATS headers. */
export function injectTraceHeaders(headers: HeaderCarrier, ctx: Context = context.active()): void {
  propagation.inject(ctx, headers, { set: (carrier, key, value) => carrier.set(key, value) });
}

/** The context a message's trace headers describe (the root context when there are none). */
export function extractTraceHeaders(headers: HeaderCarrier | undefined): Context {
  if (headers === undefined) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, headers, {
    get: (carrier, key) => {
      const value = carrier.get(key);
      return value === "" ? undefined : value;
    },
    keys: (carrier) => carrier.keys(),
  });
}

/** The active (or given) context as a payload field, or undefined when no span is recording. */
export function currentTraceCarrier(ctx: Context = context.active()): TraceCarrier | undefined {
  const out: Record<string, string> = {};
  propagation.inject(ctx, out);
  const traceparent = out.traceparent;
  if (traceparent === undefined) return undefined;
  return out.tracestate === undefined ? { traceparent } : { traceparent, tracestate: out.tracestate };
}

/** The context a payload's trace field describes (the root context when absent). */
export function contextFromCarrier(carrier: TraceCarrier | undefined | null): Context {
  if (carrier === undefined || carrier === null) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, { ...carrier });
}

/** `trace_id` and `span_id` of the active span, for log lines (empty when none). */
export function activeTraceFields(): { trace_id?: string; span_id?: string } {
  const span = trace.getActiveSpan();
  if (span === undefined) return {};
  const { traceId, spanId, traceFlags } = span.spanContext();
  if (!trace.isSpanContextValid(span.spanContext()) || traceFlags === undefined) return {};
  return { trace_id: traceId, span_id: spanId };
}

export { SpanKind };
export type { Context as TraceContextValue, Span };

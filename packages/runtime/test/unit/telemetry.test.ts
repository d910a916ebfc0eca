/** Trace helpers with a real (in-process) OpenTelemetry SDK and an exporter that keeps the spans. */
import { Writable } from "node:stream";
import { NodeSDK } from "@opentelemetry/sdk-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { contextFromCarrier, createLogger, currentTraceCarrier, extractTraceHeaders, injectTraceHeaders, telemetryRequested, withSpan } from "../../src/index.js";
import type { HeaderCarrier } from "../../src/index.js";

interface KeptSpan {
  name: string;
  spanContext(): { traceId: string; spanId: string };
  parentSpanContext?: { spanId: string };
  status: { code: number };
}

const kept: KeptSpan[] = [];
const sdk = new NodeSDK({
  serviceName: "runtime-test",
  instrumentations: [],
  traceExporter: {
    export(spans, done) {
      kept.push(...(spans as unknown as KeptSpan[]));
      done({ code: 0 });
    },
    shutdown: async () => undefined,
  },
});

beforeAll(() => sdk.start());
afterAll(() => sdk.shutdown());

/** NATS-like headers. */
function headers(): HeaderCarrier & { map: Map<string, string> } {
  const map = new Map<string, string>();
  return { map, get: (k) => map.get(k) ?? "", set: (k, v) => void map.set(k, v), keys: () => [...map.keys()] };
}

describe("telemetry", () => {
  it("is requested only by the standard OTEL_* variables", () => {
    expect(telemetryRequested({})).toBe(false);
    expect(telemetryRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" })).toBe(true);
    expect(telemetryRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://127.0.0.1:4318/v1/traces" })).toBe(true);
    expect(telemetryRequested({ OTEL_TRACES_EXPORTER: "console" })).toBe(true);
    expect(telemetryRequested({ OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://x" })).toBe(false);
    expect(telemetryRequested({ OTEL_SDK_DISABLED: "true", OTEL_EXPORTER_OTLP_ENDPOINT: "http://x" })).toBe(false);
  });

  it("carries one trace across a message: headers and payload field, with log lines naming it", async () => {
    const lines: string[] = [];
    const logger = createLogger({ name: "t", destination: new Writable({ write: (chunk: Buffer, _e, cb) => (lines.push(chunk.toString()), cb()) }) });
    const h = headers();
    let payload: ReturnType<typeof currentTraceCarrier>;
    const sent = await withSpan("ingest.publish", {}, async (span) => {
      injectTraceHeaders(h);
      payload = currentTraceCarrier();
      logger.info("publishing");
      return span.spanContext();
    });
    expect(h.map.get("traceparent")).toMatch(new RegExp(`^00-${sent.traceId}-${sent.spanId}-01$`));
    expect(payload?.traceparent).toBe(h.map.get("traceparent"));
    expect(JSON.parse(lines[0]!)).toMatchObject({ trace_id: sent.traceId, span_id: sent.spanId });

    const fromHeaders = await withSpan("event-log.record", { parent: extractTraceHeaders(h) }, async (span) => span.spanContext());
    const fromPayload = await withSpan("transfer.sync", { parent: contextFromCarrier(payload) }, async (span) => span.spanContext());
    expect(fromHeaders.traceId).toBe(sent.traceId);
    expect(fromPayload.traceId).toBe(sent.traceId);
    await expect(withSpan("fails", {}, async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");

    await sdk.shutdown(); // flushes
    const byName = new Map(kept.map((s) => [s.name, s]));
    expect(byName.get("event-log.record")?.parentSpanContext?.spanId).toBe(sent.spanId);
    expect(byName.get("fails")?.status.code).toBe(2); // ERROR
    // without a span there is nothing to carry, and a line has no trace fields
    expect(currentTraceCarrier()).toBeUndefined();
    expect(extractTraceHeaders(undefined)).toBeDefined();
    logger.info("outside");
    expect(JSON.parse(lines[1]!)).not.toHaveProperty("trace_id");
  });
});

/**
 * The ingest HTTP app: registry notifications in, JetStream messages out.
 * `buildApp(deps)` is testable with `inject()` and real NATS; `main.ts`
 * wires config and connections and listens.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { JetStreamClient } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { HttpError, PROMETHEUS_CONTENT_TYPE, SpanKind, createHttpErrorHandler, currentTraceCarrier, withSpan, healthPlugin, notFoundHandler } from "@georep/runtime";
import type { Health, Logger } from "@georep/runtime";
import { NOTIFICATION_ENVELOPE_MEDIA_TYPE, registryEventDeadLetterSubject, registryEventSubject } from "@georep/schema";
import fastify from "fastify";
import type { FastifyRequest } from "fastify";
import { decide } from "./events.js";
import type { Decision } from "./events.js";
import type { IngestMetrics } from "./metrics.js";

/** Paths the registry may be configured with (GitLab's, and a short one). */
export const EVENT_PATHS = ["/api/v4/container_registry_event/events", "/events"] as const;
/** Largest envelope accepted. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;
/** JetStream ack wait per publish; below the registry's notification timeout. */
export const DEFAULT_PUBLISH_TIMEOUT_MS = 1500;
/** Header of dead-lettered messages: why. */
export const DEAD_LETTER_REASON_HEADER = "Georep-Dead-Letter-Reason";

export interface IngestDeps {
  readonly js: JetStreamClient;
  /** The exact `Authorization` header value the registry sends. */
  readonly secret: string;
  readonly logger: Logger;
  readonly metrics: IngestMetrics;
  readonly health: Health;
  readonly bodyLimit?: number;
  readonly publishTimeoutMs?: number;
  /** Clock, for tests. */
  readonly now?: () => Date;
}

/** What an envelope's answer says (200). */
export interface IngestResult {
  readonly received: number;
  readonly published: number;
  readonly duplicates: number;
  readonly ignored: number;
  readonly dead_lettered: number;
}

const digestOf = (value: string) => createHash("sha256").update(value, "utf8").digest();

/**
 * A constant-time check of the `Authorization` header: both sides are
 * hashed to a fixed length first, so neither the content nor the length of
 * the secret leaks through timing.
 */
export function createSecretCheck(expected: string): (given: string | undefined) => boolean {
  const want = digestOf(expected);
  return (given) => given !== undefined && timingSafeEqual(digestOf(given), want);
}

const ACCEPTED_TYPES = [NOTIFICATION_ENVELOPE_MEDIA_TYPE, "application/json"];

export async function buildApp(deps: IngestDeps) {
  const { js, logger, metrics } = deps;
  const publishTimeout = deps.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS;
  const now = deps.now ?? (() => new Date());
  const app = fastify({ loggerInstance: logger, bodyLimit: deps.bodyLimit ?? DEFAULT_BODY_LIMIT });
  // No child logger per request: at thousands of envelopes a second, building one (with
  // redaction) is a visible share of the CPU; log lines carry event ids instead.
  app.setChildLoggerFactory((parent) => parent);
  app.setErrorHandler(createHttpErrorHandler(logger));
  app.setNotFoundHandler(notFoundHandler);
  // Distribution's own type is JSON too; every other type is refused with 415 by fastify.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(ACCEPTED_TYPES, { parseAs: "string" }, (_request, body, done) => {
    try {
      done(null, JSON.parse(body as string) as unknown);
    } catch (error) {
      done(new HttpError(400, "INGEST_ERR_INVALID_JSON", `body is not JSON: ${(error as Error).message}`), undefined);
    }
  });
  app.addHook("onResponse", async (request, reply) => {
    if ((EVENT_PATHS as readonly string[]).includes(request.routeOptions.url ?? "")) metrics.requests.inc({ status: String(reply.statusCode) });
  });
  await app.register(healthPlugin, { health: deps.health });
  app.get("/metrics", { logLevel: "warn" }, async (_request, reply) => reply.type(PROMETHEUS_CONTENT_TYPE).send(await metrics.registry.render()));

  const secretMatches = createSecretCheck(deps.secret);
  const authenticate = async (request: FastifyRequest) => {
    if (!secretMatches(request.headers.authorization)) {
      metrics.rejected.inc({ reason: "unauthorized" });
      throw new HttpError(401, "INGEST_ERR_UNAUTHORIZED", "missing or wrong Authorization header");
    }
  };

  async function publish(decision: Extract<Decision, { kind: "publish" }>): Promise<boolean> {
    const { event } = decision;
    const attributes = { "georep.repository": event.repository, "georep.action": event.action, ...(event.tag === undefined ? {} : { "georep.tag": event.tag }) };
    return withSpan("ingest.event", { kind: SpanKind.PRODUCER, attributes }, async () => {
      // The push's trace starts here (or in the registry, when it sent a traceparent) and travels
      // in the payload, which event-log stores and passes on.
      const trace = currentTraceCarrier();
      const payload = trace === undefined ? event : { ...event, trace };
      const ack = await js.publish(decision.subject, JSON.stringify(payload), { msgID: event.id, timeout: publishTimeout });
      return ack.duplicate;
    });
  }

  async function deadLetter(decision: Extract<Decision, { kind: "dead-letter" }>, raw: unknown): Promise<void> {
    const action = /^[a-z_]+$/.test(decision.action) ? decision.action : "invalid";
    const subject = registryEventDeadLetterSubject(registryEventSubject(action, decision.repository === "" ? "-" : decision.repository));
    const h = natsHeaders();
    h.set(DEAD_LETTER_REASON_HEADER, `${decision.reason}: ${decision.detail}`.slice(0, 1024));
    await js.publish(subject, JSON.stringify(raw), { headers: h, timeout: publishTimeout, ...(decision.id === undefined ? {} : { msgID: `dlq:${decision.id}` }) });
  }

  const handler = async (request: FastifyRequest): Promise<IngestResult> => {
    const body = request.body as { events?: unknown } | null;
    if (typeof body !== "object" || body === null || Array.isArray(body) || !Array.isArray(body.events)) {
      metrics.rejected.inc({ reason: "not_an_envelope" });
      throw new HttpError(400, "INGEST_ERR_NOT_AN_ENVELOPE", 'body is not a notification envelope: expected {"events": [...]}');
    }
    const receivedAt = now().toISOString();
    const events = body.events as unknown[];
    metrics.received.inc({}, events.length);
    const decisions = events.map((raw) => ({ raw, decision: decide(raw, receivedAt) }));
    const result = { received: events.length, published: 0, duplicates: 0, ignored: 0, dead_lettered: 0 };
    try {
      await Promise.all(
        decisions.map(async ({ raw, decision }) => {
          if (decision.kind === "ignore") {
            metrics.ignored.inc({ reason: decision.reason });
            result.ignored++;
          } else if (decision.kind === "dead-letter") {
            await deadLetter(decision, raw);
            metrics.rejected.inc({ reason: decision.reason });
            request.log.warn({ eventId: decision.id, reason: decision.reason, detail: decision.detail }, "event dead-lettered");
            result.dead_lettered++;
          } else if (await publish(decision)) {
            metrics.duplicates.inc();
            result.duplicates++;
          } else {
            metrics.published.inc({ action: decision.event.action });
            result.published++;
          }
        }),
      );
    } catch (error) {
      // Not every event is durable: the registry must retry the whole envelope (duplicates dedupe by event id).
      throw new HttpError(503, "INGEST_ERR_NATS_UNAVAILABLE", "events could not be stored in JetStream; retry later", { cause: error });
    }
    return result;
  };

  // Per-request logs at warn: a busy registry sends many envelopes; counters tell the volume.
  for (const url of EVENT_PATHS) app.post(url, { onRequest: authenticate, logLevel: "warn" }, handler);
  return app;
}

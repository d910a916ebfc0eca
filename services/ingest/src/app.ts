/**
 * The ingest HTTP app: registry notifications in, JetStream messages out.
 * `buildApp(deps)` is testable with `inject()` and real NATS; `main.ts`
 * wires config and connections and listens.
 */
import { createHash, hash, timingSafeEqual } from "node:crypto";
import type { JetStreamClient } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { HttpError, PROMETHEUS_CONTENT_TYPE, SpanKind, createHttpErrorHandler, currentTraceCarrier, withSpan, healthPlugin, notFoundHandler } from "@georep/runtime";
import type { Health, Logger } from "@georep/runtime";
import { BlobPushedHint, NOTIFICATION_ENVELOPE_MEDIA_TYPE, SUBJECTS, encodeJson, registryEventDeadLetterSubject, registryEventSubject } from "@georep/schema";
import fastify from "fastify";
import type { FastifyReply, FastifyRequest } from "fastify";
import { DEAD_LETTER_REASONS, IGNORE_REASONS, decide } from "./events.js";
import type { Decision } from "./events.js";
import type { IngestMetrics } from "./metrics.js";

/** Paths the registry may be configured with (GitLab's, and a short one). */
export const EVENT_PATHS = ["/api/v4/container_registry_event/events", "/events"] as const;
/**
 * Paths of the registry's second endpoint, which sends blob pushes only: each
 * is announced (see {@link IngestDeps.blobHints}), nothing is stored. A queue
 * of its own in the registry, so that a blob per layer pushed never delays
 * the manifest events behind it (Distribution sends each endpoint's events
 * one request at a time).
 */
export const BLOB_EVENT_PATHS = ["/api/v4/container_registry_event/blob-events", "/blob-events"] as const;
const COUNTED_PATHS: ReadonlySet<string> = new Set([...EVENT_PATHS, ...BLOB_EVENT_PATHS]);
/** Smallest blob push announced to secondaries by default: below it, the manifest's sync copies the blob at little cost. */
export const DEFAULT_BLOB_HINT_MIN_BYTES = 1024 * 1024;
/** Largest envelope accepted. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;
/** JetStream ack wait per publish; below the registry's notification timeout. */
export const DEFAULT_PUBLISH_TIMEOUT_MS = 1500;
/** Header of dead-lettered messages: why. */
export const DEAD_LETTER_REASON_HEADER = "Georep-Dead-Letter-Reason";
/**
 * Most events one envelope may carry. Distribution sends one event per
 * envelope; a body of 100,000 tiny bad events would otherwise become
 * 100,000 dead letters per delivery attempt, outlast the registry's
 * notification timeout and be sent again.
 */
export const DEFAULT_MAX_EVENTS = 1000;
/** Longest repository that names a dead letter's subject (NATS refuses a subject longer than its 4 KiB control line). */
const MAX_SUBJECT_REPOSITORY = 255;
/** Longest action that names a dead letter's subject. */
const MAX_SUBJECT_ACTION = 32;
/** Longest event id used as a message id as it is; longer ones are hashed. */
const MAX_MSG_ID = 256;
/** Largest dead-letter payload: headers and payload together must stay under NATS's max_payload (1 MiB by default). */
const MAX_DEAD_LETTER_BYTES = 256 * 1024;
/** Characters a NATS header value cannot carry (CR, LF) and Postgres text cannot hold (NUL): every C0 control and DEL. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what is looked for
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

export interface IngestDeps {
  readonly js: JetStreamClient;
  /** The exact `Authorization` header value the registry sends. */
  readonly secret: string;
  readonly logger: Logger;
  readonly metrics: IngestMetrics;
  readonly health: Health;
  readonly bodyLimit?: number;
  /** Default {@link DEFAULT_MAX_EVENTS}. */
  readonly maxEvents?: number;
  readonly publishTimeoutMs?: number;
  /**
   * Blob pushes of at least `minBytes` are announced on `georep.blobs.pushed`
   * (core NATS, no wait), so secondaries can copy large blobs while the rest
   * of the image is still being pushed. None without it.
   */
  readonly blobHints?: { readonly nc: NatsConnection; readonly minBytes: number };
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

const digestOf = (value: string) => hash("sha256", value, "buffer");

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

/** `value` with every control character written as a `\uXXXX` escape, so it fits in a NATS header. */
function headerText(value: string): string {
  return value.replace(new RegExp(CONTROL_CHARACTERS.source, "g"), (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** A message id for `id`: itself when it can be a header value, else its SHA-256 (still the same id on every retry). */
function messageId(id: string): string {
  return id.length <= MAX_MSG_ID && !CONTROL_CHARACTERS.test(id) ? id : `sha256:${createHash("sha256").update(id, "utf8").digest("hex")}`;
}

/** The dead letter's payload: the event as JSON, or a stand-in when it cannot be serialised or is too large for NATS. */
function deadLetterPayload(raw: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(raw);
  } catch (error) {
    // 100,000 nested arrays parse, but serialising them again exhausts the stack.
    return JSON.stringify({ georep_unserializable_event: (error as Error).message });
  }
  const bytes = Buffer.byteLength(text, "utf8");
  return bytes <= MAX_DEAD_LETTER_BYTES ? text : JSON.stringify({ georep_truncated_event: { bytes, sha256: createHash("sha256").update(text, "utf8").digest("hex"), head: text.slice(0, 4096) } });
}

/** Longest media type published (RFC 6838: at most 127 characters each for type and subtype). */
const MAX_MEDIA_TYPE = 255;

/**
 * What keeps a publish decision from being stored as it is, or `undefined`.
 * The id is the `Nats-Msg-Id` header (which cannot carry CR/LF); the id and
 * the media type are stored in Postgres text (which cannot hold NUL); and
 * the media type of a delete is otherwise unchecked, so its length must be
 * bounded for the message to stay under NATS's max_payload.
 */
function unstorable(event: Extract<Decision, { kind: "publish" }>["event"]): string | undefined {
  if (CONTROL_CHARACTERS.test(event.id)) return "/id: must not contain control characters";
  if (event.media_type === undefined) return undefined;
  if (CONTROL_CHARACTERS.test(event.media_type)) return "/media_type: must not contain control characters";
  if (event.media_type.length > MAX_MEDIA_TYPE) return `/media_type: longer than ${MAX_MEDIA_TYPE} characters`;
  return undefined;
}

/** The decision, or a dead letter when a publish decision's event cannot be stored as it is ({@link unstorable}). */
function storable(decision: Decision): Decision {
  if (decision.kind !== "publish") return decision;
  const problem = unstorable(decision.event);
  if (problem === undefined) return decision;
  const { event } = decision;
  return { kind: "dead-letter", reason: DEAD_LETTER_REASONS.INVALID_FIELDS, detail: problem, id: event.id, action: event.action, repository: event.repository };
}

/**
 * Runs the tasks handed to it during one turn of the event loop together, in
 * one synchronous pass (in `setImmediate`). nats.js writes what was published
 * in one pass to its socket at once, so envelopes arriving on many
 * connections at the same time cost one write to the NATS server instead of
 * one each; alone, a task waits one turn of the loop.
 */
export function createTurnBatcher(): <T>(task: () => Promise<T>) => Promise<T> {
  let queued: (() => void)[] | undefined;
  const run = () => {
    const tasks = queued ?? [];
    queued = undefined;
    for (const start of tasks) start();
  };
  return (task) =>
    new Promise((resolve, reject) => {
      if (queued === undefined) {
        queued = [];
        setImmediate(run);
      }
      queued.push(() => {
        try {
          task().then(resolve, reject);
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    });
}

export async function buildApp(deps: IngestDeps) {
  const { js, logger, metrics } = deps;
  const publishTimeout = deps.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS;
  const maxEvents = deps.maxEvents ?? DEFAULT_MAX_EVENTS;
  const now = deps.now ?? (() => new Date());
  const together = createTurnBatcher();
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
  // Hooks on the envelope path take callbacks: an async hook costs a promise per request.
  app.addHook("onResponse", (request, reply, done) => {
    if (COUNTED_PATHS.has(request.routeOptions.url ?? "")) metrics.requests.inc({ status: String(reply.statusCode) });
    done();
  });
  await app.register(healthPlugin, { health: deps.health });
  app.get("/metrics", { logLevel: "warn" }, async (_request, reply) => reply.type(PROMETHEUS_CONTENT_TYPE).send(await metrics.registry.render()));

  const secretMatches = createSecretCheck(deps.secret);
  const authenticate = (request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void) => {
    if (secretMatches(request.headers.authorization)) return done();
    metrics.rejected.inc({ reason: "unauthorized" });
    done(new HttpError(401, "INGEST_ERR_UNAUTHORIZED", "missing or wrong Authorization header"));
  };

  async function publish(decision: Extract<Decision, { kind: "publish" }>): Promise<boolean> {
    const { event } = decision;
    const attributes = { "georep.repository": event.repository, "georep.action": event.action, ...(event.tag === undefined ? {} : { "georep.tag": event.tag }) };
    return withSpan("ingest.event", { kind: SpanKind.PRODUCER, attributes }, async () => {
      // The push's trace starts here (or in the registry, when it sent a traceparent) and travels
      // in the payload, which event-log stores and passes on.
      const trace = currentTraceCarrier();
      const payload = trace === undefined ? event : { ...event, trace };
      const data = JSON.stringify(payload);
      const ack = await together(() => js.publish(decision.subject, data, { msgID: event.id, timeout: publishTimeout }));
      return ack.duplicate;
    });
  }

  async function deadLetter(decision: Extract<Decision, { kind: "dead-letter" }>, raw: unknown): Promise<void> {
    // The subject, headers and payload must be what NATS accepts whatever the event holds: a refused
    // publish would fail the envelope, and the registry would send it again forever.
    const action = decision.action.length <= MAX_SUBJECT_ACTION && /^[a-z_]+$/.test(decision.action) ? decision.action : "invalid";
    const repository = decision.repository === "" || decision.repository.length > MAX_SUBJECT_REPOSITORY ? "-" : decision.repository;
    const subject = registryEventDeadLetterSubject(registryEventSubject(action, repository));
    const h = natsHeaders();
    h.set(DEAD_LETTER_REASON_HEADER, headerText(`${decision.reason}: ${decision.detail}`).slice(0, 1024));
    const data = deadLetterPayload(raw);
    await together(() => js.publish(subject, data, { headers: h, timeout: publishTimeout, ...(decision.id === undefined ? {} : { msgID: `dlq:${messageId(decision.id)}` }) }));
  }

  /** A hint, not a record: a failed publish is counted and the envelope goes on. */
  function announceBlob(hint: BlobPushedHint): void {
    const hints = deps.blobHints;
    if (hints === undefined || hint.size < hints.minBytes) return;
    const attributes = { "georep.repository": hint.repository, "georep.digest": hint.digest, "georep.size": hint.size };
    void withSpan("ingest.blob", { kind: SpanKind.PRODUCER, attributes }, async () => {
      // The secondaries' copies of the blob join the trace of its notification.
      const trace = currentTraceCarrier();
      try {
        hints.nc.publish(SUBJECTS.BLOB_PUSHED, encodeJson(BlobPushedHint, trace === undefined ? hint : { ...hint, trace }));
        metrics.blobHints.inc({ result: "published" });
      } catch (err) {
        metrics.blobHints.inc({ result: "failed" });
        logger.debug({ err, digest: hint.digest }, "cannot announce a blob push");
      }
    });
  }

  /** The events of an envelope (counted as received), or a 400/413 for a body that is not one or too many. */
  function envelopeEvents(request: FastifyRequest): unknown[] {
    const body = request.body as { events?: unknown } | null;
    if (typeof body !== "object" || body === null || Array.isArray(body) || !Array.isArray(body.events)) {
      metrics.rejected.inc({ reason: "not_an_envelope" });
      throw new HttpError(400, "INGEST_ERR_NOT_AN_ENVELOPE", 'body is not a notification envelope: expected {"events": [...]}');
    }
    const events = body.events as unknown[];
    if (events.length > maxEvents) {
      metrics.rejected.inc({ reason: "too_many_events" });
      throw new HttpError(413, "INGEST_ERR_TOO_MANY_EVENTS", `the envelope carries ${events.length} events; at most ${maxEvents} are accepted`);
    }
    metrics.received.inc({}, events.length);
    return events;
  }

  /** The blob endpoint: blob pushes are announced; nothing is stored, whatever else arrives is counted and dropped. */
  const blobHandler = async (request: FastifyRequest): Promise<IngestResult> => {
    const events = envelopeEvents(request);
    const receivedAt = now().toISOString();
    for (const raw of events) {
      const decision = decide(raw, receivedAt);
      if (decision.kind === "ignore" && decision.hint !== undefined) announceBlob(decision.hint);
      metrics.ignored.inc({ reason: decision.kind === "ignore" ? decision.reason : IGNORE_REASONS.NOT_A_BLOB_PUSH });
    }
    return { received: events.length, published: 0, duplicates: 0, ignored: events.length, dead_lettered: 0 };
  };

  const handler = async (request: FastifyRequest): Promise<IngestResult> => {
    const events = envelopeEvents(request);
    const receivedAt = now().toISOString();
    const decisions = events.map((raw) => ({ raw, decision: storable(decide(raw, receivedAt)) }));
    const result = { received: events.length, published: 0, duplicates: 0, ignored: 0, dead_lettered: 0 };
    try {
      await Promise.all(
        decisions.map(async ({ raw, decision }) => {
          if (decision.kind === "ignore") {
            metrics.ignored.inc({ reason: decision.reason });
            result.ignored++;
            if (decision.hint !== undefined) announceBlob(decision.hint);
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
  // The answer's schema lets fastify serialise it with a compiled function instead of JSON.stringify.
  const count = { type: "integer" } as const;
  const response = { 200: { type: "object", properties: { received: count, published: count, duplicates: count, ignored: count, dead_lettered: count } } } as const;
  for (const url of EVENT_PATHS) app.post(url, { onRequest: authenticate, logLevel: "warn", schema: { response } }, handler);
  for (const url of BLOB_EVENT_PATHS) app.post(url, { onRequest: authenticate, logLevel: "warn", schema: { response } }, blobHandler);
  return app;
}

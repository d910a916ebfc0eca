/**
 * What the dispatcher does with one message of the mirrored GEO_EVENTS:
 * the event becomes a tracking request (a new generation of the
 * repository's row), then the message is acked.
 */
import type { JsMsg } from "@nats-io/jetstream";
import type { Kysely } from "kysely";
import { GeoEvent, decodeJson } from "@georep/schema";
import { requestSync } from "@georep/tracking";
import type { TrackingDatabase } from "@georep/tracking";
import { SpanKind, contextFromCarrier, currentTraceCarrier, extractTraceHeaders, withSpan } from "@georep/runtime";
import type { Logger } from "@georep/runtime";
import type { Metrics } from "./metrics.js";

/** What to do with a message once handled. */
export type Outcome =
  /** The row is updated: `ack`. */
  | { readonly kind: "ack"; readonly repository: string }
  /** Not a GeoEvent: `term` (redelivering it cannot help). */
  | { readonly kind: "term"; readonly reason: string }
  /** Postgres unavailable: `nak` with a delay and pause. */
  | { readonly kind: "retry"; readonly error: unknown };

/** Dependencies of {@link createEventHandler}. */
export interface EventHandlerDeps {
  readonly db: Kysely<TrackingDatabase>;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/**
 * Handles one GEO_EVENTS message and says what to do with it; it never
 * acks itself and never throws. A redelivered event bumps the generation
 * once more, which costs at most one extra (cheap, nothing-to-copy) sync,
 * never a lost one.
 */
export function createEventHandler(deps: EventHandlerDeps): (message: JsMsg) => Promise<Outcome> {
  const { db, metrics } = deps;
  return async (message) => {
    const log = deps.logger.child({ subject: message.subject, seq: message.seq, deliveries: message.info.deliveryCount });
    const decoded = decodeJson(GeoEvent, message.data);
    if (!decoded.ok) {
      const reason = decoded.problems.map((p) => `${p.path === "" ? "(root)" : p.path}: ${p.message}`).join("; ");
      metrics.inc("eventsInvalid");
      log.warn({ reason }, "invalid geo event terminated");
      return { kind: "term", reason };
    }
    const event = decoded.value;
    // The pattern lets an impossible date through (month 13): then the arrival time stands in.
    const createdAt = new Date(event.created_at);
    // This event's part of the push's trace; the row keeps the context for the sync's job.
    const parent = event.trace === undefined ? extractTraceHeaders(message.headers) : contextFromCarrier(event.trace);
    const failure = await withSpan(
      "dispatcher.event",
      { parent, kind: SpanKind.CONSUMER, attributes: { "georep.repository": event.repository, "georep.event_type": event.event_type } },
      async () => {
        try {
          // A tag push names its tag (the next sync may resolve only the tags named); anything else asks for a full sync.
          const tag = event.event_type === "push" ? event.tag : undefined;
          // With the digest the event names, the sync checks the tag really points there (see SyncOptions.awaited).
          await requestSync(db, event.repository, "event", Number.isNaN(createdAt.getTime()) ? new Date() : createdAt, tag, {
            digest: tag === undefined ? undefined : event.digest,
            trace: currentTraceCarrier(),
          });
          return undefined;
        } catch (error) {
          return error;
        }
      },
    );
    if (failure !== undefined) {
      log.warn({ err: failure, repository: event.repository }, "cannot record the geo event; will retry");
      return { kind: "retry", error: failure };
    }
    metrics.inc("eventsConsumed");
    log.debug({ repository: event.repository, eventId: event.id, type: event.event_type }, "geo event recorded");
    return { kind: "ack", repository: event.repository };
  };
}

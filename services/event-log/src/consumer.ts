/**
 * The `event-log` consumer of REGISTRY_EVENTS: its definition and what is
 * done with each message.
 */
import { headers as natsHeaders, nanos } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy } from "@nats-io/jetstream";
import type { ConsumerConfig, JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import type { Kysely } from "kysely";
import {
  HEADERS,
  RegistryEvent,
  STREAM_NAMES,
  SUBJECTS,
  decodeJson,
  registryEventDeadLetterSubject,
} from "@georep/schema";
import { SpanKind, contextFromCarrier, currentTraceCarrier, ensureConsumer as ensureDurableConsumer, extractTraceHeaders, withSpan } from "@georep/runtime";
import type { EnsureConsumerAction, Logger, TraceCarrier } from "@georep/runtime";

export type { EnsureConsumerAction };
import { insertGeoEvent, isPermanentDatabaseError } from "./db.js";
import type { EventLogDatabase, InsertResult } from "./db.js";
import { rowFromRegistryEvent } from "./mapping.js";
import type { Metrics } from "./metrics.js";
import type { Outbox } from "./outbox.js";

/** Name of the durable pull consumer all replicas share. */
export const CONSUMER_NAME = "event-log";

/**
 * Headers of a dead-lettered message. The reason header is the one ingest
 * sets on what it dead-letters, so one DLQ reads the same whoever wrote it.
 */
export const DEAD_LETTER_HEADERS = {
  /** Why the message was dead-lettered (at most {@link MAX_REASON_LENGTH} characters). */
  REASON: "Georep-Dead-Letter-Reason",
  /** The stream the message came from. */
  STREAM: "Georep-Dead-Letter-Stream",
  /** Its sequence in that stream. */
  SEQUENCE: "Georep-Dead-Letter-Sequence",
  /** Its subject. */
  SUBJECT: "Georep-Dead-Letter-Subject",
  /** Its `Nats-Msg-Id`, when it had one. */
  MSG_ID: "Georep-Dead-Letter-Msg-Id",
} as const;

/** Longest reason put into a header or a `term`. */
export const MAX_REASON_LENGTH = 1024;

/** Settings of the consumer. */
export interface ConsumerOptions {
  readonly ackWaitMs: number;
  readonly maxAckPending: number;
  readonly publishTimeoutMs: number;
}

/** The consumer configuration event-log wants. */
export function consumerConfig(options: ConsumerOptions): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    durable_name: CONSUMER_NAME,
    description: "event-log: REGISTRY_EVENTS → geo_events → GEO_EVENTS",
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: SUBJECTS.REGISTRY_EVENTS_ALL,
    ack_wait: nanos(options.ackWaitMs),
    // Never give up on a message: poison goes to the DLQ, and a Postgres outage must not lose events.
    max_deliver: -1,
    max_ack_pending: options.maxAckPending,
  };
}

/**
 * Creates the durable consumer, or updates the settings that differ, or
 * does nothing. Safe for replicas starting together.
 */
export async function ensureConsumer(jsm: JetStreamManager, options: ConsumerOptions): Promise<EnsureConsumerAction> {
  return ensureDurableConsumer(jsm, STREAM_NAMES.REGISTRY_EVENTS, consumerConfig(options), ["description", "filter_subject", "ack_wait", "max_ack_pending", "max_deliver"]);
}

/** What to do with a message once handled. */
export type Outcome =
  /** Done (stored, and published or left to the outbox). */
  | { readonly kind: "ack" }
  /** Poison, already in the DLQ: `term` it. */
  | { readonly kind: "term"; readonly reason: string }
  /** Postgres or JetStream unavailable: `nak` with a delay and pause. */
  | { readonly kind: "retry"; readonly error: unknown };

/** Dependencies of {@link createMessageHandler}. */
export interface MessageHandlerDeps {
  readonly db: Kysely<EventLogDatabase>;
  readonly js: JetStreamClient;
  readonly outbox: Outbox;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly publishTimeoutMs: number;
}

/** Header values cannot hold line breaks; keep reasons short and on one line. */
function oneLine(reason: string): string {
  return reason.replace(/[\r\n]+/g, " ").slice(0, MAX_REASON_LENGTH);
}

/**
 * Handles one REGISTRY_EVENTS message and says what to do with it; it
 * never acks itself and never throws.
 *
 * - invalid payload (not JSON, not a RegistryEvent), or values Postgres
 *   refuses (SQLSTATE class 22/23) → copied to the DLQ with the reason, then `term`;
 * - valid → inserted (a registry id already present inserts nothing) and
 *   handed to the outbox, then `ack`. A failed GEO_EVENTS publish is still
 *   `ack`: the row is committed and the outbox owns its publication, so a
 *   redelivery could only do what the outbox does anyway;
 * - Postgres unavailable, or the DLQ publish failed → `retry`.
 */
export function createMessageHandler(deps: MessageHandlerDeps): (message: JsMsg) => Promise<Outcome> {
  const { db, js, outbox, metrics } = deps;

  async function deadLetter(message: JsMsg, reason: string, log: Logger): Promise<Outcome> {
    const text = oneLine(reason);
    let subject: string;
    try {
      subject = registryEventDeadLetterSubject(message.subject);
    } catch {
      subject = `${SUBJECTS.REGISTRY_EVENTS_DLQ}.invalid.-`;
    }
    const h = natsHeaders();
    h.set(DEAD_LETTER_HEADERS.REASON, text);
    h.set(DEAD_LETTER_HEADERS.STREAM, message.info.stream);
    h.set(DEAD_LETTER_HEADERS.SEQUENCE, String(message.seq));
    h.set(DEAD_LETTER_HEADERS.SUBJECT, message.subject);
    const msgId = message.headers?.get(HEADERS.MSG_ID);
    if (msgId !== undefined && msgId !== "") h.set(DEAD_LETTER_HEADERS.MSG_ID, msgId);
    const traceparent = message.headers?.get(HEADERS.TRACEPARENT);
    if (traceparent !== undefined && traceparent !== "") h.set(HEADERS.TRACEPARENT, traceparent);
    try {
      await js.publish(subject, message.data, {
        headers: h,
        // A redelivered poison message is dead-lettered once.
        msgID: `dlq:${message.info.stream}:${message.seq}`,
        timeout: deps.publishTimeoutMs,
        expect: { streamName: STREAM_NAMES.REGISTRY_EVENTS_DLQ },
      });
    } catch (error) {
      log.warn({ err: error }, "cannot dead-letter an invalid registry event; will retry");
      return { kind: "retry", error };
    }
    metrics.inc("deadLettered");
    log.warn({ reason: text, dlqSubject: subject }, "invalid registry event dead-lettered");
    return { kind: "term", reason: text };
  }

  return async (message) => {
    metrics.inc("eventsConsumed");
    const log = deps.logger.child({
      subject: message.subject,
      seq: message.seq,
      deliveries: message.info.deliveryCount,
    });
    const decoded = decodeJson(RegistryEvent, message.data);
    if (!decoded.ok) {
      const reason = decoded.problems.map((p) => `${p.path === "" ? "(root)" : p.path}: ${p.message}`).join("; ");
      return deadLetter(message, `invalid RegistryEvent: ${reason}`, log);
    }
    const event = decoded.value;
    // The push's trace goes on: this record is a child of ingest's span, and the row carries
    // this span's context to GEO_EVENTS (and across the leafnode to the secondaries).
    const parent = event.trace === undefined ? extractTraceHeaders(message.headers) : contextFromCarrier(event.trace);
    return withSpan("event-log.record", { parent, kind: SpanKind.CONSUMER, attributes: { "georep.repository": event.repository, "georep.action": event.action } }, async () => {
      let result: InsertResult;
      try {
        result = await insertGeoEvent(db, rowFromRegistryEvent({ ...event, ...withTrace(currentTraceCarrier()) }));
      } catch (error) {
        if (isPermanentDatabaseError(error)) {
          return deadLetter(message, `rejected by postgres: ${error instanceof Error ? error.message : String(error)}`, log);
        }
        log.warn({ err: error, eventId: event.id }, "cannot store the registry event; will retry");
        return { kind: "retry", error } as const;
      }
      const { row, inserted } = result;
      metrics.inc(inserted ? "rowsInserted" : "duplicatesSkipped");
      if (!inserted) log.debug({ eventId: event.id, id: row.id }, "registry event already in the log");
      if (row.published_at === null) {
        const outcome = await outbox.publishNew(row);
        log.debug({ eventId: event.id, id: row.id, outcome }, "geo event handled");
      }
      return { kind: "ack" } as const;
    });
  };
}

/** A payload's `trace` field, when there is a trace to carry. */
function withTrace(trace: TraceCarrier | undefined): { trace?: TraceCarrier } {
  return trace === undefined ? {} : { trace };
}


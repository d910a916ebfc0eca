/**
 * The transactional outbox: the one publisher of GEO_EVENTS.
 *
 * A row is committed first and published after. The consumer hands each new
 * row to {@link Outbox.publishNew}; rows whose publication was never
 * confirmed (a crash between insert and publish, a GEO_EVENTS outage, a
 * failed `published_at` update) are found by the periodic drain, which
 * republishes them with the same `Nats-Msg-Id` (the row id), so a row that
 * was in fact published before is a JetStream duplicate within the
 * duplicate window, not a second event.
 *
 * Order: every publication of one process (live or drain) runs under one
 * lock, and the drain publishes in id order and stops at the first failure.
 * After a live publish fails, the process stops publishing live and leaves
 * every new row to the drain until a drain has published everything
 * unpublished; so one replica's rows reach GEO_EVENTS in id order. Across
 * replicas, rows are published in the order their replicas get to them,
 * which is id order only approximately (see README, "Ordering").
 */
import { headers as natsHeaders } from "@nats-io/transport-node";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { Kysely } from "kysely";
import { HEADERS, STREAM_NAMES } from "@georep/schema";
import type { Logger } from "@georep/runtime";
import { markPublished, withUnpublished } from "./db.js";
import type { EventLogDatabase, GeoEventRow } from "./db.js";
import { geoEventMessage } from "./mapping.js";
import type { GeoEventMessage } from "./mapping.js";
import type { Metrics } from "./metrics.js";

/** Settings of the outbox. */
export interface OutboxOptions {
  /** Time between two periodic drains. */
  readonly intervalMs: number;
  /** A periodic drain leaves rows younger than this to the replica that inserted them. */
  readonly graceMs: number;
  /** Rows per drain transaction. */
  readonly batchSize: number;
  /** Minimum time between two attempts after a failure (publish or Postgres). */
  readonly retryDelayMs: number;
  /** Time a GEO_EVENTS publish may wait for its JetStream ack. */
  readonly publishTimeoutMs: number;
}

/** Dependencies of {@link createOutbox}. */
export interface OutboxDeps {
  readonly db: Kysely<EventLogDatabase>;
  readonly js: JetStreamClient;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly options: OutboxOptions;
}

/** Outcome of one drain. */
export interface DrainResult {
  /** Rows published (and marked) by this drain. */
  readonly published: number;
  /** True when the drain reached the end: nothing eligible is left unpublished. */
  readonly complete: boolean;
}

/** What became of a row handed to {@link Outbox.publishNew}. */
export type PublishOutcome =
  /** GEO_EVENTS acked it (its `published_at` is set, or will be by the next drain if that update failed). */
  | "published"
  /** Left unpublished; the drain will publish it. */
  | "deferred";

/** See {@link createOutbox}. */
export interface Outbox {
  /**
   * Publishes a row the consumer just inserted (or found unpublished), then
   * sets `published_at`. Never throws: a failure leaves the row to the
   * drain and switches this process to catch-up mode.
   */
  publishNew(row: GeoEventRow): Promise<PublishOutcome>;
  /**
   * Publishes unpublished rows in id order until none is left (periodic
   * drains skip rows younger than the grace period, unless catching up).
   *
   * @throws when Postgres fails; a publish failure ends the drain with `complete: false`.
   */
  drain(): Promise<DrainResult>;
  /** True after a live publish failed, until a drain has published everything. */
  readonly catchingUp: boolean;
  /** Starts the periodic drain (one right away, then every `intervalMs`). */
  start(): void;
  /** Stops the periodic drain; resolves when a running drain has finished its current row. */
  stop(): Promise<void>;
}

/** A promise-chain mutex: runs one function at a time, in call order. */
function createLock(): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const result = tail.then(fn);
    tail = result.catch(() => undefined);
    return result;
  };
}

/** Creates the outbox; see the module comment. */
export function createOutbox(deps: OutboxDeps): Outbox {
  const { db, js, metrics, options } = deps;
  const logger = deps.logger.child({ component: "outbox" });
  const exclusive = createLock();
  let catchingUp = false;
  let retryAt = 0;
  let stopping = false;
  let loop: Promise<void> | undefined;
  const wake = new AbortController();

  async function publish(message: GeoEventMessage): Promise<void> {
    const h = natsHeaders();
    if (message.traceparent !== undefined) h.set(HEADERS.TRACEPARENT, message.traceparent);
    if (message.tracestate !== undefined) h.set(HEADERS.TRACESTATE, message.tracestate);
    await js.publish(message.subject, message.data, {
      msgID: message.msgId,
      headers: h,
      timeout: options.publishTimeoutMs,
      expect: { streamName: STREAM_NAMES.GEO_EVENTS },
    });
  }

  /** One drain; the caller holds the lock. */
  async function drainLocked(includeRecent: boolean): Promise<DrainResult> {
    let total = 0;
    for (;;) {
      let failed = false;
      const batch = await withUnpublished(
        db,
        { limit: options.batchSize, olderThanMs: includeRecent ? 0 : options.graceMs },
        async (rows) => {
          const done: string[] = [];
          for (const row of rows) {
            if (stopping) break;
            let message: GeoEventMessage;
            try {
              message = geoEventMessage(row);
            } catch (err) {
              // Only a row written by hand can be invalid; skipping it keeps the rest flowing.
              logger.error({ err, id: row.id }, "geo_events row is not a valid geo event; it stays unpublished");
              continue;
            }
            try {
              await publish(message);
            } catch (err) {
              // Stop at the first failure so what is published stays in id order.
              metrics.inc("publishFailures");
              logger.warn({ err, id: row.id }, "outbox publish failed; will retry");
              failed = true;
              break;
            }
            done.push(row.id);
          }
          return done;
        },
      );
      total += batch.published;
      metrics.inc("outboxRepublished", batch.published);
      if (batch.published > 0) logger.info({ published: batch.published }, "outbox published unconfirmed rows");
      if (failed || stopping) return { published: total, complete: false };
      // A full batch with progress may have more behind it; a batch of unpublishable rows must not spin.
      if (batch.selected < options.batchSize || batch.published === 0) return { published: total, complete: true };
    }
  }

  /** A drain under the lock that records failures and leaves catch-up mode when complete. */
  async function guardedDrain(): Promise<DrainResult> {
    try {
      const result = await drainLocked(catchingUp);
      if (result.complete && catchingUp) {
        catchingUp = false;
        logger.info("outbox caught up; publishing live again");
      }
      if (!result.complete) retryAt = Date.now() + options.retryDelayMs;
      return result;
    } catch (err) {
      retryAt = Date.now() + options.retryDelayMs;
      throw err;
    }
  }

  async function runLoop(): Promise<void> {
    while (!stopping) {
      if (Date.now() >= retryAt) {
        try {
          await exclusive(guardedDrain);
        } catch (err) {
          logger.warn({ err }, "outbox drain failed; will retry");
        }
      }
      const delay = catchingUp ? Math.min(options.intervalMs, options.retryDelayMs) : options.intervalMs;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        wake.signal.addEventListener(
          "abort",
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
    }
  }

  return {
    publishNew(row) {
      return exclusive(async (): Promise<PublishOutcome> => {
        if (catchingUp) {
          // Publishing this row now would overtake older unpublished ones: drain instead (it includes this row).
          if (Date.now() < retryAt || stopping) return "deferred";
          try {
            await guardedDrain();
          } catch (err) {
            logger.warn({ err }, "outbox drain failed; will retry");
          }
          return catchingUp ? "deferred" : "published";
        }
        let message: GeoEventMessage;
        try {
          message = geoEventMessage(row);
          await publish(message);
        } catch (err) {
          metrics.inc("publishFailures");
          catchingUp = true;
          retryAt = Date.now() + options.retryDelayMs;
          logger.warn({ err, id: row.id }, "GEO_EVENTS publish failed; the outbox will publish this row and what follows");
          return "deferred";
        }
        metrics.inc("geoEventsPublished");
        try {
          await markPublished(db, [row.id]);
        } catch (err) {
          // Published but not marked: the drain republishes it, a JetStream duplicate.
          logger.warn({ err, id: row.id }, "cannot mark the row published; the outbox will republish it");
        }
        return "published";
      });
    },
    drain() {
      return exclusive(guardedDrain);
    },
    get catchingUp() {
      return catchingUp;
    },
    start() {
      if (loop !== undefined || stopping) return;
      loop = runLoop().catch((err: unknown) => {
        logger.error({ err }, "outbox loop failed");
      });
    },
    async stop() {
      stopping = true;
      wake.abort();
      await loop;
      // Wait for a publishNew or drain that holds the lock.
      await exclusive(async () => undefined);
    },
  };
}

/**
 * The event-log service, without the process around it: stream and
 * consumer setup, the consume loop, the outbox, and the HTTP routes
 * (health and metrics). `main.ts` wires it to the real config and signals;
 * tests build it on real servers.
 */
import fastify from "fastify";
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { sql } from "kysely";
import type { Kysely } from "kysely";
import { STREAMS, STREAM_NAMES } from "@georep/schema";
import {
  createHealth,
  createHttpErrorHandler,
  ensureStream,
  healthPlugin,
  migrate,
  notFoundHandler,
} from "@georep/runtime";
import type { Health, Logger } from "@georep/runtime";
import { CONSUMER_NAME, createMessageHandler, ensureConsumer } from "./consumer.js";
import type { Outcome } from "./consumer.js";
import type { EventLogDatabase } from "./db.js";
import { MIGRATE_OPTIONS, migrations } from "./migrations.js";
import { PROMETHEUS_CONTENT_TYPE, createMetrics } from "./metrics.js";
import type { Metrics } from "./metrics.js";
import { createOutbox } from "./outbox.js";
import type { Outbox } from "./outbox.js";

/** Settings of the event-log (see `config.ts` for the env variables and defaults). */
export interface EventLogOptions {
  /** `max_age` of the three streams. */
  readonly streamMaxAgeMs: number;
  /** `duplicate_window` of the three streams. */
  readonly duplicateWindowMs: number;
  /** `num_replicas` of the three streams. */
  readonly streamReplicas: number;
  /** Messages buffered per pull. */
  readonly batchSize: number;
  readonly outboxIntervalMs: number;
  readonly outboxGraceMs: number;
  readonly outboxBatchSize: number;
  /** `nak` delay and consumer pause after Postgres or JetStream failed. */
  readonly retryDelayMs: number;
  readonly ackWaitMs: number;
  readonly maxAckPending: number;
  readonly publishTimeoutMs: number;
}

/** Dependencies of {@link buildEventLog}; the caller owns (and closes) the connection and the pool. */
export interface EventLogDeps {
  readonly nc: NatsConnection;
  readonly db: Kysely<EventLogDatabase>;
  readonly logger: Logger;
  readonly options: EventLogOptions;
  /** Run the migrations in `start()` (default true). */
  readonly migrate?: boolean;
  /** Counters; fresh ones by default. */
  readonly metrics?: Metrics;
  /** Health checks to add to; a fresh set by default. */
  readonly health?: Health;
}

/** A built event-log; see {@link buildEventLog}. */
export interface EventLog {
  /**
   * Migrates, ensures the streams and the consumer, runs one outbox drain
   * and starts consuming and the periodic drain. Resolves once consuming.
   */
  start(): Promise<void>;
  /**
   * Stops pulling, finishes the message in hand (buffered ones are handed
   * back with a `nak`), stops the outbox. Leaves NATS, Postgres and the
   * HTTP server to the caller. Idempotent.
   */
  stop(): Promise<void>;
  /** `GET /health/live`, `GET /health/ready`, `GET /metrics`; not listening (the caller decides where). */
  readonly http: FastifyInstance;
  readonly health: Health;
  readonly metrics: Metrics;
  readonly outbox: Outbox;
}

/** Builds the event-log; nothing happens until `start()`. */
export function buildEventLog(deps: EventLogDeps): EventLog {
  const { nc, db, options } = deps;
  const logger = deps.logger.child({ component: "event-log" });
  const metrics = deps.metrics ?? createMetrics();
  const health = deps.health ?? createHealth();
  const js = jetstream(nc, { timeout: options.publishTimeoutMs });
  const outbox = createOutbox({
    db,
    js,
    logger,
    metrics,
    options: {
      intervalMs: options.outboxIntervalMs,
      graceMs: options.outboxGraceMs,
      batchSize: options.outboxBatchSize,
      retryDelayMs: options.retryDelayMs,
      publishTimeoutMs: options.publishTimeoutMs,
    },
  });
  const handle = createMessageHandler({ db, js, outbox, logger, metrics, publishTimeoutMs: options.publishTimeoutMs });

  let state: "new" | "starting" | "running" | "stopping" | "stopped" = "new";
  let messages: ConsumerMessages | undefined;
  let loop: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  const stopController = new AbortController();

  health.register("postgres", async () => {
    await sql`select 1`.execute(db);
  });
  health.register("nats", () => {
    if (nc.isClosed()) throw new Error("NATS connection closed");
  });
  health.register("consumer", () => {
    if (state !== "running") throw new Error(`consumer ${state}`);
  });

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      stopController.signal.addEventListener(
        "abort",
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    });

  async function setUp(): Promise<void> {
    if (deps.migrate ?? true) await migrate(db, migrations, { ...MIGRATE_OPTIONS, logger });
    const jsm = await jetstreamManager(nc);
    const limits = {
      storage: "file" as const,
      max_age: nanos(options.streamMaxAgeMs),
      duplicate_window: nanos(options.duplicateWindowMs),
      num_replicas: options.streamReplicas,
    };
    for (const stream of [STREAMS.REGISTRY_EVENTS, STREAMS.REGISTRY_EVENTS_DLQ, STREAMS.GEO_EVENTS]) {
      await ensureStream(jsm, { ...stream, ...limits }, { logger });
    }
    const action = await ensureConsumer(jsm, options);
    logger.info({ consumer: CONSUMER_NAME, action }, "consumer ready");
  }

  /** Handles a message and applies the outcome, sending `working()` so slow handling does not outlive ack_wait. */
  async function settle(message: JsMsg): Promise<Outcome> {
    const keepAlive = setInterval(() => message.working(), Math.max(1_000, Math.floor(options.ackWaitMs / 3)));
    try {
      const outcome = await handle(message);
      switch (outcome.kind) {
        case "ack":
          message.ack();
          break;
        case "term":
          // No reason argument: nats-server < 2.10.4 does not parse `+TERM <reason>` and
          // redelivers; the reason is in the DLQ header and the log already.
          message.term();
          break;
        case "retry":
          metrics.inc("retries");
          message.nak(options.retryDelayMs);
          break;
      }
      return outcome;
    } finally {
      clearInterval(keepAlive);
    }
  }

  async function consumeLoop(): Promise<void> {
    let failures = 0;
    while (state === "running") {
      let pause = false;
      try {
        const consumer = await js.consumers.get(STREAM_NAMES.REGISTRY_EVENTS, CONSUMER_NAME);
        messages = await consumer.consume({ max_messages: options.batchSize });
        if (state !== "running") void messages.close();
        failures = 0;
        for await (const message of messages) {
          if (state !== "running" || pause) {
            // Buffered behind a stop or a retry: hand back. On a retry they come back after
            // the same delay as the failed one, so they keep their order.
            message.nak(pause ? options.retryDelayMs : undefined);
            continue;
          }
          const outcome = await settle(message);
          if (outcome.kind === "retry") {
            pause = true;
            // Not awaited: close() resolves only once this very loop has drained the iterator.
            void messages.close();
          }
        }
      } catch (err) {
        if (state !== "running") break;
        failures++;
        pause = true;
        logger.warn({ err, failures }, "consuming REGISTRY_EVENTS failed; will retry");
        // The consumer may have been deleted (or the stream recreated): ensure it again.
        await jetstreamManager(nc)
          .then((jsm) => ensureConsumer(jsm, options))
          .catch((error: unknown) => {
            logger.debug({ err: error }, "cannot ensure the consumer yet");
          });
      }
      if (pause && state === "running") await sleep(options.retryDelayMs);
    }
  }

  const loggerInstance: FastifyBaseLogger = logger;
  const http: FastifyInstance = fastify({ loggerInstance });
  // Health probes and scrapes every few seconds: no per-request log lines (fastify 5 deprecates disableRequestLogging).
  http.addHook("onRoute", (route) => {
    route.logLevel ??= "warn";
  });
  http.setErrorHandler(createHttpErrorHandler(logger));
  http.setNotFoundHandler(notFoundHandler);
  void http.register(healthPlugin, { health });
  http.get("/metrics", async (_request, reply) => reply.header("content-type", PROMETHEUS_CONTENT_TYPE).send(metrics.render()));

  return {
    async start() {
      if (state !== "new") throw new Error(`event-log cannot start: it is ${state}`);
      state = "starting";
      await setUp();
      // Repair what a crash left behind before taking new work.
      await outbox.drain().catch((err: unknown) => {
        logger.warn({ err }, "initial outbox drain failed; the periodic drain will retry");
      });
      // stop() may have been called while setting up.
      if ((state as string) !== "starting") return;
      state = "running";
      outbox.start();
      loop = consumeLoop().catch((err: unknown) => {
        logger.error({ err }, "consume loop failed");
        if (state === "running") state = "stopped";
      });
      logger.info({ consumer: CONSUMER_NAME, stream: STREAM_NAMES.REGISTRY_EVENTS }, "event-log consuming");
    },
    stop() {
      stopping ??= (async () => {
        state = "stopping";
        stopController.abort();
        await messages?.close().catch(() => undefined);
        await loop;
        await outbox.stop();
        state = "stopped";
        logger.info("event-log stopped");
      })();
      return stopping;
    },
    http,
    health,
    metrics,
    outbox,
  };
}

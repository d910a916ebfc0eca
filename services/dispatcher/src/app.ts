/**
 * The dispatcher of a secondary site, without the process around it:
 * the mirrored GEO_EVENTS consumer, the backfill walk of the primary's
 * catalog, the dispatch loop into TRANSFER_JOBS within the capacity, the
 * lease and lost-job sweeper, resync requests, and the HTTP routes (health
 * and metrics). `main.ts` wires it to the real config and signals; tests
 * build it on real servers.
 */
import { randomBytes } from "node:crypto";
import fastify from "fastify";
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import { JetStreamApiError, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { ConsumerMessages, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { sql } from "kysely";
import type { Kysely } from "kysely";
import { REPOSITORY_PATTERN, STREAM_NAMES, TransferJob, ValidationError, encodeJson, resyncSubject, syncDoneSubject, transferJobSubject } from "@georep/schema";
import { countByState, reconcileCatalog, releaseExpiredLeases, requestStaleSyncs } from "@georep/tracking";
import type { Dispatch, TrackingDatabase } from "@georep/tracking";
import type { RegistryClient } from "@georep/registry-client";
import { SpanKind, contextFromCarrier, createHealth, createHttpErrorHandler, currentTraceCarrier, healthPlugin, notFoundHandler, withSpan } from "@georep/runtime";
import type { Health, Logger } from "@georep/runtime";
import { takeWithinCapacity, trackedCount, unclaimedDispatches, undispatch } from "./db.js";
import { createEventHandler } from "./events.js";
import type { Outcome } from "./events.js";
import { PROMETHEUS_CONTENT_TYPE, createMetrics } from "./metrics.js";
import type { Metrics, QueueDepths } from "./metrics.js";
import { applyResync, parseResyncRequest } from "./resync.js";
import type { ResyncReply } from "./resync.js";
import { CONSUMER_NAME, ensureConsumer, ensureGeoEventsMirror, ensureTransferJobs } from "./streams.js";

/** Queue group of the dispatchers' core NATS subscriptions (resync requests, finished syncs): one replica takes each message. */
export const DISPATCHER_QUEUE_GROUP = "dispatcher";

/** Publish attempts of one job (same `Nats-Msg-Id`, so a retried publish is stored once). */
const PUBLISH_ATTEMPTS = 2;
/** Unclaimed dispatched rows checked per sweep. */
const LOST_JOB_BATCH = 100;
/** JetStream API error: no message found (a `last_by_subj` get on a subject with no message). */
const NO_MESSAGE_FOUND = 10037;

const REPOSITORY_RE = new RegExp(REPOSITORY_PATTERN);

/** Settings of the dispatcher (see `config.ts` for the env variables and defaults). */
export interface DispatcherOptions {
  /** This site's name: the resync subject is `georep.<site>.resync`. */
  readonly site: string;
  /** JetStream domain of the primary (the mirror's origin). */
  readonly primaryJsDomain: string;
  /** `max_age` of the local GEO_EVENTS mirror. */
  readonly geoEventsMaxAgeMs: number;
  /** `num_replicas` of the local streams. */
  readonly streamReplicas: number;
  /** Syncs dispatched and not finished, at most, across every replica. */
  readonly maxConcurrentSyncs: number;
  /** Period of the dispatch loop. */
  readonly tickMs: number;
  /** Delay between an event (or a resync) and the dispatch round it triggers; events within it share the round. */
  readonly eventDispatchDelayMs: number;
  /** Period of the catalog walk after the one at start; 0 walks at start only. */
  readonly backfillIntervalMs: number;
  /**
   * Each backfill also re-syncs known repositories not verified for this
   * long (0: never), so a change whose notification was lost is found.
   */
  readonly reverifyAfterMs?: number;
  /** Entries per catalog page. */
  readonly catalogPageSize: number;
  /** Period of the lease and lost-job sweeper. */
  readonly sweepIntervalMs: number;
  /** Age after which an unclaimed dispatched row whose job is gone is dispatched again. */
  readonly lostJobAfterMs: number;
  readonly publishTimeoutMs: number;
  /** Messages buffered per pull. */
  readonly batchSize: number;
  readonly ackWaitMs: number;
  readonly maxAckPending: number;
  /** `nak` delay and consumer pause after Postgres failed. */
  readonly retryDelayMs: number;
}

/** Dependencies of {@link buildDispatcher}; the caller owns (and closes) the connection, the pool and the client. */
export interface DispatcherDeps {
  /** The SECONDARY site's NATS (its own JetStream domain, a leafnode of the primary's). */
  readonly nc: NatsConnection;
  /** The tracking tables, migrated (`migrateTracking`). */
  readonly db: Kysely<TrackingDatabase>;
  /** A client of the PRIMARY registry, for backfill; without one there is no backfill. */
  readonly registry?: RegistryClient | undefined;
  readonly logger: Logger;
  readonly options: DispatcherOptions;
  /** Counters; fresh ones by default. */
  readonly metrics?: Metrics;
  /** Health checks to add to; a fresh set by default. */
  readonly health?: Health;
}

/** What one walk of the primary's catalog did. */
export type BackfillResult =
  | { readonly outcome: "ok"; readonly repositories: number; readonly added: number; readonly missing: number; readonly invalid: number }
  /** The catalog could not be read (or the rows written): nothing was marked missing. */
  | { readonly outcome: "error"; readonly error: unknown }
  /** The catalog was empty while rows are tracked: taken as a misconfigured primary, nothing was marked missing. */
  | { readonly outcome: "skipped"; readonly reason: string };

/** What one sweep did. */
export interface SweepResult {
  /** Repositories whose expired lease was released. */
  readonly released: readonly string[];
  /** Repositories whose lost job was dispatched again. */
  readonly requeued: readonly string[];
}

/** A built dispatcher; see {@link buildDispatcher}. */
export interface Dispatcher {
  /**
   * Ensures the streams and the consumer, then starts consuming, the
   * dispatch loop, the sweeper, the resync subscription and the backfill
   * (the first walk runs in the background). Resolves once consuming.
   */
  start(): Promise<void>;
  /**
   * Stops consuming (buffered messages go back with a `nak`), the loops and
   * the subscription. Leaves NATS, Postgres, the registry client and the
   * HTTP server to the caller. Idempotent.
   */
  stop(): Promise<void>;
  /** One dispatch round now; resolves with the jobs published. */
  dispatchNow(): Promise<number>;
  /** One catalog walk now (shares a walk already running). */
  backfill(): Promise<BackfillResult>;
  /** One sweep now. */
  sweep(): Promise<SweepResult>;
  /** `GET /health/live`, `GET /health/ready`, `GET /metrics`; not listening (the caller decides where). */
  readonly http: FastifyInstance;
  readonly health: Health;
  readonly metrics: Metrics;
}

type State = "new" | "starting" | "running" | "stopping" | "stopped";

/** Builds the dispatcher; nothing happens until `start()`. */
export function buildDispatcher(deps: DispatcherDeps): Dispatcher {
  const { nc, db, options, registry } = deps;
  const logger = deps.logger.child({ component: "dispatcher" });
  const metrics = deps.metrics ?? createMetrics();
  const health = deps.health ?? createHealth();
  const js = jetstream(nc, { timeout: options.publishTimeoutMs });
  const handleEvent = createEventHandler({ db, logger, metrics });

  let state: State = "new";
  let messages: ConsumerMessages | undefined;
  let resyncSub: Subscription | undefined;
  let doneSub: Subscription | undefined;
  const loops: Promise<void>[] = [];
  let stopping: Promise<void> | undefined;
  let backfillRunning: Promise<BackfillResult> | undefined;
  let jsmPromise: Promise<JetStreamManager> | undefined;
  const stopController = new AbortController();
  /** The manager, made once; a failed attempt (JetStream not reachable yet) is not kept. */
  const jsm = (): Promise<JetStreamManager> =>
    (jsmPromise ??= jetstreamManager(nc).catch((err: unknown) => {
      jsmPromise = undefined;
      throw err;
    }));

  health.register("postgres", async () => {
    await sql`select 1`.execute(db);
  });
  health.register("nats", () => {
    if (nc.isClosed()) throw new Error("NATS connection closed");
  });
  health.register("consumer", () => {
    if (state !== "running") throw new Error(`dispatcher ${state}`);
  });

  const running = (): boolean => state === "running";

  /** Sleeps `ms`, or less when stopping or (if `wakeable`) when a dispatch is requested. */
  let wakeSleeper: (() => void) | undefined;
  const sleep = (ms: number, wakeable = false): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        stopController.signal.removeEventListener("abort", done);
        if (wakeable && wakeSleeper === done) wakeSleeper = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      stopController.signal.addEventListener("abort", done, { once: true });
      if (wakeable) wakeSleeper = done;
    });

  // ---- dispatch -------------------------------------------------------------

  let dispatchWanted = false;
  let wakeTimer: NodeJS.Timeout | undefined;
  /** Asks for a dispatch round after `delayMs`; requests within that delay share one round. */
  function requestDispatch(delayMs: number): void {
    if (!running() || wakeTimer !== undefined) return;
    wakeTimer = setTimeout(() => {
      wakeTimer = undefined;
      dispatchWanted = true;
      wakeSleeper?.();
    }, delayMs);
  }

  /** Publishes one job inside a span of the newest event's trace (a backfill job starts its own). */
  function publishJob(dispatch: Dispatch, log: Logger): Promise<boolean> {
    const attributes = { "georep.repository": dispatch.repository, "georep.generation": dispatch.generation, "georep.reason": dispatch.reason };
    const parent = dispatch.reason === "event" ? contextFromCarrier(dispatch.trace) : undefined;
    return withSpan("dispatcher.dispatch", { kind: SpanKind.PRODUCER, attributes, ...(parent === undefined ? {} : { parent }) }, () => publishJobInSpan(dispatch, log));
  }

  async function publishJobInSpan(dispatch: Dispatch, log: Logger): Promise<boolean> {
    const trace = currentTraceCarrier();
    const job: TransferJob = {
      repository: dispatch.repository,
      generation: dispatch.generation,
      reason: dispatch.reason,
      priority: Math.min(9, Math.max(0, dispatch.priority)),
      requested_at: new Date().toISOString(),
      ...(trace === undefined ? {} : { trace }),
    };
    // Unique per dispatch, the same for the publish retry: a lost ack then stores the job once,
    // while a later re-dispatch of the same generation (expired lease, retry, lost job) is not
    // taken for a duplicate within the stream's duplicate window.
    const msgID = `${dispatch.repository}@${dispatch.generation}#${randomBytes(6).toString("hex")}`;
    const data = encodeJson(TransferJob, job);
    let lastError: unknown;
    for (let attempt = 1; attempt <= PUBLISH_ATTEMPTS; attempt++) {
      try {
        await js.publish(transferJobSubject(dispatch.repository), data, {
          msgID,
          timeout: options.publishTimeoutMs,
          expect: { streamName: STREAM_NAMES.TRANSFER_JOBS },
        });
        return true;
      } catch (error) {
        lastError = error;
      }
    }
    log.warn({ err: lastError, repository: dispatch.repository, generation: dispatch.generation }, "cannot publish a transfer job; it is dispatched again later");
    return false;
  }

  async function dispatchOnce(): Promise<number> {
    const { taken, inFlight } = await takeWithinCapacity(db, options.maxConcurrentSyncs);
    if (taken.length === 0) return 0;
    const log = logger.child({ round: randomBytes(3).toString("hex") });
    let published = 0;
    for (let i = 0; i < taken.length; i++) {
      const dispatch = taken[i]!;
      let ok: boolean;
      try {
        ok = await publishJob(dispatch, log);
      } catch (error) {
        if (!(error instanceof ValidationError)) throw error;
        // Not a valid job (a repository name no producer should have let in): leave the row
        // dispatched; the lost-job sweep offers it again now and then, and logs it again.
        log.error({ err: error, repository: dispatch.repository }, "cannot build a valid transfer job for this row");
        continue;
      }
      if (ok) {
        published++;
        metrics.inc("jobsDispatched", { label: dispatch.reason });
        log.debug({ repository: dispatch.repository, generation: dispatch.generation, reason: dispatch.reason }, "transfer job dispatched");
        continue;
      }
      // JetStream is not taking jobs: hand this one and the rest of the round back and wait for the next tick.
      const rest = taken.slice(i);
      metrics.inc("dispatchFailures", { by: rest.length });
      for (const d of rest) await undispatch(db, d.repository, d.generation);
      break;
    }
    if (published > 0) log.debug({ dispatched: published, inFlightBefore: inFlight, capacity: options.maxConcurrentSyncs }, "transfer jobs dispatched");
    return published;
  }

  async function dispatchLoop(): Promise<void> {
    while (running()) {
      dispatchWanted = false;
      try {
        await dispatchOnce();
      } catch (err) {
        if (!running()) break;
        logger.warn({ err }, "dispatch round failed; will retry");
      }
      if (!dispatchWanted && running()) await sleep(options.tickMs, true);
    }
  }

  // ---- sweeper --------------------------------------------------------------

  async function jobQueued(repository: string): Promise<boolean> {
    try {
      const message = await (await jsm()).streams.getMessage(STREAM_NAMES.TRANSFER_JOBS, { last_by_subj: transferJobSubject(repository) });
      return message !== null;
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === NO_MESSAGE_FOUND) return false;
      throw error;
    }
  }

  async function sweepOnce(): Promise<SweepResult> {
    const released = await releaseExpiredLeases(db);
    if (released.length > 0) {
      metrics.inc("leasesReleased", { by: released.length });
      logger.warn({ repositories: released.slice(0, 20), count: released.length }, "expired sync leases released");
    }
    // A job can vanish without a claim (a worker terminated it, the stream was purged); its row
    // would stay "dispatched" and hold a capacity slot forever. Only a row whose subject has no
    // message left in the work queue is dispatched again.
    const requeued: string[] = [];
    for (const row of await unclaimedDispatches(db, options.lostJobAfterMs, LOST_JOB_BATCH)) {
      if (!running()) break;
      if (await jobQueued(row.repository)) continue;
      if (await undispatch(db, row.repository, row.generation)) requeued.push(row.repository);
    }
    if (requeued.length > 0) {
      metrics.inc("lostJobsRequeued", { by: requeued.length });
      logger.warn({ repositories: requeued.slice(0, 20), count: requeued.length }, "dispatched rows without a job dispatched again");
    }
    if (released.length + requeued.length > 0) requestDispatch(0);
    return { released, requeued };
  }

  async function sweepLoop(): Promise<void> {
    while (running()) {
      await sleep(options.sweepIntervalMs);
      if (!running()) break;
      try {
        await sweepOnce();
      } catch (err) {
        logger.warn({ err }, "sweep failed; will retry");
      }
    }
  }

  // ---- backfill -------------------------------------------------------------

  async function backfillOnce(client: RegistryClient): Promise<BackfillResult> {
    const t0 = Date.now();
    let catalog: string[];
    try {
      catalog = await client.catalog({ pageSize: options.catalogPageSize });
    } catch (error) {
      metrics.inc("backfillRuns", { label: "error" });
      logger.warn({ err: error, registry: client.url }, "cannot read the primary's catalog; nothing marked missing");
      return { outcome: "error", error };
    }
    const valid = catalog.filter((name) => REPOSITORY_RE.test(name) && name.length <= 255);
    const invalid = catalog.length - valid.length;
    if (invalid > 0) logger.warn({ invalid, examples: catalog.filter((n) => !valid.includes(n)).slice(0, 5) }, "catalog entries that are not repository names ignored");
    try {
      if (valid.length === 0 && (await trackedCount(db)) > 0) {
        metrics.inc("backfillRuns", { label: "skipped" });
        const reason = "the primary's catalog is empty while repositories are tracked; taken as a misconfigured primary, nothing marked missing";
        logger.error({ registry: client.url }, reason);
        return { outcome: "skipped", reason };
      }
      // stop() does not wait for a slow catalog walk; what it found is then left to the next start.
      if (state === "stopping" || state === "stopped") return { outcome: "error", error: new Error("dispatcher stopped during the catalog walk") };
      const { added, missing } = await reconcileCatalog(db, valid);
      const stale = (options.reverifyAfterMs ?? 0) > 0 ? await requestStaleSyncs(db, options.reverifyAfterMs!) : 0;
      metrics.inc("backfillRuns", { label: "ok" });
      metrics.inc("backfillAdded", { by: added });
      metrics.inc("backfillMissing", { by: missing });
      logger.info({ repositories: valid.length, added, missing, stale, durationMs: Date.now() - t0 }, "backfill done");
      if (added + missing + stale > 0) requestDispatch(0);
      return { outcome: "ok", repositories: valid.length, added, missing, invalid };
    } catch (error) {
      metrics.inc("backfillRuns", { label: "error" });
      logger.warn({ err: error }, "cannot record the backfill; will retry at the next walk");
      return { outcome: "error", error };
    }
  }

  function backfill(): Promise<BackfillResult> {
    if (registry === undefined) return Promise.resolve({ outcome: "skipped", reason: "no primary registry client" });
    backfillRunning ??= backfillOnce(registry).finally(() => {
      backfillRunning = undefined;
    });
    return backfillRunning;
  }

  async function backfillLoop(): Promise<void> {
    await backfill();
    if (options.backfillIntervalMs <= 0) return;
    while (running()) {
      await sleep(options.backfillIntervalMs);
      if (!running()) break;
      await backfill();
    }
  }

  // ---- resync requests ------------------------------------------------------

  async function handleResync(message: Msg): Promise<void> {
    const reply = (body: ResyncReply): void => {
      if (message.reply !== undefined && message.reply !== "") message.respond(JSON.stringify(body));
    };
    const parsed = parseResyncRequest(message.data);
    if (!parsed.ok) {
      metrics.inc("resyncRequests", { label: "rejected" });
      logger.info({ error: parsed.error }, "resync request rejected");
      reply({ error: parsed.error });
      return;
    }
    try {
      const accepted = await applyResync(db, parsed.scope);
      metrics.inc("resyncRequests", { label: "accepted" });
      logger.info({ scope: parsed.scope, requestedBy: parsed.requestedBy, accepted }, "resync requested");
      requestDispatch(0);
      reply({ accepted });
    } catch (err) {
      metrics.inc("resyncRequests", { label: "error" });
      logger.warn({ err, scope: parsed.scope }, "cannot record a resync request");
      reply({ error: "cannot record the resync request now; try again" });
    }
  }

  async function doneLoop(sub: Subscription): Promise<void> {
    for await (const _message of sub) {
      if (!running()) break;
      metrics.inc("syncsDoneHeard");
      requestDispatch(0);
    }
  }

  async function resyncLoop(sub: Subscription): Promise<void> {
    for await (const message of sub) void handleResync(message);
  }

  // ---- consumer -------------------------------------------------------------

  async function processMessage(message: JsMsg): Promise<Outcome> {
    const outcome = await handleEvent(message);
    switch (outcome.kind) {
      case "ack":
        message.ack();
        requestDispatch(options.eventDispatchDelayMs);
        break;
      case "term":
        // No reason argument: nats-server < 2.10.4 does not parse `+TERM <reason>` and redelivers.
        message.term();
        break;
      case "retry":
        message.nak(options.retryDelayMs);
        break;
    }
    return outcome;
  }

  async function consumeLoop(): Promise<void> {
    let failures = 0;
    while (running()) {
      let pause = false;
      try {
        const consumer = await js.consumers.get(STREAM_NAMES.GEO_EVENTS, CONSUMER_NAME);
        messages = await consumer.consume({ max_messages: options.batchSize });
        if (!running()) void messages.close();
        failures = 0;
        for await (const message of messages) {
          if (!running() || pause) {
            message.nak(pause ? options.retryDelayMs : undefined);
            continue;
          }
          const outcome = await processMessage(message);
          if (outcome.kind === "retry") {
            pause = true;
            // Not awaited: close() resolves only once this very loop has drained the iterator.
            void messages.close();
          }
        }
      } catch (err) {
        if (!running()) break;
        failures++;
        pause = true;
        logger.warn({ err, failures }, "consuming GEO_EVENTS failed; will retry");
        await jsm()
          .then((manager) => ensureConsumer(manager, options))
          .catch((error: unknown) => {
            logger.debug({ err: error }, "cannot ensure the consumer yet");
          });
      }
      if (pause && running()) await sleep(options.retryDelayMs);
    }
  }

  // ---- HTTP -----------------------------------------------------------------

  const loggerInstance: FastifyBaseLogger = logger;
  const http: FastifyInstance = fastify({ loggerInstance });
  // Health probes and scrapes every few seconds: no per-request log lines (fastify 5 deprecates disableRequestLogging).
  http.addHook("onRoute", (route) => {
    route.logLevel ??= "warn";
  });
  http.setErrorHandler(createHttpErrorHandler(logger));
  http.setNotFoundHandler(notFoundHandler);
  void http.register(healthPlugin, { health });
  http.get("/metrics", async (_request, reply) => {
    const counts = await countByState(db).catch((err: unknown) => {
      logger.debug({ err }, "cannot count tracking rows for /metrics");
      return undefined;
    });
    const queues = await queueDepths().catch((err: unknown) => {
      logger.debug({ err }, "cannot read queue depths for /metrics");
      return undefined;
    });
    return reply.header("content-type", PROMETHEUS_CONTENT_TYPE).send(metrics.render(counts, queues));
  });

  async function queueDepths(): Promise<QueueDepths> {
    const manager = await jsm();
    const [jobs, consumer] = await Promise.all([
      manager.streams.info(STREAM_NAMES.TRANSFER_JOBS),
      manager.consumers.info(STREAM_NAMES.GEO_EVENTS, CONSUMER_NAME),
    ]);
    return { transfer_jobs: jobs.state.messages, geo_events: consumer.num_pending, geo_events_unacked: consumer.num_ack_pending };
  }

  const keep = (name: string, loop: Promise<void>): void => {
    loops.push(
      loop.catch((err: unknown) => {
        logger.error({ err, loop: name }, "dispatcher loop failed");
      }),
    );
  };

  return {
    async start() {
      if (state !== "new") throw new Error(`dispatcher cannot start: it is ${state}`);
      state = "starting";
      const manager = await jsm();
      const mirror = await ensureGeoEventsMirror(manager, options, logger);
      const jobs = await ensureTransferJobs(manager, options, logger);
      const consumer = await ensureConsumer(manager, options);
      logger.info({ mirror: mirror.action, transferJobs: jobs.action, consumer }, "streams and consumer ready");
      // stop() may have been called while setting up.
      if ((state as State) !== "starting") return;
      state = "running";
      resyncSub = nc.subscribe(resyncSubject(options.site), { queue: DISPATCHER_QUEUE_GROUP });
      keep("resync", resyncLoop(resyncSub));
      // A transfer worker recorded an outcome: its slot is free now, not at the next tick.
      doneSub = nc.subscribe(syncDoneSubject(options.site), { queue: DISPATCHER_QUEUE_GROUP });
      keep("sync-done", doneLoop(doneSub));
      // The server knows the subscription once start() resolves (a request right after gets an answer).
      await nc.flush();
      keep("consume", consumeLoop());
      keep("dispatch", dispatchLoop());
      keep("sweep", sweepLoop());
      // Not awaited by stop(): a slow catalog walk must not hold up shutdown (it writes nothing once stopped).
      if (registry !== undefined) {
        void backfillLoop().catch((err: unknown) => {
          logger.error({ err, loop: "backfill" }, "dispatcher loop failed");
        });
      }
      logger.info({ site: options.site, primaryJsDomain: options.primaryJsDomain, maxConcurrentSyncs: options.maxConcurrentSyncs }, "dispatcher running");
    },
    stop() {
      stopping ??= (async () => {
        state = "stopping";
        stopController.abort();
        clearTimeout(wakeTimer);
        wakeTimer = undefined;
        resyncSub?.unsubscribe();
        doneSub?.unsubscribe();
        await messages?.close().catch(() => undefined);
        await Promise.all(loops);
        state = "stopped";
        logger.info("dispatcher stopped");
      })();
      return stopping;
    },
    dispatchNow: dispatchOnce,
    backfill,
    sweep: sweepOnce,
    http,
    health,
    metrics,
  };
}

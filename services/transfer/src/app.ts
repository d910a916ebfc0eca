/**
 * The transfer service without the process around it: the TRANSFER_JOBS
 * worker and the HTTP routes (health, metrics). `main.ts` wires it to the
 * real config and signals; tests build it on real servers.
 */
import fastify from "fastify";
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import type { NatsConnection } from "@nats-io/transport-node";
import { sql } from "kysely";
import type { Kysely } from "kysely";
import { createHealth, createHttpErrorHandler, healthPlugin, notFoundHandler } from "@georep/runtime";
import type { Health, Logger } from "@georep/runtime";
import type { RegistryClient } from "@georep/registry-client";
import type { TrackingDatabase } from "@georep/tracking";
import { PROMETHEUS_CONTENT_TYPE, createMetrics } from "./metrics.js";
import type { TransferMetrics } from "./metrics.js";
import { createPrefetcher } from "./prefetch.js";
import type { InFlightBlobs } from "./sync.js";
import { createWorker } from "./worker.js";
import type { Worker, WorkerOptions } from "./worker.js";

/** Settings of the transfer service (see `config.ts` for the variables and defaults): the worker's, and the blob prefetch's. */
export interface TransferOptions extends WorkerOptions {
  /** Copy the blobs the primary announces (`TRANSFER_BLOB_PREFETCH`) with this many at once; off without it or without `site`. */
  readonly prefetch?: { readonly concurrency: number } | undefined;
}

/** Dependencies of {@link buildTransfer}; the caller owns (and closes) the connection, the pool and the registry clients' dispatcher. */
export interface TransferDeps {
  readonly nc: NatsConnection;
  /** The tracking database, migrated (`migrateTracking`). */
  readonly db: Kysely<TrackingDatabase>;
  /** Client of the primary registry (pull credentials suffice). */
  readonly primary: RegistryClient;
  /** Client of this site's registry (pull, push, delete). */
  readonly secondary: RegistryClient;
  readonly logger: Logger;
  readonly options: TransferOptions;
  /** Fresh ones by default. */
  readonly metrics?: TransferMetrics;
  /** Health checks to add to; a fresh set by default. */
  readonly health?: Health;
}

/** A built transfer service; see {@link buildTransfer}. */
export interface Transfer {
  /** Waits for the TRANSFER_JOBS stream, then consumes. Resolves once consuming (or when stopped first). */
  start(): Promise<void>;
  /** Stops fetching; in-flight syncs finish or are handed back. Leaves NATS, Postgres and HTTP to the caller. */
  stop(): Promise<void>;
  /** `GET /health/live`, `GET /health/ready`, `GET /metrics`; not listening (the caller decides where). */
  readonly http: FastifyInstance;
  readonly health: Health;
  readonly metrics: TransferMetrics;
  readonly worker: Worker;
}

/** Builds the transfer service; nothing happens until `start()`. Readiness fails until the stream exists and the consumer runs. */
export function buildTransfer(deps: TransferDeps): Transfer {
  const { nc, db, options } = deps;
  const logger = deps.logger.child({ component: "transfer" });
  const metrics = deps.metrics ?? createMetrics();
  const health = deps.health ?? createHealth();
  /** Blob copies under way in this process, shared by the syncs and the prefetch (a blob is copied once). */
  const inFlightBlobs: InFlightBlobs = new Map();
  const worker = createWorker({
    nc,
    db,
    primary: deps.primary,
    secondary: deps.secondary,
    logger,
    metrics,
    options,
    inFlightBlobs,
  });
  const prefetcher =
    options.prefetch === undefined || options.site === undefined
      ? undefined
      : createPrefetcher({ nc, db, primary: deps.primary, secondary: deps.secondary, logger, metrics, inFlightBlobs, options: { site: options.site, owner: options.workerId, concurrency: options.prefetch.concurrency, chunkSize: options.sync.chunkSize } });

  health.register("postgres", async () => {
    await sql`select 1`.execute(db);
  });
  health.register("nats", () => {
    if (nc.isClosed()) throw new Error("NATS connection closed");
  });
  health.register("consumer", () => {
    if (worker.state === "waiting") throw new Error("waiting for the TRANSFER_JOBS stream");
    if (worker.state !== "running") throw new Error(`consumer ${worker.state}`);
  });

  const loggerInstance: FastifyBaseLogger = logger;
  const http: FastifyInstance = fastify({ loggerInstance });
  http.setErrorHandler(createHttpErrorHandler(logger));
  http.setNotFoundHandler(notFoundHandler);
  void http.register(healthPlugin, { health });
  http.get("/metrics", { logLevel: "warn" }, async (_request, reply) => reply.header("content-type", PROMETHEUS_CONTENT_TYPE).send(await metrics.render()));

  return {
    async start() {
      prefetcher?.start();
      await worker.start();
    },
    async stop() {
      await Promise.all([prefetcher?.stop(options.drainTimeoutMs), worker.stop()]);
    },
    http,
    health,
    metrics,
    worker,
  };
}

/** Shared helpers of the worker tests (real nats-server, Postgres, registries). */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { STREAMS, TransferJob, encodeJson, transferJobSubject } from "@georep/schema";
import { connectNats, createLogger, ensureStream } from "@georep/runtime";
import type { Logger } from "@georep/runtime";
import { createRegistryClient } from "@georep/registry-client";
import type { RegistryClient } from "@georep/registry-client";
import { startNats, startPostgres, startRegistry } from "@georep/testing";
import type { RunningNats, RunningPostgres, RunningRegistry } from "@georep/testing";
import { migrateTracking, requestSync, takeDispatchable } from "@georep/tracking";
import type { TrackingDatabase } from "@georep/tracking";
import type { TransferOptions } from "../src/app.js";

/** Quiet by default; `TEST_LOG_LEVEL=debug` to watch. */
export const logger: Logger = createLogger({ name: "transfer-test", level: (process.env.TEST_LOG_LEVEL as "debug" | undefined) ?? "silent" });

/** Short timings so leases expire and jobs come back within a test. */
/** The site name test workers announce finished syncs for. */
export const TEST_SITE = "test-site";

export function testOptions(overrides: Partial<TransferOptions> = {}): TransferOptions {
  return {
    workerId: `test-${Math.random().toString(36).slice(2, 8)}`,
    site: TEST_SITE,
    concurrency: 2,
    leaseMs: 2_000,
    ackWaitMs: 3_000,
    backoff: { baseMs: 60_000, capMs: 3_600_000 },
    sync: { blobConcurrency: 4, deleteMissing: true },
    drainTimeoutMs: 2_000,
    retryDelayMs: 200,
    streamPollMs: 100,
    ...overrides,
  };
}

/** Creates the TRANSFER_JOBS stream as the dispatcher does. */
export async function createJobsStream(nc: NatsConnection): Promise<void> {
  await ensureStream(await jetstreamManager(nc), { ...STREAMS.TRANSFER_JOBS, storage: "file" as const });
}

/** Publishes a TransferJob as the dispatcher does. */
export async function publishJob(nc: NatsConnection, repository: string, generation: number): Promise<void> {
  await jetstream(nc).publish(transferJobSubject(repository), encodeJson(TransferJob, { repository, generation, reason: "event", priority: 2, requested_at: new Date().toISOString() }));
}

/**
 * What the dispatcher does for an event: bump the row, take it for dispatch,
 * (run `beforePublish`), publish the job. Returns the generation.
 */
export async function dispatch(nc: NatsConnection, db: Kysely<TrackingDatabase>, repository: string, beforePublish?: (generation: number) => Promise<void>): Promise<number> {
  await requestSync(db, repository, "event");
  const taken = (await takeDispatchable(db, 100)).find((d) => d.repository === repository);
  if (taken === undefined) throw new Error(`${repository} was not dispatchable`);
  await beforePublish?.(taken.generation);
  await publishJob(nc, repository, taken.generation);
  return taken.generation;
}

/** Waits until `check` returns true (polling), or fails naming `what`. */
export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000, intervalMs = 50): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    if (await check()) return;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The servers a transfer test runs against: nats-server, Postgres (tracking migrated), a primary and a secondary registry. */
export interface TestSite {
  readonly nats: RunningNats;
  readonly postgres: RunningPostgres;
  readonly primaryRegistry: RunningRegistry;
  readonly secondaryRegistry: RunningRegistry;
  readonly nc: NatsConnection;
  readonly db: Kysely<TrackingDatabase>;
  readonly primary: RegistryClient;
  readonly secondary: RegistryClient;
  /** Closes the connections and stops the servers. */
  stop(): Promise<void>;
}

/** Starts a {@link TestSite}; `name` names the NATS connection. */
export async function startTestSite(name: string): Promise<TestSite> {
  const [nats, postgres, primaryRegistry, secondaryRegistry] = await Promise.all([startNats({ domain: "secondary" }), startPostgres(), startRegistry(), startRegistry()]);
  const nc = await connectNats({ servers: nats.url, name, logger });
  const pool = new pg.Pool({ connectionString: postgres.url, max: 6 });
  pool.on("error", () => undefined);
  const db = new Kysely<TrackingDatabase>({ dialect: new PostgresDialect({ pool }) });
  await migrateTracking(db);
  return {
    nats,
    postgres,
    primaryRegistry,
    secondaryRegistry,
    nc,
    db,
    primary: createRegistryClient({ url: primaryRegistry.url }),
    secondary: createRegistryClient({ url: secondaryRegistry.url }),
    async stop() {
      await nc.close();
      await db.destroy();
      await Promise.all([nats.stop(), postgres.stop(), primaryRegistry.stop(), secondaryRegistry.stop()]);
    },
  };
}

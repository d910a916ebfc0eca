/** Shared helpers of the status service's tests (real nats-server, Postgres and Distribution). */
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { FastifyInstance } from "fastify";
import type { NatsConnection } from "@nats-io/transport-node";
import { sql } from "kysely";
import type { Kysely } from "kysely";
import { connectNats, createDatabase, createLogger } from "@georep/runtime";
import type { Database, Logger } from "@georep/runtime";
import type { RegistryClient } from "@georep/registry-client";
import { claim, complete, fail, getRow, requestSync } from "@georep/tracking";
import type { TrackingDatabase } from "@georep/tracking";
import { buildStatusApp } from "../src/app.js";
import type { StatusDeps, StatusOptions } from "../src/app.js";
import type { StatusDatabase } from "../src/db.js";

/** Quiet by default; `TEST_LOG_LEVEL=debug` to watch. */
export const logger: Logger = createLogger({ name: "status-test", level: (process.env.TEST_LOG_LEVEL as "debug" | undefined) ?? "silent" });

export const ADMIN_TOKEN = "test-admin-token-0123456789";
export const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };

/** Settings with short timings. */
export function testOptions(overrides: Partial<StatusOptions> = {}): StatusOptions {
  return {
    site: "secondary1",
    role: "secondary",
    reportIntervalMs: 60_000,
    staleAfterMs: 180_000,
    resyncTimeoutMs: 2_000,
    ...overrides,
  };
}

/** A built app with its own NATS connection and pool. */
export interface TestApp {
  readonly app: FastifyInstance;
  readonly nc: NatsConnection;
  readonly database: Database<StatusDatabase>;
  /** Closes the app, then its connection and pool. */
  close(): Promise<void>;
}

/** Builds an app against real servers (its own connection and pool, closed by `close()`). */
export async function startApp(
  natsUrl: string,
  databaseUrl: string,
  overrides: Partial<Omit<StatusDeps, "nc" | "db" | "logger" | "options">> & { options?: Partial<StatusOptions> } = {},
): Promise<TestApp> {
  const nc = await connectNats({ servers: natsUrl, name: "status-test", logger, reconnectBaseMs: 50, reconnectMaxMs: 300 });
  const database = createDatabase<StatusDatabase>({ url: databaseUrl, poolSize: 4, logger, connectionTimeoutMs: 2_000 });
  const { options, ...rest } = overrides;
  const app = await buildStatusApp({ nc, db: database.db, logger, adminToken: ADMIN_TOKEN, ...rest, options: testOptions(options) });
  let closed: Promise<void> | undefined;
  return {
    app,
    nc,
    database,
    close() {
      closed ??= (async () => {
        await app.close();
        if (!nc.isClosed()) await nc.drain();
        await database.close();
      })();
      return closed;
    },
  };
}

/** Polls `check` until it returns true; fails with `what` after `timeoutMs`. */
export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const sha256 = (data: Uint8Array): string => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/**
 * Pushes a tiny image (a config blob whose content depends on `variant`, no
 * layers) as `repository:tag`; returns the manifest digest.
 */
export async function pushImage(client: RegistryClient, repository: string, tag: string, variant = "a"): Promise<string> {
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", variant }));
  const configDigest = sha256(config);
  await client.uploadBlob(repository, { digest: configDigest, size: config.length }, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
      layers: [],
    }),
  );
  return client.putManifest(repository, tag, { raw: manifest, mediaType: "application/vnd.oci.image.manifest.v1+json" });
}

const success = (bytes = 0) => ({ checksum: "sha256:00", bytesCopied: bytes, blobsCopied: bytes > 0 ? 1 : 0, blobsMounted: 0, durationMs: 5, reason: "event" });

/** A repository's row after an event at `eventAt` and a successful sync (lag sample = now - eventAt). */
export async function syncedRow(db: Kysely<TrackingDatabase>, repository: string, options: { eventAt?: Date; bytes?: number } = {}): Promise<void> {
  await requestSync(db, repository, "event", options.eventAt ?? new Date());
  const row = await getRow(db, repository);
  const claimed = await claim(db, repository, row!.pendingGeneration, "test-worker", 30_000);
  if (claimed.kind !== "claimed") throw new Error(`cannot claim ${repository}: ${claimed.kind}`);
  if (!(await complete(db, repository, "test-worker", claimed.generation, success(options.bytes)))) throw new Error(`cannot complete ${repository}`);
}

/** A repository's row after a failed sync. */
export async function failedRow(db: Kysely<TrackingDatabase>, repository: string, message: string): Promise<void> {
  await requestSync(db, repository, "backfill");
  const row = await getRow(db, repository);
  const claimed = await claim(db, repository, row!.pendingGeneration, "test-worker", 30_000);
  if (claimed.kind !== "claimed") throw new Error(`cannot claim ${repository}: ${claimed.kind}`);
  if (!(await fail(db, repository, "test-worker", message, undefined, { generation: claimed.generation, reason: "backfill", durationMs: 3 }))) {
    throw new Error(`cannot fail ${repository}`);
  }
}

/** A pending row (requested, never synced). */
export async function pendingRow(db: Kysely<TrackingDatabase>, repository: string): Promise<void> {
  await requestSync(db, repository, "backfill");
}

/**
 * The event-log's `geo_events` table, with the columns of its migration
 * `0001_geo_events` (services/event-log/src/migrations.ts); a service does
 * not import another service, so the test creates it.
 */
export async function createGeoEventsTable(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table geo_events (
      id bigserial primary key,
      registry_event_id text not null unique,
      event_type text not null check (event_type in ('push', 'delete', 'repository_delete', 'mount')),
      repository text not null,
      tag text,
      digest text,
      media_type text,
      size bigint,
      from_repository text,
      occurred_at timestamptz,
      received_at timestamptz not null,
      created_at timestamptz not null default now(),
      published_at timestamptz,
      traceparent text,
      tracestate text
    )`.execute(db);
  await sql`create index geo_events_unpublished_idx on geo_events (id) where published_at is null`.execute(db);
  await sql`create index geo_events_repository_idx on geo_events (repository, id)`.execute(db);
}

/** Inserts a geo event as event-log would; returns its id. */
export async function insertGeoEvent(
  db: Kysely<unknown>,
  values: { id: string; type?: string; repository: string; tag?: string; digest?: string; published?: boolean },
): Promise<string> {
  const r = await sql<{ id: string }>`
    insert into geo_events (registry_event_id, event_type, repository, tag, digest, media_type, received_at, published_at)
    values (${values.id}, ${values.type ?? "push"}, ${values.repository}, ${values.tag ?? null}, ${values.digest ?? null},
            ${values.digest === undefined ? null : "application/vnd.oci.image.manifest.v1+json"}, now(),
            ${values.published === false ? null : new Date()})
    returning id::text as id`.execute(db);
  return r.rows[0]!.id;
}

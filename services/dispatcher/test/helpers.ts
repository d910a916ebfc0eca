/** Shared helpers of the integration tests (real nats-server hub and leaf, Postgres, Distribution). */
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { GeoEvent, STREAMS, STREAM_NAMES, TransferJob, assertValid, decodeJson, encodeJson, geoEventSubject } from "@georep/schema";
import { connectNats, createDatabase, createLogger, ensureStream } from "@georep/runtime";
import type { Database, Logger } from "@georep/runtime";
import type { RegistryClient } from "@georep/registry-client";
import type { TrackingDatabase } from "@georep/tracking";
import { buildDispatcher } from "../src/app.js";
import type { Dispatcher, DispatcherOptions } from "../src/app.js";

/** Quiet by default; `TEST_LOG_LEVEL=debug` to watch. */
export const logger: Logger = createLogger({ name: "dispatcher-test", level: (process.env.TEST_LOG_LEVEL as "debug" | undefined) ?? "silent" });

export const SITE = "secondary-1";

/** Short timings so dispatches, sweeps and retries happen within a test. */
export const TEST_OPTIONS: DispatcherOptions = {
  site: SITE,
  primaryJsDomain: "primary",
  geoEventsMaxAgeMs: 3600_000,
  streamReplicas: 1,
  maxConcurrentSyncs: 100,
  tickMs: 50,
  eventDispatchDelayMs: 10,
  backfillIntervalMs: 0,
  catalogPageSize: 1000,
  sweepIntervalMs: 60_000,
  lostJobAfterMs: 60_000,
  publishTimeoutMs: 2_000,
  batchSize: 64,
  ackWaitMs: 5_000,
  maxAckPending: 1_000,
  retryDelayMs: 200,
};

/** A dispatcher with its own NATS connection and pool. */
export interface Instance {
  readonly dispatcher: Dispatcher;
  readonly nc: NatsConnection;
  readonly database: Database<TrackingDatabase>;
  /** Stops the dispatcher, then closes its connection and pool. */
  close(): Promise<void>;
}

/** Builds and starts a dispatcher against the secondary's NATS and Postgres. */
export async function startInstance(
  natsUrl: string,
  databaseUrl: string,
  options: Partial<DispatcherOptions> = {},
  registry?: RegistryClient,
): Promise<Instance> {
  const nc = await connectNats({ servers: natsUrl, name: "dispatcher-test", logger, reconnectBaseMs: 50, reconnectMaxMs: 300 });
  const database = createDatabase<TrackingDatabase>({ url: databaseUrl, poolSize: 4, logger, connectionTimeoutMs: 2_000 });
  const dispatcher = buildDispatcher({ nc, db: database.db, registry, logger, options: { ...TEST_OPTIONS, ...options } });
  await dispatcher.start();
  let closed: Promise<void> | undefined;
  return {
    dispatcher,
    nc,
    database,
    close() {
      closed ??= (async () => {
        await dispatcher.stop();
        await dispatcher.http.close();
        await nc.drain();
        await database.close();
      })();
      return closed;
    },
  };
}

/** The primary's GEO_EVENTS, as event-log creates it. */
export async function ensurePrimaryGeoEvents(hub: NatsConnection): Promise<void> {
  await ensureStream(await jetstreamManager(hub), { ...STREAMS.GEO_EVENTS, storage: "file" });
}

let eventId = 0;

/** Publishes a geo event on the primary's GEO_EVENTS (as event-log does). */
export async function publishGeoEvent(js: JetStreamClient, repository: string, overrides: Partial<GeoEvent> = {}): Promise<GeoEvent> {
  const event = assertValid(GeoEvent, {
    id: ++eventId,
    event_type: "push",
    repository,
    tag: "latest",
    created_at: new Date().toISOString(),
    ...overrides,
  });
  await js.publish(geoEventSubject(event.event_type, repository), encodeJson(GeoEvent, event), { msgID: `geo-${event.id}-${Date.now()}` });
  return event;
}

/** A job found in TRANSFER_JOBS, with its message id. */
export interface StoredJob extends TransferJob {
  readonly seq: number;
  readonly msgId: string | undefined;
}

/** Every job waiting in the secondary's TRANSFER_JOBS, in stream order. */
export async function storedJobs(nc: NatsConnection): Promise<StoredJob[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(STREAM_NAMES.TRANSFER_JOBS);
  const jobs: StoredJob[] = [];
  if (info.state.messages === 0) return jobs;
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const message = await jsm.streams.getMessage(STREAM_NAMES.TRANSFER_JOBS, { seq }).catch(() => null);
    if (message === null) continue;
    const decoded = decodeJson(TransferJob, message.data);
    if (!decoded.ok) throw new Error(`invalid job at ${seq}: ${JSON.stringify(decoded.problems)}`);
    jobs.push({ ...decoded.value, seq, msgId: message.header?.get("Nats-Msg-Id") });
  }
  return jobs;
}

/** Empties TRANSFER_JOBS. */
export async function purgeJobs(nc: NatsConnection): Promise<void> {
  await (await jetstreamManager(nc)).streams.purge(STREAM_NAMES.TRANSFER_JOBS);
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

/** Waits `ms` (to see that nothing more happens). */
export const settle = (ms = 300): Promise<void> => sleep(ms);

const sha256 = (data: Uint8Array): string => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/**
 * Pushes `count` tiny repositories (`<prefix>-<i>`) to a registry: one
 * shared config blob (uploaded once, then mounted) and a manifest without
 * layers per repository.
 */
export async function pushTinyRepositories(client: RegistryClient, prefix: string, count: number): Promise<string[]> {
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const configDigest = sha256(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
      layers: [],
    }),
  );
  const names = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(3, "0")}`);
  const [first] = names;
  if (first === undefined) return names;
  await client.uploadBlob(first, { digest: configDigest, size: config.length }, config);
  const pushOne = async (name: string): Promise<void> => {
    if (name !== first) await client.mountBlob(name, configDigest, first);
    await client.putManifest(name, "latest", { raw: manifest, mediaType: "application/vnd.oci.image.manifest.v1+json" });
  };
  for (let i = 0; i < names.length; i += 8) await Promise.all(names.slice(i, i + 8).map(pushOne));
  return names;
}

/**
 * The dispatcher on real servers: a primary nats-server (JetStream domain
 * "primary", leafnode hub) and the secondary's (domain "secondary-1", a leaf
 * of it) with the GEO_EVENTS mirror between them, Postgres with the tracking
 * table, and Distribution as the primary registry.
 */
import { sql } from "kysely";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { STREAM_NAMES, geoEventSubject, resyncSubject, syncDoneSubject } from "@georep/schema";
import { connectNats, createDatabase } from "@georep/runtime";
import type { Database } from "@georep/runtime";
import { createRegistryClient } from "@georep/registry-client";
import type { RegistryClient } from "@georep/registry-client";
import { claim, complete, fail, getRow, migrateTracking, reconcileCatalog, requestSync } from "@georep/tracking";
import type { TrackingDatabase } from "@georep/tracking";
import { freePort, startNats, startPostgres, startRegistry, waitForLeafnodes } from "@georep/testing";
import type { RunningNats, RunningPostgres, RunningRegistry } from "@georep/testing";
import { buildDispatcher } from "../../src/app.js";
import type { DispatcherOptions } from "../../src/app.js";
import { CONSUMER_NAME, ensureTransferJobs } from "../../src/streams.js";
import {
  SITE,
  TEST_OPTIONS,
  ensurePrimaryGeoEvents,
  logger,
  publishGeoEvent,
  purgeJobs,
  pushTinyRepositories,
  settle,
  startInstance,
  storedJobs,
  waitUntil,
} from "../helpers.js";
import type { Instance } from "../helpers.js";

let hub: RunningNats;
let leaf: RunningNats;
let postgres: RunningPostgres;
let primary: RunningRegistry;
let hubNc: NatsConnection;
let leafNc: NatsConnection;
let hubJs: JetStreamClient;
let database: Database<TrackingDatabase>;
const instances: Instance[] = [];

const success = { checksum: "sha256:00", bytesCopied: 0, blobsCopied: 0, blobsMounted: 0, durationMs: 1 };

async function start(options: Partial<DispatcherOptions> = {}, registry?: RegistryClient): Promise<Instance> {
  const instance = await startInstance(leaf.url, postgres.url, options, registry);
  instances.push(instance);
  return instance;
}

/** Acts as a transfer worker that finishes the sync of `repository`. */
async function completeSync(repository: string): Promise<void> {
  const row = await getRow(database.db, repository);
  const claimed = await claim(database.db, repository, row!.pendingGeneration, "test-worker", 30_000);
  if (claimed.kind !== "claimed") throw new Error(`cannot claim ${repository}: ${claimed.kind}`);
  expect(await complete(database.db, repository, "test-worker", claimed.generation, success)).toBe(true);
}

beforeAll(async () => {
  [hub, postgres, primary] = await Promise.all([startNats({ domain: "primary", leafnodeListen: true }), startPostgres(), startRegistry()]);
  leaf = await startNats({ domain: SITE, leafnodeRemotes: [hub.leafnodeUrl!] });
  await waitForLeafnodes(hub);
  hubNc = await connectNats({ servers: hub.url, name: "test-primary", logger });
  leafNc = await connectNats({ servers: leaf.url, name: "test-secondary", logger, reconnectBaseMs: 50, reconnectMaxMs: 300 });
  hubJs = jetstream(hubNc);
  await ensurePrimaryGeoEvents(hubNc);
  database = createDatabase<TrackingDatabase>({ url: postgres.url, poolSize: 4, logger });
  await migrateTracking(database.db);
});

afterAll(async () => {
  await Promise.all(instances.map((i) => i.close()));
  await Promise.all([hubNc?.close(), leafNc?.close()]);
  await database?.close();
  await Promise.all([leaf?.stop(), postgres?.stop(), primary?.stop()]);
  await hub?.stop();
});

beforeEach(async () => {
  await sql`truncate repository_sync`.execute(database.db);
  // The first dispatcher creates the stream.
  await purgeJobs(leafNc).catch(() => undefined);
});

afterEach(async () => {
  await Promise.all(instances.splice(0).map((i) => i.close()));
});

describe("the event path", () => {
  it("a geo event on the primary becomes a tracking row and exactly one transfer job on the secondary", async () => {
    const { dispatcher } = await start();
    // The secondary's GEO_EVENTS is a mirror of the primary's, across the leafnode.
    const mirror = await (await jetstreamManager(leafNc)).streams.info(STREAM_NAMES.GEO_EVENTS);
    expect(mirror.config.mirror).toMatchObject({ name: "GEO_EVENTS", external: { api: "$JS.primary.API" } });
    expect(mirror.config.storage).toBe("file");

    await publishGeoEvent(hubJs, "team/app");
    await waitUntil("a transfer job", async () => (await storedJobs(leafNc)).length > 0);
    await settle();
    const jobs = await storedJobs(leafNc);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ repository: "team/app", generation: 1, reason: "event", priority: 2 });
    expect(jobs[0]!.msgId).toMatch(/^team\/app@1#[0-9a-f]{12}$/);
    expect(await getRow(database.db, "team/app")).toMatchObject({ state: "pending", pendingGeneration: 1, dispatchedGeneration: 1 });
    expect(dispatcher.metrics.get("eventsConsumed")).toBe(1);
    expect(dispatcher.metrics.get("jobsDispatched", "event")).toBe(1);
  });

  it("terminates an invalid geo event and goes on with the next", async () => {
    const { dispatcher } = await start();
    await hubJs.publish(geoEventSubject("push", "bad/event"), new TextEncoder().encode("not json"));
    await publishGeoEvent(hubJs, "good/event");
    await waitUntil("the valid event's row", async () => (await getRow(database.db, "good/event")) !== undefined);
    await settle();
    expect(dispatcher.metrics.get("eventsInvalid")).toBe(1);
    expect(await getRow(database.db, "bad/event")).toBeUndefined();
    const info = await (await jetstreamManager(leafNc)).consumers.info(STREAM_NAMES.GEO_EVENTS, CONSUMER_NAME);
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_redelivered).toBe(0);
  });

  it("events that arrive before the dispatch give one job, for the latest generation", async () => {
    // No periodic round: only the round the first event triggers, after a delay that covers the burst.
    await start({ tickMs: 60_000, eventDispatchDelayMs: 400 });
    await settle(); // the round at start-up is over
    for (const tag of ["v1", "v2", "v3"]) await publishGeoEvent(hubJs, "team/burst", { tag });
    await waitUntil("a transfer job", async () => (await storedJobs(leafNc)).length > 0);
    await settle(500);
    const jobs = await storedJobs(leafNc);
    expect(jobs.map((j) => [j.repository, j.generation])).toEqual([["team/burst", 3]]);
  });
});

describe("backfill", () => {
  it("walks every page of the primary's catalog, tracks what is new, marks what is gone, and dispatches", async () => {
    const client = createRegistryClient({ url: primary.url });
    const names = await pushTinyRepositories(client, "bf/repo", 120);
    // A repository synced earlier that the primary no longer has.
    await requestSync(database.db, "gone/repo", "event");
    await completeSync("gone/repo");

    // Pages of 50: the 120 repositories take three pages.
    const { dispatcher } = await start({ catalogPageSize: 50, maxConcurrentSyncs: 5 }, client);
    await waitUntil("the backfill", () => dispatcher.metrics.get("backfillRuns", "ok") === 1);
    const rows = await database.db.selectFrom("repository_sync").select(["repository", "missing_on_primary", "priority"]).execute();
    expect(rows.map((r) => r.repository).sort()).toEqual([...names, "gone/repo"].sort());
    expect(rows.filter((r) => r.missing_on_primary).map((r) => r.repository)).toEqual(["gone/repo"]);
    expect(await getRow(database.db, "gone/repo")).toMatchObject({ pendingGeneration: 2, state: "pending" });
    expect(dispatcher.metrics.get("backfillAdded")).toBe(120);
    expect(dispatcher.metrics.get("backfillMissing")).toBe(1);

    // Dispatched within the capacity.
    await waitUntil("five jobs", async () => (await storedJobs(leafNc)).length >= 5);
    await settle();
    const jobs = await storedJobs(leafNc);
    expect(jobs).toHaveLength(5);
    expect(new Set(jobs.map((j) => j.repository)).size).toBe(5);
    expect(jobs.every((j) => j.reason === "backfill" && j.priority === 8 && [...names, "gone/repo"].includes(j.repository))).toBe(true);
  });

  it("marks nothing missing when the catalog cannot be read or comes back empty", async () => {
    await reconcileCatalog(database.db, ["kept/one", "kept/two"]);
    const deadPort = await freePort();
    const unreachable = buildDispatcher({ nc: leafNc, db: database.db, registry: createRegistryClient({ url: `http://127.0.0.1:${deadPort}`, retry: { retries: 0 } }), logger, options: TEST_OPTIONS });
    const failed = await unreachable.backfill();
    expect(failed.outcome).toBe("error");
    expect(unreachable.metrics.get("backfillRuns", "error")).toBe(1);

    const empty = await startRegistry();
    try {
      const misconfigured = buildDispatcher({ nc: leafNc, db: database.db, registry: createRegistryClient({ url: empty.url }), logger, options: TEST_OPTIONS });
      expect((await misconfigured.backfill()).outcome).toBe("skipped");
    } finally {
      await empty.stop();
    }
    const missing = await database.db.selectFrom("repository_sync").select("repository").where("missing_on_primary", "=", true).execute();
    expect(missing).toEqual([]);
    expect((await getRow(database.db, "kept/one"))?.pendingGeneration).toBe(1);
  });
});

describe("capacity and replicas", () => {
  it("keeps at most max_concurrent_syncs in flight, events ahead of backfill", async () => {
    await reconcileCatalog(database.db, ["bf/one"]);
    for (const r of ["cap/a", "cap/b", "cap/c"]) await requestSync(database.db, r, "event");
    await start({ maxConcurrentSyncs: 2 });
    await waitUntil("two jobs", async () => (await storedJobs(leafNc)).length >= 2);
    await settle();
    let jobs = await storedJobs(leafNc);
    expect(jobs.map((j) => j.reason)).toEqual(["event", "event"]);

    await completeSync(jobs[0]!.repository);
    await waitUntil("a third job", async () => (await storedJobs(leafNc)).length >= 3);
    await settle();
    jobs = await storedJobs(leafNc);
    expect(jobs).toHaveLength(3);
    expect(new Set(jobs.map((j) => j.repository))).toEqual(new Set(["cap/a", "cap/b", "cap/c"]));

    await completeSync(jobs[1]!.repository);
    await waitUntil("a fourth job", async () => (await storedJobs(leafNc)).length >= 4);
    await settle();
    jobs = await storedJobs(leafNc);
    expect(jobs).toHaveLength(4);
    expect(jobs[3]).toMatchObject({ repository: "bf/one", reason: "backfill" });
  });

  it("a finished sync announced by a transfer worker frees its slot at once, not at the next tick", async () => {
    for (const r of ["done/a", "done/b"]) await requestSync(database.db, r, "event");
    // One slot, and no periodic round within the test.
    const { dispatcher } = await start({ maxConcurrentSyncs: 1, tickMs: 60_000 });
    await waitUntil("the first job", async () => (await storedJobs(leafNc)).length >= 1);
    await settle();
    const [first] = await storedJobs(leafNc);
    await completeSync(first!.repository);
    await settle();
    expect(await storedJobs(leafNc)).toHaveLength(1); // recorded, but nobody said so: the slot waits for the tick

    leafNc.publish(syncDoneSubject(SITE));
    await waitUntil("the second job", async () => (await storedJobs(leafNc)).length >= 2, 3_000);
    expect((await storedJobs(leafNc)).map((j) => j.repository).sort()).toEqual(["done/a", "done/b"]);
    expect(dispatcher.metrics.get("syncsDoneHeard")).toBe(1);
  });

  it("two dispatchers never dispatch a generation twice and share one capacity", async () => {
    const repositories = Array.from({ length: 40 }, (_, i) => `rep/app-${i}`);
    for (const r of repositories) await requestSync(database.db, r, "event");
    const [a, b] = await Promise.all([start({ maxConcurrentSyncs: 10, tickMs: 10 }), start({ maxConcurrentSyncs: 10, tickMs: 10 })]);
    const dispatched = (): number => a.dispatcher.metrics.get("jobsDispatched") + b.dispatcher.metrics.get("jobsDispatched");

    await waitUntil("ten jobs", () => dispatched() >= 10);
    await settle();
    expect(dispatched()).toBe(10);
    expect(await storedJobs(leafNc)).toHaveLength(10);

    for (const job of await storedJobs(leafNc)) await completeSync(job.repository);
    await waitUntil("twenty jobs", () => dispatched() >= 20);
    await settle();
    expect(dispatched()).toBe(20);
    const jobs = await storedJobs(leafNc);
    expect(jobs).toHaveLength(20);
    expect(new Set(jobs.map((j) => `${j.repository}@${j.generation}`)).size).toBe(20);
  });
});

describe("publish failures", () => {
  it("puts a row back when its job cannot be published, and dispatches it once JetStream takes jobs again", async () => {
    const { dispatcher } = await start();
    const jsm = await jetstreamManager(leafNc);
    await jsm.streams.delete(STREAM_NAMES.TRANSFER_JOBS);
    try {
      await requestSync(database.db, "pub/app", "event");
      await waitUntil("a failed publish", () => dispatcher.metrics.get("dispatchFailures") > 0);
      // Each round (every 50 ms) takes the row and puts it back when the publish fails: it is seen back between rounds.
      await waitUntil("the row put back", async () => {
        const row = await getRow(database.db, "pub/app");
        return row?.state === "pending" && row.dispatchedGeneration === 0;
      });
      expect(await getRow(database.db, "pub/app")).toMatchObject({ state: "pending", pendingGeneration: 1 });
    } finally {
      await ensureTransferJobs(jsm, TEST_OPTIONS);
    }
    await waitUntil("the job", async () => (await storedJobs(leafNc)).length > 0);
    await settle();
    expect((await storedJobs(leafNc)).map((j) => [j.repository, j.generation])).toEqual([["pub/app", 1]]);
    expect(dispatcher.metrics.get("jobsDispatched")).toBe(1);
  });
});

describe("sweeper", () => {
  it("dispatches a repository again when its worker's lease expired", async () => {
    const { dispatcher } = await start({ sweepIntervalMs: 100 });
    await requestSync(database.db, "lease/app", "event");
    await waitUntil("the first job", async () => (await storedJobs(leafNc)).length === 1);
    // A worker claims it and dies.
    expect((await claim(database.db, "lease/app", 1, "dead-worker", 200)).kind).toBe("claimed");
    await waitUntil("a second job", async () => (await storedJobs(leafNc)).length >= 2);
    const jobs = await storedJobs(leafNc);
    expect(jobs.map((j) => [j.repository, j.generation])).toEqual([
      ["lease/app", 1],
      ["lease/app", 1],
    ]);
    // Not taken for a duplicate of the first dispatch.
    expect(jobs[1]!.msgId).not.toBe(jobs[0]!.msgId);
    expect(dispatcher.metrics.get("leasesReleased")).toBe(1);
    expect(await getRow(database.db, "lease/app")).toMatchObject({ state: "pending", leaseOwner: null, dispatchedGeneration: 1 });
  });

  it("dispatches a failed repository again once its retry time is reached (reason retry)", async () => {
    await start();
    await requestSync(database.db, "retry/app", "event");
    await waitUntil("the first job", async () => (await storedJobs(leafNc)).length === 1);
    expect((await claim(database.db, "retry/app", 1, "w", 30_000)).kind).toBe("claimed");
    expect(await fail(database.db, "retry/app", "w", "tag v1: primary answered 500")).toBe(true);
    await settle();
    expect(await storedJobs(leafNc)).toHaveLength(1); // waiting for retry_at (5 s at least)
    await sql`update repository_sync set retry_at = now() - interval '1 second' where repository = 'retry/app'`.execute(database.db);
    await waitUntil("the retry job", async () => (await storedJobs(leafNc)).length === 2);
    expect((await storedJobs(leafNc))[1]).toMatchObject({ repository: "retry/app", generation: 1, reason: "retry", priority: 2 });
  });

  it("dispatches again a row whose job vanished without a claim, and only that one", async () => {
    const { dispatcher } = await start({ sweepIntervalMs: 100, lostJobAfterMs: 300 });
    await requestSync(database.db, "lost/app", "event");
    await requestSync(database.db, "kept/app", "event");
    await waitUntil("two jobs", async () => (await storedJobs(leafNc)).length === 2);
    const lost = (await storedJobs(leafNc)).find((j) => j.repository === "lost/app")!;
    await (await jetstreamManager(leafNc)).streams.deleteMessage(STREAM_NAMES.TRANSFER_JOBS, lost.seq);
    await waitUntil("the lost job dispatched again", async () => (await storedJobs(leafNc)).some((j) => j.repository === "lost/app"));
    await settle(500);
    const jobs = await storedJobs(leafNc);
    expect(jobs.filter((j) => j.repository === "kept/app")).toHaveLength(1);
    expect(jobs.filter((j) => j.repository === "lost/app")).toHaveLength(1);
    expect(dispatcher.metrics.get("lostJobsRequeued")).toBe(1);
  });
});

describe("resync requests", () => {
  const ask = async (body: unknown): Promise<unknown> => {
    const reply = await leafNc.request(resyncSubject(SITE), typeof body === "string" ? body : JSON.stringify(body), { timeout: 5_000 });
    return reply.json();
  };

  it("resyncs one repository, the failed ones, or all, and refuses bad input", async () => {
    const { dispatcher } = await start();
    expect(await ask({ repository: "rs/app", requested_at: new Date().toISOString(), requested_by: "test" })).toEqual({ accepted: 1 });
    await waitUntil("the resync job", async () => (await storedJobs(leafNc)).length === 1);
    expect((await storedJobs(leafNc))[0]).toMatchObject({ repository: "rs/app", reason: "resync", priority: 0, generation: 1 });

    // A failed row waits for its retry time (10 s at least) unless a resync of the failed rows is asked for.
    await requestSync(database.db, "rs/failed", "event");
    await waitUntil("its job", async () => (await storedJobs(leafNc)).length === 2);
    expect((await claim(database.db, "rs/failed", 1, "w", 30_000)).kind).toBe("claimed");
    expect(await fail(database.db, "rs/failed", "w", "tag v1: boom")).toBe(true);
    await completeSync("rs/app");
    expect(await ask({ only_failed: true })).toEqual({ accepted: 1 });
    await waitUntil("the failed row's resync job", async () => (await storedJobs(leafNc)).length === 3);
    expect((await storedJobs(leafNc))[2]).toMatchObject({ repository: "rs/failed", reason: "resync", generation: 2 });

    expect(await ask({})).toEqual({ accepted: 2 });
    expect(await getRow(database.db, "rs/app")).toMatchObject({ state: "pending", pendingGeneration: 2 });

    expect(await ask({ repository: "Not A Repo" })).toMatchObject({ error: expect.stringMatching(/invalid resync request/) as unknown });
    expect(await ask("not json")).toMatchObject({ error: expect.stringMatching(/not JSON/) as unknown });
    expect(await ask({ repository: "rs/app", only_failed: true })).toMatchObject({ error: expect.stringMatching(/not both/) as unknown });
    expect(dispatcher.metrics.get("resyncRequests", "accepted")).toBe(3);
    expect(dispatcher.metrics.get("resyncRequests", "rejected")).toBe(3);
  });
});

describe("the mirror", () => {
  it("catches up after the secondary's NATS was down", async () => {
    await start();
    await publishGeoEvent(hubJs, "mirror/before");
    await waitUntil("the first event's row", async () => (await getRow(database.db, "mirror/before")) !== undefined);

    // The secondary's server dies; the primary goes on publishing meanwhile.
    process.kill(leaf.pid, "SIGKILL");
    await settle(200);
    await publishGeoEvent(hubJs, "mirror/during");
    expect(await getRow(database.db, "mirror/during")).toBeUndefined();
    await leaf.restart();
    await waitForLeafnodes(hub);

    await waitUntil("the event published during the outage", async () => (await getRow(database.db, "mirror/during")) !== undefined, 30_000);
    await waitUntil("its job", async () => (await storedJobs(leafNc)).some((j) => j.repository === "mirror/during"), 10_000);
  });
});

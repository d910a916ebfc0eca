/** The tracking state machine on a real Postgres, with several "replicas" (pools) at once. */
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { startPostgres } from "@georep/testing";
import type { RunningPostgres } from "@georep/testing";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { claim, complete, isPaused, lagPercentiles, pauseState, recentSyncs, setPaused, requestStaleSyncs, countByState, fail, getRow, inFlight, migrateTracking, reconcileCatalog, recordBlobs, blobLocations, blobPlaces, blobCopyUnderWay, claimBlobCopy, releaseBlobCopy, renewBlobCopy, blobPlacesMany, releaseExpiredLeases, renewLease, requestSync, takeDispatchable } from "../../src/index.js";
import type { TrackingDatabase } from "../../src/index.js";

let server: RunningPostgres;
const dbs: Kysely<TrackingDatabase>[] = [];
const open = () => {
  const pool = new pg.Pool({ connectionString: server.url, max: 4 });
  pool.on("error", () => undefined); // idle clients cut by the server's shutdown at the end
  const db = new Kysely<TrackingDatabase>({ dialect: new PostgresDialect({ pool }) });
  dbs.push(db);
  return db;
};
let db: Kysely<TrackingDatabase>;

const success = { checksum: "sha256:abc", bytesCopied: 10, blobsCopied: 2, blobsMounted: 1, durationMs: 5 };

beforeAll(async () => {
  server = await startPostgres();
  db = open();
  // two replicas migrating at once apply the migration once
  const [a, b] = await Promise.all([migrateTracking(db), migrateTracking(open())]);
  expect([...a, ...b]).toEqual(["0001_repository_sync", "0002_incremental_sync", "0003_history_and_control", "0004_event_digests", "0005_recent_blob_locations", "0006_blob_copies"]);
});

afterAll(async () => {
  await Promise.all(dbs.map((d) => d.destroy()));
  await server?.stop();
});

beforeEach(async () => {
  await sql`truncate repository_sync, blob_location, blob_copy, sync_history`.execute(db);
  await setPaused(db, false);
});

describe("tracking rows", () => {
  it("an event creates a pending row; more events bump the generation", async () => {
    await requestSync(db, "team/app", "event");
    expect(await getRow(db, "team/app")).toMatchObject({ state: "pending", pendingGeneration: 1, syncedGeneration: 0, priority: 2 });
    await requestSync(db, "team/app", "event");
    expect((await getRow(db, "team/app"))?.pendingGeneration).toBe(2);
  });

  it("dispatches each generation once, events before backfill, even with replicas racing", async () => {
    await reconcileCatalog(db, ["bf/a", "bf/b", "bf/c"]);
    await requestSync(db, "ev/x", "event");
    const replicas = [open(), open(), open()];
    const taken = (await Promise.all(replicas.map((r) => takeDispatchable(r, 10)))).flat();
    expect(taken.map((d) => d.repository).sort()).toEqual(["bf/a", "bf/b", "bf/c", "ev/x"]);
    const first = (await Promise.all(replicas.map((r) => takeDispatchable(r, 10)))).flat();
    expect(first).toEqual([]);
    expect(await inFlight(db)).toBe(4);
    await sql`truncate repository_sync`.execute(db);
    await reconcileCatalog(db, ["bf/a"]);
    await requestSync(db, "ev/x", "event");
    expect((await takeDispatchable(db, 1)).map((d) => [d.repository, d.reason])).toEqual([["ev/x", "event"]]);
    expect((await takeDispatchable(db, 1)).map((d) => [d.repository, d.reason])).toEqual([["bf/a", "backfill"]]);
  });

  it("one sync at a time per repository; a redelivered job after success is done", async () => {
    await requestSync(db, "team/app", "event");
    const [job] = await takeDispatchable(db, 10);
    expect(await claim(db, "team/app", job!.generation, "worker-1", 30_000)).toMatchObject({ kind: "claimed", generation: 1, missingOnPrimary: false, awaited: {} });
    expect((await claim(open(), "team/app", job!.generation, "worker-2", 30_000)).kind).toBe("busy");
    await requestSync(db, "team/app", "event");
    expect((await claim(db, "team/app", 2, "worker-1", 30_000)).kind).toBe("busy"); // not twice by one worker either
    expect(await renewLease(db, "team/app", "worker-1", 30_000)).toBe(true);
    expect(await renewLease(db, "team/app", "worker-2", 30_000)).toBe(false);
    expect(await complete(db, "team/app", "worker-1", 1, success)).toBe(true);
    expect(await getRow(db, "team/app")).toMatchObject({ state: "pending", syncedGeneration: 1, retryCount: 0, verificationChecksum: "sha256:abc", leaseOwner: null });
    expect(await claim(db, "team/app", job!.generation, "worker-2", 30_000)).toEqual({ kind: "done" });
    const [next] = await takeDispatchable(db, 10);
    expect(next?.generation).toBe(2);
    expect((await claim(db, "team/app", 2, "worker-2", 30_000)).kind).toBe("claimed");
    expect(await complete(db, "team/app", "worker-2", 2, success)).toBe(true);
    expect((await getRow(db, "team/app"))?.state).toBe("synced");
    expect(await takeDispatchable(db, 10)).toEqual([]);
  });

  it("an event during a sync is not lost: the row is pending again and dispatched again", async () => {
    await requestSync(db, "team/app", "event");
    const [job] = await takeDispatchable(db, 10);
    const claimed = await claim(db, "team/app", job!.generation, "w", 30_000);
    expect(claimed.kind).toBe("claimed");
    await requestSync(db, "team/app", "event"); // arrives mid-sync
    expect((await getRow(db, "team/app"))?.state).toBe("started");
    expect(await takeDispatchable(db, 10)).toEqual([]); // not while it runs
    await complete(db, "team/app", "w", 1, success);
    expect(await getRow(db, "team/app")).toMatchObject({ state: "pending", syncedGeneration: 1, pendingGeneration: 2 });
    expect((await takeDispatchable(db, 10)).map((d) => d.generation)).toEqual([2]);
  });

  it("failures back off with a growing retry_count that resets only on success", async () => {
    await requestSync(db, "team/bad", "event");
    let [job] = await takeDispatchable(db, 10);
    // Nothing was ever written there: the first sync need not list the secondary first.
    expect(await claim(db, "team/bad", job!.generation, "w", 30_000)).toMatchObject({ kind: "claimed", firstSync: true });
    expect(await fail(db, "team/bad", "w", 'tag "v1": manifest unknown', { baseMs: 50, capMs: 100 })).toBe(true);
    let row = await getRow(db, "team/bad");
    expect(row).toMatchObject({ state: "failed", retryCount: 1, lastSyncFailure: 'tag "v1": manifest unknown' });
    expect(await takeDispatchable(db, 10)).toEqual([]); // not before retry_at
    await new Promise((r) => setTimeout(r, 150));
    [job] = await takeDispatchable(db, 10);
    expect(job).toMatchObject({ repository: "team/bad", reason: "retry" });
    // The failed sync may have written some of it: no longer a first sync.
    expect(await claim(db, "team/bad", job!.generation, "w", 30_000)).toMatchObject({ kind: "claimed", firstSync: false });
    await fail(db, "team/bad", "w", "again", { baseMs: 50, capMs: 100 });
    expect((await getRow(db, "team/bad"))?.retryCount).toBe(2);
    await new Promise((r) => setTimeout(r, 150));
    [job] = await takeDispatchable(db, 10);
    await claim(db, "team/bad", job!.generation, "w", 30_000);
    await complete(db, "team/bad", "w", job!.generation, success);
    row = await getRow(db, "team/bad");
    expect(row).toMatchObject({ state: "synced", retryCount: 0, lastSyncFailure: null });
  });

  it("a dead worker's lease expires and the repository is dispatched again", async () => {
    await requestSync(db, "team/app", "event");
    const [job] = await takeDispatchable(db, 10);
    await claim(db, "team/app", job!.generation, "dead-worker", 100);
    expect(await releaseExpiredLeases(db)).toEqual([]);
    await new Promise((r) => setTimeout(r, 200));
    expect(await releaseExpiredLeases(db)).toEqual(["team/app"]);
    const [again] = await takeDispatchable(db, 10);
    expect(again).toMatchObject({ repository: "team/app", generation: 1 });
    expect((await claim(db, "team/app", again!.generation, "live-worker", 30_000)).kind).toBe("claimed");
    expect(await complete(db, "team/app", "dead-worker", 1, success)).toBe(false); // the dead one cannot record
  });

  it("backfill adds what is new and marks what the primary lost", async () => {
    expect(await reconcileCatalog(db, ["a/1", "a/2"])).toEqual({ added: 2, missing: 0 });
    expect(await reconcileCatalog(db, ["a/1", "a/2", "a/3"])).toEqual({ added: 1, missing: 0 });
    expect(await reconcileCatalog(db, ["a/1", "a/3"])).toEqual({ added: 0, missing: 1 });
    expect(await getRow(db, "a/2")).toMatchObject({ missingOnPrimary: true, state: "pending" });
    expect(await countByState(db)).toEqual({ pending: 3, started: 0, synced: 0, failed: 0 });
    await requestSync(db, "a/2", "event"); // pushed again
    expect((await getRow(db, "a/2"))?.missingOnPrimary).toBe(false);
  });

  it("re-syncs repositories not verified for a while (a lost notification is found)", async () => {
    await requestSync(db, "old/one", "event");
    await requestSync(db, "fresh/one", "event");
    for (const d of await takeDispatchable(db, 10)) {
      await claim(db, d.repository, d.generation, "w", 30_000);
      await complete(db, d.repository, "w", d.generation, success);
    }
    await sql`update repository_sync set last_synced_at = now() - interval '2 hours' where repository = 'old/one'`.execute(db);
    expect(await requestStaleSyncs(db, 3_600_000)).toBe(1);
    expect(await getRow(db, "old/one")).toMatchObject({ state: "pending", pendingGeneration: 2, syncedGeneration: 1 });
    expect((await getRow(db, "fresh/one"))?.state).toBe("synced");
    expect((await takeDispatchable(db, 10)).map((d) => [d.repository, d.reason])).toEqual([["old/one", "backfill"]]);
  });

  it("hands the tags named by events to the next sync, or asks for a full one", async () => {
    const finish = async (owner: string, verifiedTags: Record<string, string>) => {
      const [job] = await takeDispatchable(db, 10);
      const claimed = await claim(db, "inc/app", job!.generation, owner, 30_000);
      if (claimed.kind !== "claimed") throw new Error(`not claimed: ${claimed.kind}`);
      expect(await complete(db, "inc/app", owner, claimed.generation, { ...success, verifiedTags })).toBe(true);
      return claimed;
    };
    await requestSync(db, "inc/app", "event", new Date(), "v1");
    expect((await finish("w", { v1: "sha256:1" })).incremental).toBeUndefined(); // first sync: full

    await requestSync(db, "inc/app", "event", new Date(), "v2");
    await requestSync(db, "inc/app", "event", new Date(), "v2");
    await requestSync(db, "inc/app", "event", new Date(), "v3");
    expect((await finish("w", { v1: "sha256:1", v2: "sha256:2", v3: "sha256:3" })).incremental).toEqual({ verifiedTags: { v1: "sha256:1" }, eventTags: ["v2", "v3"] });

    await requestSync(db, "inc/app", "event", new Date(), "v4");
    await requestSync(db, "inc/app", "event"); // an event without a tag (a delete)
    expect((await finish("w", { v1: "sha256:1" })).incremental).toBeUndefined();

    await requestSync(db, "inc/app", "event", new Date(), "v5");
    const [job] = await takeDispatchable(db, 10);
    await claim(db, "inc/app", job!.generation, "w", 30_000);
    await fail(db, "inc/app", "w", "boom", { baseMs: 1, capMs: 1 });
    await new Promise((r) => setTimeout(r, 20));
    expect((await finish("w", { v1: "sha256:1" })).incremental).toBeUndefined(); // after a failure: full
  });

  it("hands over the digest each push event named, the newest push of a tag winning, and delays a re-check", async () => {
    const t0 = new Date(Date.now() - 3_000);
    const t1 = new Date(Date.now() - 2_000);
    await requestSync(db, "aw/app", "event", t1, "v1", { digest: "sha256:new" });
    // a re-check of an older push of v1 does not override the newer one, but delays dispatch
    await requestSync(db, "aw/app", "event", t0, "v1", { digest: "sha256:old", notBefore: new Date(Date.now() + 300) });
    await requestSync(db, "aw/app", "event", t0, "v2", { digest: "sha256:two", notBefore: new Date(Date.now() + 300) });
    expect(await takeDispatchable(db, 10)).toEqual([]);
    await new Promise((r) => setTimeout(r, 350));
    const [job] = await takeDispatchable(db, 10);
    const claimed = await claim(db, "aw/app", job!.generation, "w", 30_000);
    if (claimed.kind !== "claimed") throw new Error(`not claimed: ${claimed.kind}`);
    expect(claimed.awaited).toEqual({ v1: { digest: "sha256:new", at: t1.toISOString() }, v2: { digest: "sha256:two", at: t0.toISOString() } });
    // the newest event time stays (a re-check of an old push does not move it back)
    expect(claimed.pushedAt?.toISOString()).toBe(t1.toISOString());
    await complete(db, "aw/app", "w", claimed.generation, success);
    await requestSync(db, "aw/app", "backfill");
    const [again] = await takeDispatchable(db, 10);
    const next = await claim(db, "aw/app", again!.generation, "w", 30_000);
    expect(next.kind === "claimed" && next.awaited).toEqual({});
  });

  it("an event sync is incremental only while the last full sync is recent", async () => {
    const round = async (options: { fullSyncAfterMs?: number }, full: boolean) => {
      await requestSync(db, "fr/app", "event", new Date(), "v1");
      const [job] = await takeDispatchable(db, 10);
      const claimed = await claim(db, "fr/app", job!.generation, "w", 30_000, options);
      if (claimed.kind !== "claimed") throw new Error(`not claimed: ${claimed.kind}`);
      await complete(db, "fr/app", "w", claimed.generation, { ...success, verifiedTags: { v1: "sha256:1" }, full });
      return claimed.incremental !== undefined;
    };
    expect(await round({}, true)).toBe(false); // first sync: full
    expect(await round({}, false)).toBe(true); // the full one is recent: incremental
    expect(await round({ fullSyncAfterMs: 60_000 }, false)).toBe(true);
    await new Promise((r) => setTimeout(r, 120));
    expect(await round({ fullSyncAfterMs: 100 }, true)).toBe(false); // the last full sync is too old
    expect(await round({ fullSyncAfterMs: 100 }, false)).toBe(true); // that one restarted the clock
    expect(await round({ fullSyncAfterMs: 0 }, true)).toBe(false); // 0: always full
  });

  it("a claim that takes over an expired lease is a full sync", async () => {
    await requestSync(db, "to/app", "event", new Date(), "v1");
    let [job] = await takeDispatchable(db, 10);
    let claimed = await claim(db, "to/app", job!.generation, "w", 30_000);
    await complete(db, "to/app", "w", job!.generation, { ...success, verifiedTags: { v1: "sha256:1" } });
    await requestSync(db, "to/app", "event", new Date(), "v2");
    [job] = await takeDispatchable(db, 10);
    claimed = await claim(db, "to/app", job!.generation, "dying", 50); // handed ["v2"], then dies
    expect(claimed.kind === "claimed" && claimed.incremental?.eventTags).toEqual(["v2"]);
    await new Promise((r) => setTimeout(r, 100));
    claimed = await claim(db, "to/app", job!.generation, "w", 30_000);
    expect(claimed.kind).toBe("claimed");
    expect(claimed.kind === "claimed" && claimed.incremental).toBeUndefined();
  });

  it("remembers which repositories hold a blob", async () => {
    await recordBlobs(db, "team/a", ["sha256:1", "sha256:2"]);
    await recordBlobs(db, "team/b", ["sha256:1"]);
    expect((await blobLocations(db, "sha256:1", "team/c")).sort()).toEqual(["team/a", "team/b"]);
    expect(await blobLocations(db, "sha256:1", "team/a")).toEqual(["team/b"]);
    expect(await blobPlaces(db, "sha256:1", "team/a")).toEqual({ here: true, elsewhere: ["team/b"], copying: false });
    expect(await blobPlaces(db, "sha256:2", "team/b")).toEqual({ here: false, elsewhere: ["team/a"], copying: false });
    expect(await blobPlaces(db, "sha256:3", "team/a")).toEqual({ here: false, elsewhere: [], copying: false });
    const many = await blobPlacesMany(db, ["sha256:1", "sha256:2", "sha256:3", "sha256:1"], "team/a", 1);
    expect(Object.fromEntries(many)).toEqual({
      "sha256:1": { here: true, elsewhere: ["team/b"], copying: false },
      "sha256:2": { here: true, elsewhere: [], copying: false },
      "sha256:3": { here: false, elsewhere: [], copying: false },
    });
  });

  it("blob copy claims: one owner at a time, seen by blobPlaces, renewed, released, taken over once expired", async () => {
    expect(await claimBlobCopy(db, "sha256:c", "team/a", "w1", 60_000)).toBe(true);
    expect(await claimBlobCopy(db, "sha256:c", "team/a", "w2", 60_000)).toBe(false);
    expect(await claimBlobCopy(db, "sha256:c", "team/b", "w2", 60_000)).toBe(true); // another repository
    expect((await blobPlaces(db, "sha256:c", "team/a")).copying).toBe(true);
    expect((await blobPlaces(db, "sha256:c", "team/c")).copying).toBe(false);
    expect(await blobCopyUnderWay(db, "sha256:c", "team/a")).toBe(true);
    expect(await renewBlobCopy(db, "sha256:c", "team/a", "w1", 60_000)).toBe(true);
    expect(await renewBlobCopy(db, "sha256:c", "team/a", "w2", 60_000)).toBe(false);
    await releaseBlobCopy(db, "sha256:c", "team/a", "w2"); // not theirs: nothing happens
    expect(await blobCopyUnderWay(db, "sha256:c", "team/a")).toBe(true);
    await releaseBlobCopy(db, "sha256:c", "team/a", "w1");
    expect(await blobCopyUnderWay(db, "sha256:c", "team/a")).toBe(false);
    // A dead owner's claim expires and can be taken over.
    expect(await claimBlobCopy(db, "sha256:d", "team/a", "dead", 50)).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect(await blobCopyUnderWay(db, "sha256:d", "team/a")).toBe(false);
    expect(await claimBlobCopy(db, "sha256:d", "team/a", "w2", 60_000)).toBe(true);
  });

  it("keeps a history of finished syncs, with a lag sample only when the sync covered a new event", async () => {
    const pushedAt = new Date(Date.now() - 2_000);
    await requestSync(db, "team/hist", "event", pushedAt, "v1");
    let [job] = await takeDispatchable(db, 10);
    await claim(db, "team/hist", job!.generation, "w", 30_000);
    expect(await fail(db, "team/hist", "w", 'tag "v1": blob unknown', { baseMs: 10, capMs: 10 }, { reason: "event", durationMs: 3 })).toBe(true);
    await new Promise((r) => setTimeout(r, 30));
    [job] = await takeDispatchable(db, 10);
    await claim(db, "team/hist", job!.generation, "w", 30_000);
    expect(await complete(db, "team/hist", "w", job!.generation, { ...success, reason: "retry" })).toBe(true);
    // a backfill re-verification covers no new push: no lag sample
    await requestSync(db, "team/hist", "backfill");
    [job] = await takeDispatchable(db, 10);
    await claim(db, "team/hist", job!.generation, "w", 30_000);
    expect(await complete(db, "team/hist", "w", job!.generation, { ...success, reason: "backfill" })).toBe(true);

    const history = await recentSyncs(db, "team/hist");
    expect(history.map((h) => [h.outcome, h.reason, h.generation])).toEqual([
      ["synced", "backfill", 2],
      ["synced", "retry", 1],
      ["failed", "event", 1],
    ]);
    expect(history[2]).toMatchObject({ error: 'tag "v1": blob unknown', durationMs: 3, lagMs: null });
    expect(history[1]!.lagMs).toBeGreaterThanOrEqual(2_000);
    expect(history[0]!.lagMs).toBeNull();
    const lag = await lagPercentiles(db);
    expect(lag.samples).toBe(1);
    expect(lag.p50).toBeGreaterThanOrEqual(2);
    expect(await recentSyncs(db, "team/other")).toEqual([]);
  });

  it("while paused nothing is dispatched or claimed, and events are still recorded", async () => {
    await requestSync(db, "team/p", "event");
    const [job] = await takeDispatchable(db, 10);
    expect(await setPaused(db, true, "ops")).toMatchObject({ paused: true, pausedBy: "ops" });
    expect(await isPaused(db)).toBe(true);
    expect((await claim(db, "team/p", job!.generation, "w", 30_000)).kind).toBe("paused");
    await requestSync(db, "team/q", "event");
    expect((await getRow(db, "team/q"))?.state).toBe("pending");
    expect(await takeDispatchable(db, 10)).toEqual([]);
    expect(await setPaused(db, false)).toEqual({ paused: false, pausedAt: null, pausedBy: null });
    expect((await pauseState(db)).paused).toBe(false);
    expect((await takeDispatchable(db, 10)).map((d) => d.repository)).toEqual(["team/q"]);
    expect((await claim(db, "team/p", job!.generation, "w", 30_000)).kind).toBe("claimed");
  });
});

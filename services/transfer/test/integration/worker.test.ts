/** The TRANSFER_JOBS worker (buildTransfer) on real nats-server, Postgres and registries. */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { sql } from "kysely";
import type { Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STREAM_NAMES, syncDoneSubject } from "@georep/schema";
import type { RegistryClient } from "@georep/registry-client";
import { claim, getRow, recentSyncs, requestSync, takeDispatchable } from "@georep/tracking";
import type { Dispatch, TrackingDatabase } from "@georep/tracking";
import type { RunningRegistry } from "@georep/testing";
import { buildTransfer } from "../../src/app.js";
import type { Transfer, TransferOptions } from "../../src/app.js";
import { CONSUMER_NAME } from "../../src/worker.js";
import { checksumOf, image, push, tagMap } from "../content.js";
import { TEST_SITE, createJobsStream, dispatch, logger, publishJob, startTestSite, testOptions, waitUntil } from "../helpers.js";
import type { TestSite } from "../helpers.js";

let site: TestSite;
let primaryRegistry: RunningRegistry;
let nc: NatsConnection;
let db: Kysely<TrackingDatabase>;
let primary: RegistryClient;
let secondary: RegistryClient;
let transfer: Transfer;
let options: TransferOptions;

beforeAll(async () => {
  site = await startTestSite("transfer-test");
  ({ primaryRegistry, nc, db, primary, secondary } = site);
});

afterAll(async () => {
  await transfer?.stop();
  await transfer?.http.close();
  await site?.stop();
});

async function consumerIdle(): Promise<boolean> {
  const info = await (await jetstreamManager(nc)).consumers.info(STREAM_NAMES.TRANSFER_JOBS, CONSUMER_NAME);
  return info.num_pending === 0 && info.num_ack_pending === 0;
}

describe("transfer worker", () => {
  it("is not ready until the TRANSFER_JOBS stream exists, then consumes", async () => {
    options = testOptions({ workerId: "worker-a" });
    transfer = buildTransfer({ nc, db, primary, secondary, logger, options });
    const starting = transfer.start();
    await waitUntil("the worker to wait for the stream", () => transfer.worker.state === "waiting");
    const notReady = await transfer.http.inject({ method: "GET", url: "/health/ready" });
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json<{ failing: string[] }>().failing).toEqual(["consumer"]);

    await createJobsStream(nc);
    await starting;
    expect(transfer.worker.state).toBe("running");
    expect((await transfer.http.inject({ method: "GET", url: "/health/ready" })).statusCode).toBe(200);
  });

  it("syncs a dispatched repository: the tracking row ends synced with the verified checksum, and the job is acked", async () => {
    const repo = "worker/app";
    const img = image({ layerCount: 2 });
    await push(primary, repo, img, ["v1", "latest"]);
    const announced = nc.subscribe(syncDoneSubject(TEST_SITE), { max: 1 });
    await nc.flush();
    const generation = await dispatch(nc, db, repo);

    await waitUntil("the row to be synced", async () => (await getRow(db, repo))?.state === "synced");
    const row = await getRow(db, repo);
    expect(row).toMatchObject({ syncedGeneration: generation, retryCount: 0, leaseOwner: null, lastSyncFailure: null });
    expect(row?.verificationChecksum).toBe(checksumOf(await tagMap(primary, repo)));
    expect(await tagMap(secondary, repo)).toEqual(await tagMap(primary, repo));
    await waitUntil("the job to be acked", consumerIdle);
    // The dispatcher hears that the slot is free (it would otherwise wait for its tick).
    await waitUntil("the sync to be announced", () => announced.getReceived() === 1, 2_000);

    expect(transfer.metrics.get("syncs", "synced")).toBe(1);
    expect(transfer.metrics.get("blobs", "copied")).toBe(3);
    const text = (await transfer.http.inject({ method: "GET", url: "/metrics" })).body;
    expect(text).toContain('georep_transfer_syncs_total{outcome="synced"} 1');
    // the event's push to this sync is one replication lag sample, here and in the sync history
    expect(transfer.metrics.lagSamples()).toBe(1);
    expect(text).toContain("georep_replication_lag_seconds_count 1");
    const [history] = await recentSyncs(db, repo);
    expect(history).toMatchObject({ outcome: "synced", reason: "event", generation });
    expect(history?.lagMs).toBeGreaterThanOrEqual(0);
    expect(text).toContain(`georep_transfer_bytes_copied_total ${img.blobs.reduce((n, b) => n + b.size, 0)}`);
    expect(text).toContain('georep_transfer_sync_duration_seconds_count{outcome="synced"} 1\n');
  });

  it("records a failed sync (the tag named, retry scheduled) and acks the job", async () => {
    const repo = "worker/broken";
    const img = image({ layerCount: 1 });
    await push(primary, repo, img, ["bad"]);
    const layer = img.blobs[1]!;
    const hex = layer.digest.slice("sha256:".length);
    await writeFile(join(primaryRegistry.storageDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data"), randomBytes(layer.size));
    await dispatch(nc, db, repo);

    await waitUntil("the row to be failed", async () => (await getRow(db, repo))?.state === "failed");
    const row = await getRow(db, repo);
    expect(row?.lastSyncFailure).toContain(`tag "bad"`);
    expect(row?.lastSyncFailure).toContain("digest mismatch");
    expect(row?.retryCount).toBe(1);
    // Backoff base 60 s with equal jitter: at least 30 s away.
    expect(row!.retryAt!.getTime() - Date.now()).toBeGreaterThan(25_000);
    expect(row?.leaseOwner).toBeNull();
    await waitUntil("the job to be acked", consumerIdle);
    expect(transfer.metrics.get("syncs", "failed")).toBe(1);
    expect(await secondary.headManifest(repo, img.digest)).toBeUndefined();
  });

  it("a job for a repository another worker holds comes back after the lease expires, then syncs", async () => {
    const repo = "worker/busy";
    const img = image({ layerCount: 1 });
    await push(primary, repo, img, ["v1"]);
    // Another worker took the lease first (and then died).
    await dispatch(nc, db, repo, async (generation) => {
      expect((await claim(db, repo, generation, "ghost", 1_500)).kind).toBe("claimed");
    });

    await waitUntil("the worker to find it busy", () => transfer.metrics.get("jobs", "busy") >= 1);
    expect((await getRow(db, repo))?.leaseOwner).toBe("ghost");
    await waitUntil("the row to be synced", async () => (await getRow(db, repo))?.state === "synced", 15_000);
    expect((await tagMap(secondary, repo)).get("v1")).toBe(img.digest);
  });

  it("a push notified before its tag exists on the primary is synced again once the tag appears", async () => {
    // Distribution notifies a manifest push before it links the tag: the event can overtake it.
    const repo = "worker/early";
    const img = image({ layerCount: 1 });
    // What readers can see of the row: its state at each commit (a deferred trigger runs at commit
    // and reads the row as the transaction leaves it).
    await sql`create table committed_state (repository text, state text, at timestamptz default clock_timestamp())`.execute(db);
    await sql`create function record_committed_state() returns trigger language plpgsql as $$ begin
      insert into committed_state (repository, state) select repository, state from repository_sync where repository = new.repository;
      return null; end $$`.execute(db);
    await sql`create constraint trigger committed_state after insert or update on repository_sync
      deferrable initially deferred for each row when (new.repository = 'worker/early') execute function record_committed_state()`.execute(db);
    await push(primary, repo, img); // by digest only: no tag yet, the repository lists no tags
    await requestSync(db, repo, "event", new Date(), "v1", { digest: img.digest });
    const [job] = (await takeDispatchable(db, 100)).filter((d) => d.repository === repo);
    await publishJob(nc, repo, job!.generation);
    await waitUntil("the early sync to finish and ask for a re-check", async () => {
      const row = await getRow(db, repo);
      return row?.syncedGeneration === job!.generation && row.state === "pending";
    });
    const row = await getRow(db, repo);
    expect(row?.retryAt?.getTime()).toBeGreaterThan(Date.now() - 1_000);
    expect(transfer.metrics.get("rechecks")).toBe(1);
    // The sync's outcome and its re-check request commit together: never "synced" in between.
    const seen = await sql<{ state: string }>`select state from committed_state order by at`.execute(db);
    expect(seen.rows.map((r) => r.state)).not.toContain("synced");
    expect(seen.rows.map((r) => r.state)).toContain("started");
    await sql`drop trigger committed_state on repository_sync`.execute(db);

    await primary.putManifest(repo, "v1", img); // the registry links the tag
    let recheck: Dispatch | undefined;
    await waitUntil("the re-check to be dispatchable", async () => (recheck = (await takeDispatchable(db, 100)).find((d) => d.repository === repo)) !== undefined);
    await publishJob(nc, repo, recheck!.generation);
    await waitUntil("v1 to reach the secondary", async () => (await tagMap(secondary, repo)).get("v1") === img.digest);
    await waitUntil("the row to be synced", async () => (await getRow(db, repo))?.state === "synced");
    expect(transfer.metrics.get("rechecks")).toBe(1);
  });

  it("a redelivered job for a generation already synced is acked without a sync", async () => {
    const before = transfer.metrics.get("syncs", "synced");
    const row = await getRow(db, "worker/app");
    await publishJob(nc, "worker/app", row!.syncedGeneration);
    await waitUntil("the duplicate to be acked", async () => transfer.metrics.get("jobs", "done") >= 1 && (await consumerIdle()));
    expect(transfer.metrics.get("syncs", "synced")).toBe(before);
  });
});

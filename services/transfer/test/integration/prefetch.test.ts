/** Blob prefetch on the primary's blob push hints (buildTransfer with `prefetch`), on real nats-server, Postgres and registries. */
import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobPushedHint, SUBJECTS, encodeJson } from "@georep/schema";
import type { RegistryClient } from "@georep/registry-client";
import { blobCopyUnderWay, blobPlaces, getRow, setPaused } from "@georep/tracking";
import type { TrackingDatabase } from "@georep/tracking";
import { buildTransfer } from "../../src/app.js";
import type { Transfer } from "../../src/app.js";
import type { PrefetchResult } from "../../src/prefetch.js";
import { syncRepository } from "../../src/sync.js";
import type { InFlightBlobs } from "../../src/sync.js";
import { blob, image, push } from "../content.js";
import type { Blob } from "../content.js";
import { createJobsStream, dispatch, logger, startTestSite, testOptions, waitUntil } from "../helpers.js";
import type { TestSite } from "../helpers.js";

const MB = 1024 * 1024;
let site: TestSite;
let nc: NatsConnection;
let db: Kysely<TrackingDatabase>;
let primary: RegistryClient;
let secondary: RegistryClient;
const transfers: Transfer[] = [];

beforeAll(async () => {
  site = await startTestSite("prefetch-test");
  ({ nc, db, primary, secondary } = site);
  await createJobsStream(nc);
});

afterAll(async () => {
  for (const t of transfers) {
    await t.stop();
    await t.http.close();
  }
  await site?.stop();
});

async function startTransfer(workerId: string): Promise<Transfer> {
  const transfer = buildTransfer({ nc, db, primary, secondary, logger, options: { ...testOptions({ workerId }), prefetch: { concurrency: 2 } } });
  transfers.push(transfer);
  await transfer.start();
  await nc.flush();
  return transfer;
}

/** What ingest announces for a blob pushed to the primary. */
function announce(repository: string, b: Pick<Blob, "digest" | "size" | "mediaType">): void {
  nc.publish(SUBJECTS.BLOB_PUSHED, encodeJson(BlobPushedHint, { repository, digest: b.digest, size: b.size, media_type: b.mediaType, received_at: new Date().toISOString() }));
}

const results = (transfer: Transfer, ...which: PrefetchResult[]) => which.reduce((n, r) => n + transfer.metrics.get("prefetch", r), 0);
const ALL: PrefetchResult[] = ["uploaded", "mounted", "skipped", "failed", "invalid", "dropped", "paused", "duplicate"];

describe("blob prefetch", () => {
  let transfer: Transfer;

  it("copies an announced blob into its repository on the secondary and records where it is", async () => {
    transfer = await startTransfer("prefetch-a");
    const layer = blob(randomBytes(3 * MB));
    await primary.uploadBlob("pre/app", layer, layer.bytes);
    announce("pre/app", layer);
    await waitUntil("the prefetch", () => results(transfer, ...ALL) === 1);
    expect(transfer.metrics.get("prefetch", "uploaded")).toBe(1);
    expect((await secondary.headBlob("pre/app", layer.digest))?.size).toBe(layer.size);
    expect((await blobPlaces(db, layer.digest, "pre/app")).here).toBe(true);
    expect(transfer.metrics.get("bytes")).toBe(layer.size);
    const text = (await transfer.http.inject({ method: "GET", url: "/metrics" })).body;
    expect(text).toContain('georep_transfer_prefetch_total{result="uploaded"} 1');

    // The same blob announced in another repository is mounted from the first.
    announce("pre/other", layer);
    await waitUntil("the second prefetch", () => results(transfer, ...ALL) === 2);
    expect(transfer.metrics.get("prefetch", "mounted")).toBe(1);
    expect((await secondary.headBlob("pre/other", layer.digest))?.size).toBe(layer.size);
  });

  it("the image's sync does not copy a prefetched blob again, even while the prefetch is still copying it", async () => {
    const repo = "pre/image";
    const big = blob(randomBytes(48 * MB));
    const img = image({ layers: [big] });
    await push(primary, repo, img, ["v1"]);
    const before = { bytes: transfer.metrics.get("bytes"), copied: transfer.metrics.get("blobs", "copied"), uploaded: transfer.metrics.get("prefetch", "uploaded") };
    // The hint first, the job right behind it: the sync finds the copy under way (or done).
    announce(repo, big);
    await nc.flush();
    await dispatch(nc, db, repo);
    await waitUntil("the row to be synced", async () => (await getRow(db, repo))?.state === "synced");
    expect(transfer.metrics.get("prefetch", "uploaded") - before.uploaded).toBe(1);
    // The sync uploaded the config only; the 48 MiB layer went up once.
    expect(transfer.metrics.get("blobs", "copied") - before.copied).toBe(1);
    expect(transfer.metrics.get("bytes") - before.bytes).toBe(img.blobs.reduce((n, b) => n + b.size, 0));
    expect((await secondary.headManifest(repo, "v1"))?.digest).toBe(img.digest);
  });

  it("a sync in another transfer process waits for the prefetch's copy (its claim in tracking) instead of copying the blob too", async () => {
    const repo = "pre/two-processes";
    const big = blob(randomBytes(64 * MB));
    const img = image({ layers: [big] });
    await push(primary, repo, img, ["v1"]);
    const uploaded = transfer.metrics.get("prefetch", "uploaded");
    announce(repo, big);
    await waitUntil("the prefetch's claim", () => blobCopyUnderWay(db, big.digest, repo), 10_000, 5);
    // The sync of another process: its own (empty) map of copies under way.
    const otherProcess: InFlightBlobs = new Map();
    const result = await syncRepository({ primary, secondary, repository: repo, db, options: { blobConcurrency: 4, deleteMissing: true }, inFlightBlobs: otherProcess });
    expect(result.blobs).toEqual({ copied: 1, skipped: 1, mounted: 0 });
    expect(result.bytes).toBe(img.blobs[0]!.size);
    await waitUntil("the prefetch to be counted", () => transfer.metrics.get("prefetch", "uploaded") === uploaded + 1);
    expect(await blobCopyUnderWay(db, big.digest, repo)).toBe(false);
    expect((await secondary.headManifest(repo, "v1"))?.digest).toBe(img.digest);
  });

  it("counts what it cannot use and copies nothing for it: invalid, unknown on the primary, a duplicate, paused", async () => {
    const start = Object.fromEntries(ALL.map((r) => [r, transfer.metrics.get("prefetch", r)]));
    const delta = (r: PrefetchResult) => transfer.metrics.get("prefetch", r) - (start[r] ?? 0);
    nc.publish(SUBJECTS.BLOB_PUSHED, new TextEncoder().encode('{"repository":"Not Valid","digest":"x"}'));
    const missing = blob(randomBytes(1024));
    announce("pre/missing", missing);
    await waitUntil("the invalid and the unknown hints", () => delta("invalid") === 1 && delta("failed") === 1);
    expect(await secondary.headBlob("pre/missing", missing.digest)).toBeUndefined();

    // Announced twice at once: copied once.
    const twice = blob(randomBytes(8 * MB));
    await primary.uploadBlob("pre/twice", twice, twice.bytes);
    announce("pre/twice", twice);
    announce("pre/twice", twice);
    await waitUntil("both hints", () => delta("uploaded") + delta("duplicate") === 2);
    expect([delta("uploaded"), delta("duplicate")]).toEqual([1, 1]);

    // Replication paused at this site: nothing is copied.
    const held = blob(randomBytes(2 * MB));
    await primary.uploadBlob("pre/paused", held, held.bytes);
    await setPaused(db, true, "test");
    try {
      announce("pre/paused", held);
      await waitUntil("the paused hint", () => delta("paused") === 1);
      expect(await secondary.headBlob("pre/paused", held.digest)).toBeUndefined();
    } finally {
      await setPaused(db, false);
    }
  });

  it("each site takes a hint once, whatever the number of its transfer processes", async () => {
    const second = await startTransfer("prefetch-b");
    const before = results(transfer, ...ALL) + results(second, ...ALL);
    const layers = Array.from({ length: 6 }, () => blob(randomBytes(1024 * 1024)));
    for (const [i, layer] of layers.entries()) {
      await primary.uploadBlob(`pre/spread-${i}`, layer, layer.bytes);
      announce(`pre/spread-${i}`, layer);
    }
    await waitUntil("every hint handled", () => results(transfer, ...ALL) + results(second, ...ALL) - before === layers.length);
    await new Promise((r) => setTimeout(r, 300));
    expect(results(transfer, ...ALL) + results(second, ...ALL) - before).toBe(layers.length);
    for (const [i, layer] of layers.entries()) expect((await secondary.headBlob(`pre/spread-${i}`, layer.digest))?.size).toBe(layer.size);
  });
});

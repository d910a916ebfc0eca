/** syncRepository against two real Distribution 2.8 registries and a real Postgres. */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { createServer, request } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRegistryClient } from "@georep/registry-client";
import type { RegistryClient } from "@georep/registry-client";
import { blobLocations, migrateTracking, recordBlobs } from "@georep/tracking";
import type { TrackingDatabase } from "@georep/tracking";
import { freePort, startPostgres, startRegistry } from "@georep/testing";
import type { RunningPostgres, RunningRegistry } from "@georep/testing";
import { TagsFailedError, TransferError } from "../../src/errors.js";
import { UNASKED_UPLOAD_MAX_BYTES, syncRepository, tagListChecksum } from "../../src/sync.js";
import type { InFlightBlobs, SyncOptions, SyncResult } from "../../src/sync.js";
import { MT, artifact, blob, buildkitCache, descriptor, checksumOf, digestTag, image, index, push, pushTree, referrersIndex, tagMap } from "../content.js";

let primaryRegistry: RunningRegistry;
let secondaryRegistry: RunningRegistry;
let postgres: RunningPostgres;
let db: Kysely<TrackingDatabase>;
let primary: RegistryClient;
let secondary: RegistryClient;

const OPTIONS: SyncOptions = { blobConcurrency: 4, deleteMissing: true };

beforeAll(async () => {
  [primaryRegistry, secondaryRegistry, postgres] = await Promise.all([startRegistry(), startRegistry(), startPostgres()]);
  const pool = new pg.Pool({ connectionString: postgres.url, max: 4 });
  pool.on("error", () => undefined);
  db = new Kysely<TrackingDatabase>({ dialect: new PostgresDialect({ pool }) });
  await migrateTracking(db);
  primary = createRegistryClient({ url: primaryRegistry.url });
  secondary = createRegistryClient({ url: secondaryRegistry.url });
});

afterAll(async () => {
  await db?.destroy();
  await Promise.all([primaryRegistry?.stop(), secondaryRegistry?.stop(), postgres?.stop()]);
});

const sync = (repository: string, options: Partial<SyncOptions> = {}): Promise<SyncResult> => syncRepository({ primary, secondary, repository, db, options: { ...OPTIONS, ...options } });

/** Both sides serve the same tags, and the result's checksum is the one computed here from each side. */
async function expectInSync(repository: string, result: SyncResult): Promise<Map<string, string>> {
  const [p, s] = await Promise.all([tagMap(primary, repository), tagMap(secondary, repository)]);
  expect(s).toEqual(p);
  expect(result.checksum).toBe(checksumOf(p));
  expect(result.checksum).toBe(checksumOf(s));
  return s;
}

/** `client`, writing each manifest HEAD, GET and PUT and each blob HEAD to `log` ("HEAD blob <digest>", "PUT manifest <ref>"). */
function recording(client: RegistryClient, log: string[]): RegistryClient {
  return {
    ...client,
    headBlob: async (r, digest) => {
      log.push(`HEAD blob ${digest}`);
      return client.headBlob(r, digest);
    },
    headManifest: async (r, ref) => {
      log.push(`HEAD manifest ${ref}`);
      return client.headManifest(r, ref);
    },
    getManifest: async (r, ref) => {
      log.push(`GET manifest ${ref}`);
      return client.getManifest(r, ref);
    },
    putManifest: async (r, ref, m) => {
      log.push(`PUT manifest ${ref}`);
      return client.putManifest(r, ref, m);
    },
    listTags: async (r) => {
      log.push("LIST tags");
      return client.listTags(r);
    },
  };
}

/** The blob bytes on the secondary equal the originals. */
async function expectBlobs(repository: string, blobs: readonly { digest: string; bytes: Buffer }[]): Promise<void> {
  for (const b of blobs) {
    const download = await secondary.getBlob(repository, b.digest);
    const chunks: Buffer[] = [];
    for await (const chunk of download.stream) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(b.bytes)).toBe(true);
  }
}

/** Overwrites a blob's data in a registry's storage (same size), as disk corruption would. */
async function corrupt(registry: RunningRegistry, digest: string, bytes: Buffer): Promise<void> {
  const hex = digest.slice("sha256:".length);
  await writeFile(join(registry.storageDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data"), bytes);
}

describe("syncRepository: manifest kinds", () => {
  it("copies an OCI image: blobs, manifest, tag; verified checksum; blob locations recorded", async () => {
    const img = image({ layerCount: 2 });
    await push(primary, "kinds/oci", img, ["v1"]);
    const result = await sync("kinds/oci");
    expect(result.tags).toEqual({ copied: ["v1"], unchanged: [], deleted: [], unremovable: [] });
    expect(result.blobs).toEqual({ copied: 3, skipped: 0, mounted: 0 });
    expect(result.manifests).toBe(1);
    expect(result.bytes).toBe(img.blobs.reduce((n, b) => n + b.size, 0));
    expect((await expectInSync("kinds/oci", result)).get("v1")).toBe(img.digest);
    await expectBlobs("kinds/oci", img.blobs);
    expect(await blobLocations(db, img.blobs[1]!.digest, "elsewhere")).toEqual(["kinds/oci"]);

    // Nothing to do the second time: the tag is unchanged and nothing is copied.
    const again = await sync("kinds/oci");
    expect(again.tags).toEqual({ copied: [], unchanged: ["v1"], deleted: [], unremovable: [] });
    expect(again.blobs).toEqual({ copied: 0, skipped: 0, mounted: 0 });
    expect(again.checksum).toBe(result.checksum);
  });

  it("copies a Docker schema 2 image under its own digest (not converted to schema 1)", async () => {
    const img = image({ docker: true, layerCount: 1 });
    await push(primary, "kinds/docker", img, ["latest"]);
    const result = await sync("kinds/docker");
    expect((await expectInSync("kinds/docker", result)).get("latest")).toBe(img.digest);
    expect((await secondary.getManifest("kinds/docker", "latest")).mediaType).toBe(MT.dockerManifest);
  });

  it("copies a multi-arch index with every platform, and a Docker manifest list", async () => {
    const amd = image({ architecture: "amd64", layerCount: 1 });
    const arm = image({ architecture: "arm64", layerCount: 1 });
    const idx = index([amd, arm], ["amd64", "arm64"]);
    await pushTree(primary, "kinds/multi", idx, [amd, arm], ["v1"]);
    const dAmd = image({ docker: true, architecture: "amd64", layerCount: 1 });
    const dArm = image({ docker: true, architecture: "arm64", layerCount: 1 });
    const list = index([dAmd, dArm], ["amd64", "arm64"], { docker: true });
    await pushTree(primary, "kinds/multi", list, [dAmd, dArm], ["docker"]);

    const result = await sync("kinds/multi");
    expect(result.manifests).toBe(6);
    const tags = await expectInSync("kinds/multi", result);
    expect(tags.get("v1")).toBe(idx.digest);
    expect(tags.get("docker")).toBe(list.digest);
    for (const child of [amd, arm, dAmd, dArm]) expect((await secondary.headManifest("kinds/multi", child.digest))?.digest).toBe(child.digest);
    await expectBlobs("kinds/multi", [...arm.blobs, ...dArm.blobs]);
  });

  it("copies an artifact with a subject and its sha256-<hex> referrers fallback tag, and a cosign-style .sig tag", async () => {
    const img = image({ layerCount: 1 });
    await push(primary, "kinds/signed", img, ["v1"]);
    // An SBOM-like artifact: empty config, one layer, subject = the image; pushed by digest only.
    const sbom = { ...artifact({ artifactType: "application/spdx+json", layers: [blob(randomBytes(256), "application/spdx+json")], subject: img }), artifactType: "application/spdx+json" };
    // An attestation with no layers at all.
    const bare = { ...artifact({ artifactType: "application/vnd.example.empty", subject: img }), artifactType: "application/vnd.example.empty" };
    await push(primary, "kinds/signed", sbom);
    await push(primary, "kinds/signed", bare);
    const fallback = referrersIndex([sbom, bare]);
    await push(primary, "kinds/signed", fallback, [digestTag(img.digest)]);
    // cosign: a tag `sha256-<hex>.sig` holding a manifest whose layers are the signatures.
    const signature = blob(Buffer.from(JSON.stringify({ critical: { image: { "docker-manifest-digest": img.digest } } })), "application/vnd.dev.cosign.simplesigning.v1+json");
    const sig = image({ layers: [signature] });
    await push(primary, "kinds/signed", sig, [`${digestTag(img.digest)}.sig`]);

    const result = await sync("kinds/signed");
    expect(result.tags.copied).toEqual([digestTag(img.digest), `${digestTag(img.digest)}.sig`, "v1"]);
    const tags = await expectInSync("kinds/signed", result);
    expect(tags.get(digestTag(img.digest))).toBe(fallback.digest);
    for (const m of [sbom, bare]) expect((await secondary.getManifest("kinds/signed", m.digest)).subject?.digest).toBe(img.digest);
    await expectBlobs("kinds/signed", [...sbom.blobs, signature]);
    const referrers = await secondary.referrers("kinds/signed", img.digest);
    expect(referrers.via).toBe("tag");
    expect(referrers.descriptors.map((d) => d.artifactType)).toEqual(["application/spdx+json", "application/vnd.example.empty"]);
  });

  it("copies a BuildKit cache index (entries that are blobs) and a manifest without a mediaType field", async () => {
    const cache = buildkitCache();
    await push(primary, "kinds/cache", cache, ["buildcache"]);
    const plain = image({ omitMediaType: true, layerCount: 1 });
    await push(primary, "kinds/cache", plain, ["nomediatype"]);
    const result = await sync("kinds/cache");
    const tags = await expectInSync("kinds/cache", result);
    expect(tags.get("buildcache")).toBe(cache.digest);
    expect(tags.get("nomediatype")).toBe(plain.digest);
    await expectBlobs("kinds/cache", [...cache.blobs, ...plain.blobs]);
  });
});

describe("syncRepository: tag moves and deletions", () => {
  it("moves a tag; removes a deleted tag and its digest; keeps a tag that shares its digest with a kept one as unremovable (Distribution 2.8)", async () => {
    const repo = "changes/app";
    const a = image({ layerCount: 1 });
    const c = image({ layerCount: 1 });
    await push(primary, repo, a, ["stable", "shared"]);
    await push(primary, repo, c, ["old"]);
    await sync(repo);

    // On the primary: "stable" moves to b; "old" is deleted (its digest with it); "shared" is deleted while
    // "keep" still points at a (2.8 deletes digests only, so delete a and re-tag it).
    const b = image({ layerCount: 1 });
    await push(primary, repo, b, ["stable"]);
    expect(await primary.deleteManifest(repo, c.digest)).toBe(true);
    expect(await primary.deleteManifest(repo, a.digest)).toBe(true);
    await push(primary, repo, a, ["keep"]);

    const result = await sync(repo);
    expect(result.tags.copied).toEqual(["keep", "stable"]);
    expect(result.tags.deleted).toEqual(["old"]);
    expect(result.tags.unremovable).toEqual(["shared"]);
    expect(result.deletedManifests).toBe(1);
    const tags = await tagMap(secondary, repo);
    expect(tags).toEqual(
      new Map([
        ["keep", a.digest],
        ["shared", a.digest],
        ["stable", b.digest],
      ]),
    );
    expect(await secondary.headManifest(repo, c.digest)).toBeUndefined();
    // The checksum covers what the primary has; the unremovable tag is left out of the comparison.
    expect(result.checksum).toBe(checksumOf(await tagMap(primary, repo)));
  });

  it("removes a repository the primary does not know (NAME_UNKNOWN), manifests and index children included", async () => {
    const repo = "gone/app";
    const amd = image({ architecture: "amd64", layerCount: 1 });
    const arm = image({ architecture: "arm64", layerCount: 1 });
    const idx = index([amd, arm], ["amd64", "arm64"]);
    const single = image({ layerCount: 1 });
    // Only on the secondary, as if it had been replicated and then removed from the primary.
    await pushTree(secondary, repo, idx, [amd, arm], ["multi"]);
    await push(secondary, repo, single, ["v1", "v2"]);
    await recordBlobs(db, repo, single.blobs.map((b) => b.digest));

    const result = await sync(repo);
    expect(result.removed).toBe(true);
    expect(result.tags.deleted).toEqual(["multi", "v1", "v2"]);
    expect(result.checksum).toBe(tagListChecksum(new Map()));
    expect(await tagMap(secondary, repo)).toEqual(new Map());
    for (const m of [idx, amd, arm, single]) expect(await secondary.headManifest(repo, m.digest)).toBeUndefined();
    expect(await blobLocations(db, single.blobs[0]!.digest, "elsewhere")).toEqual([]);
  });

  it("a repository whose tags were all deleted on the primary is emptied on the secondary", async () => {
    const repo = "changes/emptied";
    const img = image({ layerCount: 1 });
    await push(primary, repo, img, ["v1"]);
    await sync(repo);
    await primary.deleteManifest(repo, img.digest);
    const result = await sync(repo);
    expect(result.tags.deleted).toEqual(["v1"]);
    expect(await secondary.headManifest(repo, img.digest)).toBeUndefined();
  });
});

describe("syncRepository: failures", () => {
  it("a corrupted blob on the primary fails its tag by name, pushes nothing that references it, and other tags still copy", async () => {
    const repo = "fail/corrupt";
    const good = image({ layerCount: 1 });
    const bad = image({ layerCount: 1, layerSize: 4096 });
    await push(primary, repo, good, ["good"]);
    await push(primary, repo, bad, ["bad"]);
    const layer = bad.blobs[1]!;
    await corrupt(primaryRegistry, layer.digest, randomBytes(layer.size));

    const error = await sync(repo).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TagsFailedError);
    const message = (error as Error).message;
    expect(message).toContain(`tag "bad"`);
    expect(message).toContain("digest mismatch");
    expect(message).toContain(layer.digest);
    expect(message).not.toContain(`tag "good"`);
    expect((error as TagsFailedError).failures.map((f) => f.tag)).toEqual(["bad"]);
    expect(await secondary.headManifest(repo, bad.digest)).toBeUndefined();
    expect(await secondary.headBlob(repo, layer.digest)).toBeUndefined();
    expect(await tagMap(secondary, repo)).toEqual(new Map([["good", good.digest]]));
  });

  it("a tag the primary cannot serve (corrupt manifest, 500) fails by name; the other tags still copy and the secondary keeps its copy", async () => {
    const repo = "fail/unreadable-tag";
    const [good, other, bad] = [image({ layerCount: 1 }), image({ layerCount: 1 }), image({ layerCount: 1 })];
    await push(primary, repo, good, ["good"]);
    await push(primary, repo, bad, ["bad"]);
    await sync(repo); // the secondary has "bad" from before it broke
    await push(primary, repo, other, ["other"]);
    await corrupt(primaryRegistry, bad.digest, Buffer.from("{ not json"));

    const error = await sync(repo).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TagsFailedError);
    expect((error as TagsFailedError).failures.map((f) => f.tag)).toEqual(["bad"]);
    expect((error as Error).message).toContain("cannot resolve it on the primary");
    // the good tags reached the secondary, and the unreadable one was not taken for deleted
    expect(await tagMap(secondary, repo)).toEqual(new Map([["bad", bad.digest], ["good", good.digest], ["other", other.digest]]));
  });

  it("an unreachable primary fails the sync and removes nothing", async () => {
    const repo = "fail/unreachable";
    const img = image({ layerCount: 1 });
    await push(secondary, repo, img, ["v1"]);
    const nowhere = createRegistryClient({ url: `http://127.0.0.1:${await freePort()}`, retry: { retries: 0 } });
    const error = await syncRepository({ primary: nowhere, secondary, repository: repo, db, options: OPTIONS }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransferError);
    expect((error as TransferError).code).toBe("TRANSFER_ERR_PRIMARY");
    expect(await tagMap(secondary, repo)).toEqual(new Map([["v1", img.digest]]));
  });

  it("notices a corrupt manifest on the secondary, deletes and re-pushes it, and fails when the registry still serves the bad bytes", async () => {
    const repo = "fail/secondary-corrupt";
    const img = image({ layerCount: 1 });
    await push(primary, repo, img, ["v1"]);
    await sync(repo);
    // Same JSON, other bytes: HEAD still answers the digest it was filed under.
    await corrupt(secondaryRegistry, img.digest, Buffer.from(JSON.stringify(JSON.parse(img.raw.toString()))));
    const progress: string[] = [];
    const error = await syncRepository({ primary, secondary, repository: repo, db, options: OPTIONS, onProgress: (e) => progress.push(e.type) }).catch((e: unknown) => e);
    expect(progress).toContain("repair");
    expect((error as TransferError).code).toBe("TRANSFER_ERR_VERIFICATION");
    expect((error as Error).message).toContain(`"v1"`);
    expect((error as Error).message).toContain(img.digest);
  });
});

describe("syncRepository: cross-repository mount", () => {
  it("mounts a blob another secondary repository is known to hold instead of uploading it", async () => {
    const base = blob(randomBytes(8192));
    const first = image({ layers: [base] });
    await push(primary, "mount/one", first, ["v1"]);
    await sync("mount/one");
    expect(await blobLocations(db, base.digest, "mount/two")).toEqual(["mount/one"]);

    const second = image({ layers: [base, blob(randomBytes(1024))] });
    await push(primary, "mount/two", second, ["v1"]);
    const result = await sync("mount/two");
    expect(result.blobs).toEqual({ copied: 2, skipped: 0, mounted: 1 });
    expect(result.bytes).toBe(second.blobs[0]!.size + second.blobs[2]!.size);
    await expectBlobs("mount/two", [base]);
    await expectInSync("mount/two", result);
  });

  it("concurrent syncs of one process copy a shared blob once and mount it elsewhere", async () => {
    const base = blob(randomBytes(256 * 1024));
    const repos = ["shared/a", "shared/b", "shared/c", "shared/d"];
    for (const r of repos) await push(primary, r, image({ layers: [base, blob(randomBytes(512))] }), ["v1"]);
    const inFlightBlobs: InFlightBlobs = new Map();
    const results = await Promise.all(repos.map((repository) => syncRepository({ primary, secondary, repository, db, options: OPTIONS, inFlightBlobs })));
    expect(results.reduce((n, r) => n + r.blobs.mounted, 0)).toBe(3);
    expect(results.reduce((n, r) => n + r.bytes, 0)).toBeLessThan(2 * base.size);
    for (const r of repos) await expectBlobs(r, [base]);
    expect(inFlightBlobs.size).toBe(0);
  });
});

/**
 * Distribution 2.8 has no referrers API: a scripted proxy in front of the
 * primary answers `/v2/<repo>/referrers/<digest>` (OCI 1.1) and forwards the rest.
 */
function referrersProxy(upstream: string, referrers: Map<string, object[]>): Promise<{ url: string; server: Server }> {
  const target = new URL(upstream);
  const server = createServer((req, res) => {
    const match = /^\/v2\/(.+)\/referrers\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? "");
    if (match !== null) {
      res.writeHead(200, { "content-type": MT.ociIndex });
      res.end(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: referrers.get(match[2]!) ?? [] }));
      return;
    }
    const forward = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, host: target.host } }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    forward.on("error", () => res.destroy());
    req.pipe(forward);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server })));
}

describe("syncRepository: a primary with the OCI 1.1 referrers API", () => {
  it("copies untagged referrers by digest, of copied manifests and of unchanged tags", async () => {
    const repo = "referrers/app";
    const referrers = new Map<string, object[]>();
    const proxy = await referrersProxy(primaryRegistry.url, referrers);
    try {
      const viaApi = createRegistryClient({ url: proxy.url });
      const img = image({ layerCount: 1 });
      await push(primary, repo, img, ["v1"]);
      // Untagged: only the referrers API finds it.
      const sbom = artifact({ artifactType: "application/spdx+json", layers: [blob(randomBytes(128), "application/spdx+json")], subject: img });
      await push(primary, repo, sbom);
      referrers.set(img.digest, [{ ...descriptor(sbom), artifactType: "application/spdx+json" }]);

      const first = await syncRepository({ primary: viaApi, secondary, repository: repo, db, options: OPTIONS });
      expect(first.manifests).toBe(2);
      expect((await secondary.getManifest(repo, sbom.digest)).subject?.digest).toBe(img.digest);
      await expectBlobs(repo, sbom.blobs);

      // A signature attached later to the same (unchanged) tag is copied too.
      const signature = artifact({ artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json", layers: [blob(randomBytes(64), "application/vnd.dev.cosign.simplesigning.v1+json")], subject: img });
      await push(primary, repo, signature);
      referrers.set(img.digest, [...referrers.get(img.digest)!, { ...descriptor(signature), artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json" }]);
      const second = await syncRepository({ primary: viaApi, secondary, repository: repo, db, options: OPTIONS });
      expect(second.tags.unchanged).toEqual(["v1"]);
      expect(second.manifests).toBe(1);
      expect((await secondary.headManifest(repo, signature.digest))?.digest).toBe(signature.digest);
    } finally {
      await new Promise((resolve) => proxy.server.close(resolve));
    }
  });
});

describe("syncRepository: requests to the secondary", () => {
  it("pushes a new root manifest by its tag alone once the primary is known to lack the referrers API", async () => {
    const repo = "bytag/app";
    const a = image();
    const b = image();
    await push(primary, repo, a, ["v1"]);
    await sync(repo); // finds out that the primary has no referrers API (fallback tags)
    await push(primary, repo, b, ["v2", "v3"]);
    const requests: string[] = [];
    const result = await syncRepository({ primary, secondary: recording(secondary, requests), repository: repo, db, options: OPTIONS });
    expect(result.tags.copied).toEqual(["v2", "v3"]);
    // One push stores the manifest and sets its tag, the other sets the second tag; none by digest.
    expect(requests.filter((r) => r.startsWith("PUT manifest")).sort()).toEqual(["PUT manifest v2", "PUT manifest v3"]);
    await expectInSync(repo, result);
    // A full sync afterwards reads every tag back: nothing to copy.
    expect((await sync(repo)).tags.copied).toEqual([]);
  });
});

describe("syncRepository: a repository georep never synced", () => {
  it("is copied without listing the secondary first; the verification lists it", async () => {
    const repo = "first/app";
    const img = image();
    await push(primary, repo, img, ["v1", "v2"]);
    const requests: string[] = [];
    const result = await syncRepository({ primary, secondary: recording(secondary, requests), repository: repo, db, options: { ...OPTIONS, assumeSecondaryEmpty: true } });
    expect(result.tags.copied).toEqual(["v1", "v2"]);
    expect(requests.filter((r) => r === "LIST tags")).toHaveLength(1);
    expect(requests.indexOf("LIST tags")).toBeGreaterThan(requests.findIndex((r) => r.startsWith("PUT manifest")));
    expect(requests.some((r) => r.startsWith("HEAD manifest"))).toBe(false);
    await expectInSync(repo, result);
  });

  it("when the secondary held tags after all, a second pass lists it and removes what the primary lacks", async () => {
    const repo = "first/seeded";
    const kept = image();
    const stray = image();
    const moved = image();
    await push(primary, repo, kept, ["v1", "latest"]);
    // Put there by something else: a tag the primary never had, and "latest" on another image.
    await push(secondary, repo, stray, ["stray"]);
    await push(secondary, repo, moved, ["latest"]);
    const result = await sync(repo, { assumeSecondaryEmpty: true });
    expect(result.tags.deleted).toEqual(["stray"]);
    await expectInSync(repo, result);
    expect(await secondary.headManifest(repo, stray.digest)).toBeUndefined();
  });

  it("a repository the primary does not know is still removed from the secondary", async () => {
    const repo = "first/gone";
    await push(secondary, repo, image(), ["v1"]);
    const result = await sync(repo, { assumeSecondaryEmpty: true });
    expect(result.removed).toBe(true);
    expect(result.tags.deleted).toEqual(["v1"]);
    expect(await tagMap(secondary, repo)).toEqual(new Map());
  });
});

describe("syncRepository: event syncs trust tracking's blob locations", () => {

  it("copies a pushed image without asking the secondary what it has: a layer tracking saw there, a new config, a new manifest", async () => {
    const repo = "trust/app";
    const base = blob(randomBytes(4096), MT.ociLayer);
    const a = image({ layers: [base] });
    const b = image({ layers: [base] });
    await push(primary, repo, a, ["v1"]);
    const first = await sync(repo); // records where the layer is
    await push(primary, repo, b, ["v2"]);
    const requests: string[] = [];
    const result = await syncRepository({ primary, secondary: recording(secondary, requests), repository: repo, db, options: { ...OPTIONS, incremental: { verifiedTags: first.verifiedTags, eventTags: ["v2"] } } });
    expect(result.tags.copied).toEqual(["v2"]);
    expect(requests.filter((r) => r.startsWith("HEAD"))).toEqual([]);
    expect(result.blobs).toEqual({ copied: 1, skipped: 1, mounted: 0 });
    await expectBlobs(repo, b.blobs);
    expect((await secondary.headManifest(repo, "v2"))?.digest).toBe(b.digest);
  });

  it("does not wait for another repository's copy of a layer tracking saw here, nor mount it", async () => {
    const repo = "trust/shared";
    const base = blob(randomBytes(4096), MT.ociLayer);
    const a = image({ layers: [base] });
    const b = image({ layers: [base] });
    await push(primary, repo, a, ["v1"]);
    const first = await sync(repo);
    await push(primary, repo, b, ["v2"]);
    // Another sync of this process is copying the same layer into another repository, and takes its time.
    let release = (): void => undefined;
    const inFlightBlobs: InFlightBlobs = new Map([[base.digest, { repository: "trust/elsewhere", done: new Promise<void>((r) => (release = r)) }]]);
    try {
      const result = await Promise.race([
        syncRepository({ primary, secondary, repository: repo, db, options: { ...OPTIONS, incremental: { verifiedTags: first.verifiedTags, eventTags: ["v2"] } }, inFlightBlobs }),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the sync waited for the other repository's copy")), 10_000)),
      ]);
      expect(result.blobs).toEqual({ copied: 1, skipped: 1, mounted: 0 });
      expect((await secondary.headManifest(repo, "v2"))?.digest).toBe(b.digest);
    } finally {
      release();
    }
  });

  it("a blob tracking places wrongly (deleted on the secondary since) is found by the refused manifest push and copied", async () => {
    const repo = "trust/stale";
    const base = blob(randomBytes(4096), MT.ociLayer);
    const a = image({ layers: [base] });
    const b = image({ layers: [base] });
    await push(primary, repo, a, ["v1"]);
    const first = await sync(repo);
    // The layer goes from the secondary repository behind tracking's back.
    const res = await fetch(`${secondaryRegistry.url}/v2/${repo}/blobs/${base.digest}`, { method: "DELETE" });
    expect(res.status).toBe(202);
    expect(await secondary.headBlob(repo, base.digest)).toBeUndefined();
    await push(primary, repo, b, ["v2"]);
    const result = await syncRepository({ primary, secondary, repository: repo, db, options: { ...OPTIONS, incremental: { verifiedTags: first.verifiedTags, eventTags: ["v2"] } } });
    expect(result.tags.copied).toEqual(["v2"]);
    await expectBlobs(repo, b.blobs);
    expect((await secondary.headManifest(repo, "v2"))?.digest).toBe(b.digest);
  });

  it("asks before sending a large blob tracking knows nowhere, not before a small one", async () => {
    const repo = "trust/large";
    const large = blob(randomBytes(UNASKED_UPLOAD_MAX_BYTES + 1), MT.ociLayer);
    const a = image({ layers: [large] });
    await push(primary, repo, a, ["v1"]);
    const requests: string[] = [];
    const result = await syncRepository({ primary, secondary: recording(secondary, requests), repository: repo, db, options: OPTIONS });
    expect(requests.filter((h) => h.startsWith("HEAD blob "))).toEqual([`HEAD blob ${large.digest}`]);
    expect(result.blobs).toEqual({ copied: 2, skipped: 0, mounted: 0 });
    await expectBlobs(repo, a.blobs);
  });
});

describe("syncRepository: incremental event syncs", () => {
  it("resolves only the tags events named, trusting the last verified map; a full sync catches what the trust missed", async () => {
    const repo = "incremental/app";
    const a = image();
    const b = image();
    await push(primary, repo, a, ["t1", "t2", "t3"]);
    const first = await sync(repo);
    expect(first.verifiedTags).toEqual({ t1: a.digest, t2: a.digest, t3: a.digest });

    // t4 is pushed (named by its event); t2 moves behind georep's back (its notification was lost).
    await push(primary, repo, b, ["t4"]);
    await push(primary, repo, b, ["t2"]);
    const reads: string[] = [];
    const inc = await syncRepository({ primary: recording(primary, reads), secondary, repository: repo, db, options: { ...OPTIONS, incremental: { verifiedTags: first.verifiedTags, eventTags: ["t4"] } } });
    expect(inc.tags.copied).toEqual(["t4"]);
    // t4 is read once, by tag (its digest and the manifest the copy needs); nothing for t1..t3.
    expect(reads.filter((h) => h.includes("manifest") && !h.includes("sha256:"))).toEqual(["GET manifest t4"]);
    expect(reads.filter((h) => h.startsWith("GET manifest sha256:"))).toEqual([]);
    expect((await secondary.headManifest(repo, "t2"))?.digest).toBe(a.digest); // the lost move is not seen…

    const full = await sync(repo); // …until the next full sync (re-verification)
    expect(full.tags.copied).toEqual(["t2"]);
    expect((await secondary.headManifest(repo, "t2"))?.digest).toBe(b.digest);
    expect(full.verifiedTags).toEqual({ t1: a.digest, t2: b.digest, t3: a.digest, t4: b.digest });
  });
});

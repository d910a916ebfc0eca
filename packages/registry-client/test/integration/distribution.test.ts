/** The client against a real CNCF Distribution 2.8, without auth. */
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { startRegistry } from "@georep/testing";
import type { RunningRegistry } from "@georep/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DigestMismatchError, InvalidReferenceError, RegistryHttpError, SizeMismatchError, copyBlob, copyImage, createRegistryClient } from "../../src/index.js";
import type { RegistryClient } from "../../src/index.js";
import { blob, image, index, sha256 } from "./images.js";
import type { Image } from "./images.js";

let source: RunningRegistry;
let target: RunningRegistry;
let src: RegistryClient;
let dst: RegistryClient;

beforeAll(async () => {
  [source, target] = await Promise.all([startRegistry(), startRegistry()]);
  src = createRegistryClient({ url: source.url });
  dst = createRegistryClient({ url: target.url });
});

afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop()]);
});

async function push(client: RegistryClient, repository: string, img: Image, tag?: string): Promise<void> {
  for (const b of [img.config, ...img.layers]) await client.uploadBlob(repository, b, b.bytes);
  await client.putManifest(repository, img.digest, img);
  if (tag !== undefined) await client.putManifest(repository, tag, img);
}

async function readStream(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe("registry-client against Distribution (no auth)", () => {
  it("pings", async () => {
    await expect(src.ping()).resolves.toBeUndefined();
  });

  it("pushes an image and reads back the exact manifest bytes, digest and media type", async () => {
    const img = image();
    await push(src, "team/app", img, "v1");
    const head = await src.headManifest("team/app", "v1");
    expect(head).toEqual({ digest: img.digest, mediaType: img.mediaType, size: img.raw.length });
    const manifest = await src.getManifest("team/app", "v1");
    expect(Buffer.from(manifest.raw).equals(img.raw)).toBe(true);
    expect(manifest.digest).toBe(img.digest);
    expect(manifest.kind).toBe("image");
    expect((await src.getManifest("team/app", img.digest)).digest).toBe(img.digest);
    expect(await src.headManifest("team/app", "nope")).toBeUndefined();
  });

  it("lists every tag and every repository across pages", async () => {
    const img = image({ layerCount: 1 });
    await push(src, "team/paged", img);
    const tags = ["a", "b", "c", "d", "e"];
    for (const t of tags) await src.putManifest("team/paged", t, img);
    // Distribution 2.8 answers the tag list in one unordered page; paging is covered by the fixtures.
    expect((await src.listTags("team/paged", { pageSize: 2 })).sort()).toEqual(tags);
    await push(src, "team/other", image({ layerCount: 1 }), "x");
    const all = await src.catalog({ pageSize: 1 });
    expect(all).toEqual(expect.arrayContaining(["team/app", "team/paged", "team/other"]));
    expect(new Set(all).size).toBe(all.length);
  });

  it("reads a blob whole and from an offset (Range)", async () => {
    const b = blob(randomBytes(100_000));
    await src.uploadBlob("team/blobs", b, b.bytes);
    expect(await src.headBlob("team/blobs", b.digest)).toEqual({ size: b.size });
    const whole = await src.getBlob("team/blobs", b.digest);
    expect((await readStream(whole.stream)).equals(b.bytes)).toBe(true);
    const tail = await src.getBlob("team/blobs", b.digest, { offset: 70_000 });
    expect(tail.offset).toBe(70_000);
    expect(tail.size).toBe(100_000);
    expect((await readStream(tail.stream)).equals(b.bytes.subarray(70_000))).toBe(true);
  });

  it("uploads in Content-Range chunks from a resumable source", async () => {
    const b = blob(randomBytes(300_000));
    const offsets: number[] = [];
    await src.uploadBlob("team/chunked", b, async (offset) => {
      offsets.push(offset);
      return Readable.from([b.bytes.subarray(offset)]);
    }, { chunkSize: 64 * 1024 });
    expect(offsets).toEqual([0, 65_536, 131_072, 196_608, 262_144]);
    expect((await readStream((await src.getBlob("team/chunked", b.digest)).stream)).equals(b.bytes)).toBe(true);
  });

  it("refuses bytes that do not match the digest or size, and the registry never gets the blob", async () => {
    const b = blob(randomBytes(50_000));
    const wrong = Buffer.from(b.bytes);
    wrong[123] = (wrong[123]! + 1) % 256;
    await expect(src.uploadBlob("team/bad", b, wrong)).rejects.toBeInstanceOf(DigestMismatchError);
    await expect(src.uploadBlob("team/bad", b, Readable.from([wrong]))).rejects.toBeInstanceOf(DigestMismatchError);
    await expect(src.uploadBlob("team/bad", b, b.bytes.subarray(0, 40_000))).rejects.toBeInstanceOf(SizeMismatchError);
    expect(await src.headBlob("team/bad", b.digest)).toBeUndefined();
    const error = await src.uploadBlob("team/bad", b, wrong).catch((e: unknown) => e);
    expect(String((error as Error).message)).toContain("team/bad");
    expect(String((error as Error).message)).toContain(b.digest);
  });

  it("uploads an empty blob", async () => {
    const empty = blob(Buffer.alloc(0));
    await src.uploadBlob("team/empty", empty, empty.bytes);
    expect(await src.headBlob("team/empty", empty.digest)).toEqual({ size: 0 });
  });

  it("mounts across repositories, and falls back to an upload session when the source lacks the blob", async () => {
    const b = blob(randomBytes(2048));
    await src.uploadBlob("team/mount-from", b, b.bytes);
    expect(await src.mountBlob("team/mount-to", b.digest, "team/mount-from")).toEqual({ mounted: true });
    expect(await src.headBlob("team/mount-to", b.digest)).toEqual({ size: 2048 });
    const missing = blob(randomBytes(10));
    const result = await src.mountBlob("team/mount-to", missing.digest, "team/mount-from");
    expect(result.mounted).toBe(false);
    if (!result.mounted) {
      await src.uploadBlob("team/mount-to", missing, missing.bytes, { location: result.location });
      expect(await src.headBlob("team/mount-to", missing.digest)).toEqual({ size: 10 });
    }
  });

  it("deletes manifests and blobs, and reports what is unknown with typed errors", async () => {
    const img = image({ layerCount: 1 });
    await push(src, "team/delete", img, "gone");
    expect(await src.deleteManifest("team/delete", img.digest)).toBe(true);
    expect(await src.headManifest("team/delete", img.digest)).toBeUndefined();
    expect(await src.deleteManifest("team/delete", img.digest)).toBe(false);
    expect(await src.deleteBlob("team/delete", img.layers[0]!.digest)).toBe(true);
    expect(await src.headBlob("team/delete", img.layers[0]!.digest)).toBeUndefined();

    const error = await src.getManifest("team/delete", "gone").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryHttpError);
    expect((error as RegistryHttpError).status).toBe(404);
    expect((error as RegistryHttpError).ociCode).toBe("MANIFEST_UNKNOWN");
    expect((error as Error).message).toContain("team/delete");

    const nameUnknown = await src.listTags("team/never-pushed").catch((e: unknown) => e);
    expect((nameUnknown as RegistryHttpError).ociCode).toBe("NAME_UNKNOWN");
  });

  it("rejects invalid names and digests before any request", async () => {
    await expect(src.listTags("Team/App")).rejects.toBeInstanceOf(InvalidReferenceError);
    await expect(src.headBlob("team/app", "sha256:abc")).rejects.toThrow(/digest/);
    await expect(src.getManifest("team/app", "bad tag!")).rejects.toBeInstanceOf(InvalidReferenceError);
  });

  it("copies a blob with constant memory semantics: skip when present, mount from a sibling, else stream", async () => {
    const b = blob(randomBytes(500_000));
    await src.uploadBlob("team/copy", b, b.bytes);
    const from = { client: src, repository: "team/copy" };
    expect(await copyBlob(from, { client: dst, repository: "team/copy" }, b)).toEqual({ action: "uploaded", bytes: 500_000 });
    expect(await copyBlob(from, { client: dst, repository: "team/copy" }, b)).toEqual({ action: "skipped", bytes: 0 });
    expect(await copyBlob(from, { client: dst, repository: "team/copy-2" }, b, { mountFrom: ["team/copy"] })).toEqual({ action: "mounted", bytes: 0 });
    expect((await readStream((await dst.getBlob("team/copy-2", b.digest)).stream)).equals(b.bytes)).toBe(true);
  });

  it("copies a multi-platform index with every child, then the tag", async () => {
    const amd = image({ architecture: "amd64" });
    const arm = image({ architecture: "arm64" });
    const idx = index([amd, arm], ["amd64", "arm64"]);
    await push(src, "team/multi", amd);
    await push(src, "team/multi", arm);
    await src.putManifest("team/multi", "v2", idx);

    const result = await copyImage({ client: src, repository: "team/multi" }, { client: dst, repository: "team/multi" }, "v2", { tag: "v2" });
    expect(result.digest).toBe(idx.digest);
    expect(result.manifests).toBe(3);
    expect(result.blobs.uploaded).toBe(6);
    expect((await dst.headManifest("team/multi", "v2"))?.digest).toBe(idx.digest);
    for (const child of [amd, arm]) {
      const m = await dst.getManifest("team/multi", child.digest);
      expect(Buffer.from(m.raw).equals(child.raw)).toBe(true);
      for (const l of child.layers) expect(await dst.headBlob("team/multi", l.digest)).toEqual({ size: l.size });
    }
    const again = await copyImage({ client: src, repository: "team/multi" }, { client: dst, repository: "team/multi" }, "v2", { tag: "v2" });
    expect(again.blobs).toEqual({ skipped: 6, mounted: 0, uploaded: 0 });
  });

  it("copies an artifact that has no layers and an empty config", async () => {
    const empty = blob(Buffer.from("{}"), "application/vnd.oci.empty.v1+json");
    await src.uploadBlob("team/artifact", empty, empty.bytes);
    const raw = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        artifactType: "application/vnd.example.sbom",
        config: { mediaType: "application/vnd.oci.empty.v1+json", digest: empty.digest, size: 2 },
        layers: [],
      }),
    );
    await src.putManifest("team/artifact", "sbom", { raw, mediaType: "application/vnd.oci.image.manifest.v1+json" });
    const result = await copyImage({ client: src, repository: "team/artifact" }, { client: dst, repository: "team/artifact" }, "sbom", { tag: "sbom" });
    expect(result.digest).toBe(sha256(raw));
    const copied = await dst.getManifest("team/artifact", "sbom");
    expect(copied.artifactType).toBe("application/vnd.example.sbom");
    expect(copied.kind === "image" ? copied.layers : undefined).toEqual([]);
  });

  it("finds referrers through the fallback tag on Distribution 2.8 (no referrers API)", async () => {
    const img = image({ layerCount: 1 });
    await push(src, "team/refs", img, "v1");
    expect(await src.referrers("team/refs", img.digest)).toEqual({ descriptors: [], via: "none" });

    // A signature artifact whose subject is the image, and the fallback index that lists it.
    const empty = blob(Buffer.from("{}"), "application/vnd.oci.empty.v1+json");
    const payload = blob(Buffer.from("signature"), "application/vnd.example.sig.v1");
    for (const b of [empty, payload]) await src.uploadBlob("team/refs", b, b.bytes);
    const sig = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        artifactType: "application/vnd.example.sig",
        config: { mediaType: empty.mediaType, digest: empty.digest, size: empty.size },
        layers: [{ mediaType: payload.mediaType, digest: payload.digest, size: payload.size }],
        subject: { mediaType: img.mediaType, digest: img.digest, size: img.raw.length },
      }),
    );
    await src.putManifest("team/refs", sha256(sig), { raw: sig, mediaType: "application/vnd.oci.image.manifest.v1+json" });
    const fallback = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: sha256(sig), size: sig.length, artifactType: "application/vnd.example.sig" }],
      }),
    );
    await src.putManifest("team/refs", `sha256-${img.digest.slice(7)}`, { raw: fallback, mediaType: "application/vnd.oci.image.index.v1+json" });
    const found = await src.referrers("team/refs", img.digest);
    expect(found.via).toBe("tag");
    expect(found.descriptors.map((d) => d.digest)).toEqual([sha256(sig)]);
    expect((await src.referrers("team/refs", img.digest, { artifactType: "application/vnd.other" })).descriptors).toEqual([]);

    // copyImage with withSubject carries the subject along with the referrer.
    const copied = await copyImage({ client: src, repository: "team/refs" }, { client: dst, repository: "team/refs" }, sha256(sig), { withSubject: true });
    expect(copied.manifests).toBe(2);
    expect((await dst.headManifest("team/refs", img.digest))?.digest).toBe(img.digest);
  });
});

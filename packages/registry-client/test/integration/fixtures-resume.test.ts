/**
 * Blob copies from a source that misbehaves mid-body: a short read (fewer
 * bytes than Content-Length, then the connection dies) must be resumed from
 * the offset the target reports, as must a PATCH the target breaks; wrong
 * bytes must never become a blob.
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { startRegistry } from "@georep/testing";
import type { RunningRegistry } from "@georep/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DigestMismatchError, copyBlob, createRegistryClient } from "../../src/index.js";
import type { RegistryClient } from "../../src/index.js";
import { startFixture } from "../fixtures/http-fixture.js";
import type { HttpFixture } from "../fixtures/http-fixture.js";
import { createMemoryRegistry, sha256 } from "../fixtures/memory-registry.js";

const SOURCE_REPO = "src/app";
const TARGET_REPO = "dst/app";
const FAST = { retries: 2, baseDelayMs: 5, maxDelayMs: 20 };

let registry: RunningRegistry;
beforeAll(async () => {
  registry = await startRegistry();
});
afterAll(async () => {
  await registry.stop();
});

/**
 * A source whose first `cuts.length` blob GETs without a Range each send
 * `cuts[i]` bytes of a longer Content-Length, wait so those bytes reach the
 * target, and then destroy the socket. Everything else (the re-read of the
 * prefix, the ranged GET with 206) the memory registry answers correctly,
 * or with a 200 of the whole blob when `ignoreRange` is set.
 */
async function shortReadSource(blob: Buffer, cuts: readonly number[], options: { ignoreRange?: boolean } = {}): Promise<{ fixture: HttpFixture; digest: string }> {
  const store = createMemoryRegistry();
  const digest = store.putBlob(SOURCE_REPO, blob);
  let served = 0;
  const fixture = await startFixture(async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const isBlob = req.method === "GET" && url.pathname === `/v2/${SOURCE_REPO}/blobs/${digest}`;
    if (isBlob && served < cuts.length && req.headers.range === undefined) {
      const cutAt = cuts[served++]!;
      res.writeHead(200, { "content-length": String(blob.length), "content-type": "application/octet-stream", "docker-content-digest": digest });
      await new Promise<void>((resolve) => res.write(blob.subarray(0, cutAt), () => resolve()));
      await sleep(200);
      res.socket?.destroy();
      return;
    }
    if (isBlob && options.ignoreRange === true) delete req.headers.range;
    await store.handle(req, res, url);
  });
  return { fixture, digest };
}

/** A memory registry behind a fixture server: the target of a copy. */
async function memoryTarget(): Promise<{ store: ReturnType<typeof createMemoryRegistry>; fixture: HttpFixture }> {
  const store = createMemoryRegistry();
  return { store, fixture: await startFixture((req, res, url) => store.handle(req, res, url)) };
}

function client(url: string): RegistryClient {
  return createRegistryClient({ url, retry: FAST });
}

describe("a short read from the source", () => {
  it("is resumed from the target's offset with a ranged GET (fixture target)", async () => {
    const blob = randomBytes(256 * 1024);
    const cutAt = 100_000;
    const { fixture: source, digest } = await shortReadSource(blob, [cutAt]);
    const { store: targetStore, fixture: target } = await memoryTarget();
    try {
      // PATCH uploads (the monolithic PUT of small blobs has its own test below).
      const result = await copyBlob({ client: client(source.url), repository: SOURCE_REPO }, { client: client(target.url), repository: TARGET_REPO }, { digest, size: blob.length }, { monolithicMaxBytes: 0 });

      expect(result).toEqual({ action: "uploaded", bytes: blob.length });
      const stored = targetStore.getBlob(TARGET_REPO, digest);
      expect(stored).toBeDefined();
      expect(sha256(stored!)).toBe(digest);
      expect(stored!.equals(blob)).toBe(true);

      // The first PATCH was cut short; the target kept what it had and said so.
      expect(targetStore.patches[0]).toMatchObject({ complete: false, received: cutAt });
      expect(targetStore.statusOffsets).toEqual([cutAt]);
      // The rest came from the source with a Range starting where the target stood…
      const ranged = source.hits("GET", `/v2/${SOURCE_REPO}/blobs/${digest}`).filter((r) => r.headers.range !== undefined);
      expect(ranged.map((r) => r.headers.range)).toEqual([`bytes=${cutAt}-`]);
      // …and went up as one PATCH continuing at that offset, not a restart.
      expect(targetStore.patches.slice(1)).toEqual([{ contentRange: `${cutAt}-${blob.length - 1}`, received: blob.length - cutAt, complete: true }]);
      expect(target.hits("POST", `/v2/${TARGET_REPO}/blobs/uploads/`)).toHaveLength(1);
    } finally {
      await source.stop();
      await target.stop();
    }
  });

  it("cutting a small blob's one-request upload (PUT with the bytes) short resumes it with a PATCH from the target's offset", async () => {
    const blob = randomBytes(256 * 1024);
    const cutAt = 100_000;
    const { fixture: source, digest } = await shortReadSource(blob, [cutAt]);
    const { store: targetStore, fixture: target } = await memoryTarget();
    try {
      expect(await copyBlob({ client: client(source.url), repository: SOURCE_REPO }, { client: client(target.url), repository: TARGET_REPO }, { digest, size: blob.length })).toEqual({ action: "uploaded", bytes: blob.length });
      expect(targetStore.getBlob(TARGET_REPO, digest)?.equals(blob)).toBe(true);
      const puts = target.hits("PUT", new RegExp(`^/v2/${TARGET_REPO}/blobs/uploads/`));
      // The first PUT carried the bytes and was cut; the rest went as a PATCH and an empty closing PUT.
      expect(puts).toHaveLength(2);
      expect(targetStore.statusOffsets).toEqual([cutAt]);
      expect(targetStore.patches).toEqual([{ contentRange: `${cutAt}-${blob.length - 1}`, received: blob.length - cutAt, complete: true }]);
    } finally {
      await source.stop();
      await target.stop();
    }
  });

  it("is resumed when the source ignores the Range and answers 200 with the whole blob", async () => {
    const blob = randomBytes(256 * 1024);
    const cutAt = 100_000;
    const { fixture: source, digest } = await shortReadSource(blob, [cutAt], { ignoreRange: true });
    const { store: targetStore, fixture: target } = await memoryTarget();
    try {
      await copyBlob({ client: client(source.url), repository: SOURCE_REPO }, { client: client(target.url), repository: TARGET_REPO }, { digest, size: blob.length }, { monolithicMaxBytes: 0 });
      expect(targetStore.getBlob(TARGET_REPO, digest)?.equals(blob)).toBe(true);
      // The client skipped the bytes the target already had instead of sending them twice.
      expect(targetStore.patches.slice(1)).toEqual([{ contentRange: `${cutAt}-${blob.length - 1}`, received: blob.length - cutAt, complete: true }]);
    } finally {
      await source.stop();
      await target.stop();
    }
  });

  it("during the re-read of the prefix counts as one more attempt, not the end", async () => {
    const blob = randomBytes(256 * 1024);
    const cutAt = 100_000;
    // The upload's GET is cut at 100 000 bytes, then the re-read of those bytes (to rebuild the hash) at 50 000.
    const { fixture: source, digest } = await shortReadSource(blob, [cutAt, 50_000]);
    const { store: targetStore, fixture: target } = await memoryTarget();
    try {
      await copyBlob({ client: client(source.url), repository: SOURCE_REPO }, { client: client(target.url), repository: TARGET_REPO }, { digest, size: blob.length }, { resumeAttempts: 3 });
      expect(targetStore.getBlob(TARGET_REPO, digest)?.equals(blob)).toBe(true);
      expect(source.hits("GET", `/v2/${SOURCE_REPO}/blobs/${digest}`).map((r) => r.headers.range)).toEqual([undefined, undefined, undefined, `bytes=${cutAt}-`]);
    } finally {
      await source.stop();
      await target.stop();
    }
  });

  it("fails with the source's error once resumeAttempts are spent", async () => {
    const blob = randomBytes(256 * 1024);
    const { fixture: source, digest } = await shortReadSource(blob, [100_000, 50_000, 50_000]);
    const { store: targetStore, fixture: target } = await memoryTarget();
    try {
      await expect(
        copyBlob({ client: client(source.url), repository: SOURCE_REPO }, { client: client(target.url), repository: TARGET_REPO }, { digest, size: blob.length }, { resumeAttempts: 2 }),
      ).rejects.toThrow(/other side closed|socket/i);
      expect(targetStore.getBlob(TARGET_REPO, digest)).toBeUndefined();
      // The abandoned session was cancelled.
      expect(target.hits("DELETE", /\/blobs\/uploads\//)).toHaveLength(1);
    } finally {
      await source.stop();
      await target.stop();
    }
  });

  it("still ends with the right blob on a real Distribution target", async () => {
    const blob = randomBytes(256 * 1024);
    const { fixture: source, digest } = await shortReadSource(blob, [100_000]);
    try {
      const target = client(registry.url);
      await copyBlob({ client: client(source.url), repository: SOURCE_REPO }, { client: target, repository: TARGET_REPO }, { digest, size: blob.length });

      expect(await target.headBlob(TARGET_REPO, digest)).toEqual({ size: blob.length });
      const download = await target.getBlob(TARGET_REPO, digest);
      const chunks: Buffer[] = [];
      for await (const chunk of download.stream) chunks.push(chunk as Buffer);
      expect(sha256(Buffer.concat(chunks))).toBe(digest);
      // The broken GET was followed by at least one more read of the source.
      expect(source.hits("GET", `/v2/${SOURCE_REPO}/blobs/${digest}`).length).toBeGreaterThan(1);
    } finally {
      await source.stop();
    }
  });
});

describe("a PATCH broken on the target side", () => {
  it("releases the source download, so a source client with one connection can resume", async () => {
    const blob = randomBytes(4 * 1024 * 1024);
    const sourceStore = createMemoryRegistry();
    const digest = sourceStore.putBlob(SOURCE_REPO, blob);
    const source = await startFixture((req, res, url) => sourceStore.handle(req, res, url));
    const targetStore = createMemoryRegistry();
    let broken = false;
    const target = await startFixture(async (req, res, url) => {
      if (!broken && req.method === "PATCH") {
        broken = true;
        // Read a little of the body, then drop the connection (a proxy timing out, a pod going away).
        let received = 0;
        req.on("data", (chunk: Buffer) => {
          received += chunk.length;
          if (received > 100_000) req.socket.destroy();
        });
        return;
      }
      await targetStore.handle(req, res, url);
    });
    try {
      // One request at a time on the source: a download left open by the failed chunk would block the resume for ever.
      const from = createRegistryClient({ url: source.url, retry: FAST, maxConcurrentRequests: 1 });
      const started = performance.now();
      await copyBlob({ client: from, repository: SOURCE_REPO }, { client: client(target.url), repository: TARGET_REPO }, { digest, size: blob.length });
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(targetStore.getBlob(TARGET_REPO, digest)?.equals(blob)).toBe(true);
      expect(source.hits("GET", `/v2/${SOURCE_REPO}/blobs/${digest}`).length).toBeGreaterThan(1);
    } finally {
      await source.stop();
      await target.stop();
    }
  }, 10_000);
});

describe("wrong bytes from the source", () => {
  it("reject with DigestMismatchError and the target never gets the blob", async () => {
    const blob = randomBytes(64 * 1024);
    const digest = sha256(blob);
    const wrong = Buffer.from(blob);
    wrong[wrong.length - 1] = wrong[wrong.length - 1]! ^ 0xff;
    const store = createMemoryRegistry();
    // The source stores the wrong bytes under the right digest: same length, other content.
    store.blobs.set(`${SOURCE_REPO}@${digest}`, wrong);
    const source = await startFixture((req, res, url) => store.handle(req, res, url));
    try {
      const target = client(registry.url);
      const error = await copyBlob({ client: client(source.url), repository: SOURCE_REPO }, { client: target, repository: TARGET_REPO }, { digest, size: blob.length }).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(DigestMismatchError);
      expect((error as DigestMismatchError).expected).toBe(digest);
      expect((error as DigestMismatchError).actual).toBe(sha256(wrong));
      expect(await target.headBlob(TARGET_REPO, digest)).toBeUndefined();
      // Corrupt content is not a transient failure: the source is read once, not retried.
      expect(source.hits("GET", `/v2/${SOURCE_REPO}/blobs/${digest}`)).toHaveLength(1);
    } finally {
      await source.stop();
    }
  });

  it("in a chunked upload are caught at the last chunk and never committed", async () => {
    const blob = randomBytes(64 * 1024);
    const digest = sha256(blob);
    const wrong = Buffer.from(blob);
    wrong[0] = wrong[0]! ^ 0xff;
    const store = createMemoryRegistry();
    store.blobs.set(`${SOURCE_REPO}@${digest}`, wrong);
    const source = await startFixture((req, res, url) => store.handle(req, res, url));
    try {
      const target = client(registry.url);
      await expect(
        copyBlob({ client: client(source.url), repository: SOURCE_REPO }, { client: target, repository: TARGET_REPO }, { digest, size: blob.length }, { chunkSize: 16 * 1024 }),
      ).rejects.toBeInstanceOf(DigestMismatchError);
      expect(await target.headBlob(TARGET_REPO, digest)).toBeUndefined();
    } finally {
      await source.stop();
    }
  });
});

describe("upload requests", () => {
  it("a blob up to monolithicMaxBytes goes up as POST and one PUT with its bytes; a larger one as POST, PATCH and an empty PUT", async () => {
    const { store, fixture: target } = await memoryTarget();
    try {
      const c = client(target.url);
      const small = randomBytes(1000);
      const large = randomBytes(3000);
      await c.uploadBlob(TARGET_REPO, { digest: sha256(small), size: small.length }, small, { monolithicMaxBytes: 2000 });
      const afterSmall = target.requests.filter((r) => r.path.includes("/blobs/uploads/")).length;
      await c.uploadBlob(TARGET_REPO, { digest: sha256(large), size: large.length }, large, { monolithicMaxBytes: 2000 });
      // Upload requests only (the client may also ask /v2/ how to authenticate).
      const methods = target.requests.filter((r) => r.path.includes("/blobs/uploads/")).map((r) => r.method);
      expect(methods.slice(0, afterSmall)).toEqual(["POST", "PUT"]);
      expect(methods.slice(afterSmall)).toEqual(["POST", "PATCH", "PUT"]);
      expect(store.getBlob(TARGET_REPO, sha256(small))?.equals(small)).toBe(true);
      expect(store.getBlob(TARGET_REPO, sha256(large))?.equals(large)).toBe(true);
    } finally {
      await target.stop();
    }
  });

  it("a PUT with the wrong bytes for its digest never becomes a blob", async () => {
    const { store, fixture: target } = await memoryTarget();
    try {
      const bytes = randomBytes(1000);
      const claimed = sha256(randomBytes(1000));
      await expect(client(target.url).uploadBlob(TARGET_REPO, { digest: claimed, size: bytes.length }, bytes)).rejects.toBeInstanceOf(DigestMismatchError);
      expect(store.getBlob(TARGET_REPO, claimed)).toBeUndefined();
    } finally {
      await target.stop();
    }
  });
});

/**
 * Authentication against scripted registries: a bearer token that expires
 * in the middle of a chunked upload, a pluggable token provider, and the
 * Basic challenge with right and wrong credentials.
 */
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { AuthError, MEDIA_TYPES, basicAuthorization, createRegistryClient } from "../../src/index.js";
import type { TokenRequest, TransportEvent } from "../../src/index.js";
import { TOKEN_PATH, createBearerAuth } from "../fixtures/bearer-auth.js";
import type { BearerAuth } from "../fixtures/bearer-auth.js";
import { sendOciError, startFixture } from "../fixtures/http-fixture.js";
import type { HttpFixture } from "../fixtures/http-fixture.js";
import { imageManifest, oddBytes } from "../fixtures/manifests.js";
import { createMemoryRegistry, sha256 } from "../fixtures/memory-registry.js";
import type { MemoryRegistry } from "../fixtures/memory-registry.js";

const REPO = "team/app";
const FAST = { retries: 2, baseDelayMs: 5, maxDelayMs: 20 };

let fixture: HttpFixture | undefined;
afterEach(async () => {
  await fixture?.stop();
  fixture = undefined;
});

/** A memory registry behind the token flow. */
async function bearerRegistry(auth: BearerAuth): Promise<{ fx: HttpFixture; store: MemoryRegistry }> {
  const store = createMemoryRegistry();
  fixture = await startFixture(async (req, res, url) => {
    if (await auth.handle(req, res, url)) return;
    await store.handle(req, res, url);
  });
  return { fx: fixture, store };
}

describe("a bearer token that expires mid-upload", () => {
  it("is renewed before it expires, so a chunked upload outlasting it succeeds", async () => {
    const auth = createBearerAuth({ service: "fixture", lifetimeS: 2 });
    const { fx, store } = await bearerRegistry(auth);
    const events: TransportEvent[] = [];
    const client = createRegistryClient({ url: fx.url, retry: FAST, onEvent: (e) => events.push(e) });

    const chunkSize = 4096;
    const blob = randomBytes(8 * chunkSize);
    const digest = sha256(blob);
    const offsets: number[] = [];
    // A slow source: each chunk takes 650 ms to start, so 8 chunks outlive two tokens.
    const source = async (offset: number) => {
      offsets.push(offset);
      await sleep(650);
      return Readable.from([blob.subarray(offset)]);
    };

    const started = performance.now();
    await client.uploadBlob(REPO, { digest, size: blob.length }, source, { chunkSize, resumeAttempts: 0 });
    const elapsed = performance.now() - started;

    expect(elapsed).toBeGreaterThan(4_000);
    expect(sha256(store.getBlob(REPO, digest)!)).toBe(digest);
    expect(offsets).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => i * chunkSize));
    expect(store.patches.map((p) => p.contentRange)).toEqual(offsets.map((o) => `${o}-${o + chunkSize - 1}`));
    // Renewed along the way: one token cannot have covered > 4 s of 2 s tokens.
    expect(auth.issued.length).toBeGreaterThanOrEqual(3);
    expect(events.filter((e) => e.type === "token").length).toBe(auth.issued.length);
    for (const token of auth.issued) {
      expect(token.service).toBe("fixture");
      expect(token.scopes).toEqual([`repository:${REPO}:pull,push`]);
    }
    // Only the very first request went without a token; no stale token was ever sent.
    expect(auth.refusals).toEqual([{ method: "POST", path: `/v2/${REPO}/blobs/uploads/`, reason: "missing" }]);
    // And several distinct tokens were used on the requests themselves…
    expect(new Set(auth.accepted).size).toBeGreaterThanOrEqual(3);
    // …none older than the renewal point (issue + expires_in - min(30, expires_in / 2) = 1 s) plus slack:
    // renewing only at expiry would send tokens up to 2 s old.
    expect(auth.acceptedAges.length).toBe(auth.accepted.length);
    expect(Math.max(...auth.acceptedAges)).toBeLessThan(1_500);
  });

  it("refused mid-upload before its announced expiry (clock skew) is replaced and the upload resumes", async () => {
    // Tokens claim 60 s but the registry refuses them after 1 s: a streamed chunk cannot be
    // replayed, so the upload must drop the token, ask for its offset and go on.
    const auth = createBearerAuth({ service: "fixture", lifetimeS: 60, maxAgeMs: 1_000 });
    const { fx, store } = await bearerRegistry(auth);
    const client = createRegistryClient({ url: fx.url, retry: FAST });
    const chunkSize = 1024;
    const blob = randomBytes(4 * chunkSize);
    const digest = sha256(blob);
    const source = async (offset: number) => {
      await sleep(400);
      return Readable.from([blob.subarray(offset)]);
    };

    await client.uploadBlob(REPO, { digest, size: blob.length }, source, { chunkSize });

    expect(store.getBlob(REPO, digest)?.equals(blob)).toBe(true);
    expect(auth.refusals.filter((r) => r.method === "PATCH")).toHaveLength(1);
    expect(auth.issued.length).toBeGreaterThanOrEqual(2);
    // Each chunk went up once, except the refused one, which was sent again at the same offset.
    expect(store.patches.map((p) => p.contentRange)).toEqual(["0-1023", "1024-2047", "2048-3071", "3072-4095"]);
  });

  it("is fetched again after the registry refuses it (replayable requests)", async () => {
    // The registry refuses tokens after 300 ms although they claim to live 60 s.
    const auth = createBearerAuth({ service: "fixture", lifetimeS: 60, maxAgeMs: 300 });
    const { fx, store } = await bearerRegistry(auth);
    const raw = oddBytes(imageManifest({ mediaType: MEDIA_TYPES.ociManifest, configMediaType: MEDIA_TYPES.ociConfig, layerMediaType: MEDIA_TYPES.ociLayerGzip }));
    store.putManifest(REPO, raw, MEDIA_TYPES.ociManifest, "v1");
    const client = createRegistryClient({ url: fx.url, retry: FAST });

    await client.getManifest(REPO, "v1");
    await sleep(400);
    const manifest = await client.getManifest(REPO, "v1");

    expect(manifest.digest).toBe(sha256(raw));
    expect(auth.issued).toHaveLength(2);
    expect(auth.refusals.map((r) => r.reason)).toEqual(["missing", { ageMs: expect.any(Number) as number }]);
  });
});

describe("a token provider", () => {
  it("is asked with the registry, realm, service and scopes, and its token is sent", async () => {
    const auth = createBearerAuth({ service: "fixture", lifetimeS: 60, acceptTokens: ["minted-by-provider"] });
    const { fx, store } = await bearerRegistry(auth);
    const raw = oddBytes(imageManifest({ mediaType: MEDIA_TYPES.ociManifest, configMediaType: MEDIA_TYPES.ociConfig, layerMediaType: MEDIA_TYPES.ociLayerGzip }));
    store.putManifest(REPO, raw, MEDIA_TYPES.ociManifest, "v1");
    const calls: TokenRequest[] = [];
    const client = createRegistryClient({
      url: fx.url,
      retry: FAST,
      credentials: {
        type: "provider",
        provider: async (request) => {
          calls.push(request);
          return { token: "minted-by-provider", expiresIn: 300 };
        },
      },
    });

    expect((await client.getManifest(REPO, "v1")).digest).toBe(sha256(raw));
    expect(await client.headManifest(REPO, "v1")).toMatchObject({ digest: sha256(raw) });

    expect(calls).toEqual([{ registry: fx.url, realm: `${fx.url}${TOKEN_PATH}`, service: "fixture", scopes: [`repository:${REPO}:pull`] }]);
    // The registry's own token endpoint was never used.
    expect(auth.issued).toEqual([]);
    expect(auth.accepted).toEqual(["Bearer minted-by-provider", "Bearer minted-by-provider"]);
  });

  it("a static token is sent from the first request, without a challenge", async () => {
    const auth = createBearerAuth({ service: "fixture", lifetimeS: 60, acceptTokens: ["static"] });
    const { fx } = await bearerRegistry(auth);
    const client = createRegistryClient({ url: fx.url, credentials: { type: "token", token: "static" } });
    await client.ping();
    expect(fx.requests).toHaveLength(1);
    expect(auth.refusals).toEqual([]);
  });

  it("basic credentials go to the token endpoint, not to the registry", async () => {
    const auth = createBearerAuth({ service: "fixture", lifetimeS: 60 });
    const { fx } = await bearerRegistry(auth);
    const client = createRegistryClient({ url: fx.url, credentials: { type: "basic", username: "alice", password: "s3cret" } });
    expect(await client.listTags(REPO).catch((e: unknown) => e)).toMatchObject({ status: 404 });
    expect(auth.issued.map((t) => t.authorization)).toEqual([basicAuthorization("alice", "s3cret")]);
    expect(auth.accepted.every((a) => a.startsWith("Bearer "))).toBe(true);
  });
});

describe("a Basic challenge", () => {
  const CHALLENGE = 'Basic realm="x"';

  async function basicRegistry(): Promise<HttpFixture> {
    const store = createMemoryRegistry();
    const expected = basicAuthorization("alice", "s3cret");
    fixture = await startFixture(async (req, res, url) => {
      if (req.headers.authorization !== expected) {
        sendOciError(res, 401, "UNAUTHORIZED", "authentication required", { "www-authenticate": CHALLENGE });
        return;
      }
      await store.handle(req, res, url);
    });
    return fixture;
  }

  it("is answered with Authorization: Basic, sent up front afterwards", async () => {
    const fx = await basicRegistry();
    const events: TransportEvent[] = [];
    const client = createRegistryClient({ url: fx.url, credentials: { type: "basic", username: "alice", password: "s3cret" }, onEvent: (e) => events.push(e) });

    await client.ping();
    expect(fx.requests.map((r) => r.headers.authorization)).toEqual([undefined, basicAuthorization("alice", "s3cret")]);
    expect(events).toContainEqual({ type: "challenge", scheme: "basic" });

    await client.ping();
    expect(fx.requests).toHaveLength(3);
    expect(fx.requests[2]!.headers.authorization).toBe(basicAuthorization("alice", "s3cret"));
  });

  it("with wrong credentials ends in AuthError 401 after one retry", async () => {
    const fx = await basicRegistry();
    const client = createRegistryClient({ url: fx.url, retry: FAST, credentials: { type: "basic", username: "alice", password: "wrong" } });

    const error = await client.ping().catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AuthError);
    expect((error as AuthError).status).toBe(401);
    expect((error as AuthError).challenge).toBe(CHALLENGE);
    expect((error as AuthError).ociCode).toBe("UNAUTHORIZED");
    expect(fx.requests.map((r) => r.headers.authorization)).toEqual([undefined, basicAuthorization("alice", "wrong")]);
  });

  it("without credentials ends in AuthError 401 at once", async () => {
    const fx = await basicRegistry();
    const client = createRegistryClient({ url: fx.url, retry: FAST });
    await expect(client.ping()).rejects.toMatchObject({ name: "AuthError", status: 401 });
    expect(fx.requests).toHaveLength(1);
  });
});

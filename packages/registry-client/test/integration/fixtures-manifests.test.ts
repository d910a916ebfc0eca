/**
 * Manifests and referrers as registries actually serve them: no `mediaType`
 * field, an unhelpful Content-Type, a missing Docker-Content-Digest, wrong
 * content for a digest, and the referrers API present, absent (fallback tag)
 * or neither.
 */
import { afterEach, describe, expect, it } from "vitest";
import { InvalidManifestError, MEDIA_TYPES, createRegistryClient, referrersFallbackTag } from "../../src/index.js";
import { sendBytes, sendJson, startFixture } from "../fixtures/http-fixture.js";
import type { FixtureHandler, HttpFixture } from "../fixtures/http-fixture.js";
import { descriptor, fakeDigest, imageManifest, oddBytes } from "../fixtures/manifests.js";
import { createMemoryRegistry, sha256 } from "../fixtures/memory-registry.js";
import type { MemoryRegistry } from "../fixtures/memory-registry.js";

const REPO = "team/app";
const SBOM = "application/spdx+json";
const SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json";

let fixture: HttpFixture | undefined;
afterEach(async () => {
  await fixture?.stop();
  fixture = undefined;
});

async function serve(handler: FixtureHandler): Promise<HttpFixture> {
  fixture = await startFixture(handler);
  return fixture;
}

/** Answers a request itself (true) or lets the memory registry have it (false). */
type Interceptor = (...args: Parameters<FixtureHandler>) => boolean | Promise<boolean>;

/** A memory registry with scripted routes in front. */
async function withStore(before?: Interceptor): Promise<{ fx: HttpFixture; store: MemoryRegistry }> {
  const store = createMemoryRegistry();
  const fx = await serve(async (req, res, url) => {
    if (before !== undefined && (await before(req, res, url))) return;
    await store.handle(req, res, url);
  });
  return { fx, store };
}

describe("the media type of a manifest without a mediaType field", () => {
  it("comes from an OCI Content-Type; the digest is of the exact bytes", async () => {
    const raw = oddBytes(imageManifest({ configMediaType: MEDIA_TYPES.ociConfig, layerMediaType: MEDIA_TYPES.ociLayerGzip }));
    const { fx, store } = await withStore();
    store.putManifest(REPO, raw, `${MEDIA_TYPES.ociManifest}; charset=utf-8`, "v1");
    const client = createRegistryClient({ url: fx.url });

    const manifest = await client.getManifest(REPO, "v1");

    expect(manifest.kind).toBe("image");
    expect(manifest.mediaType).toBe(MEDIA_TYPES.ociManifest);
    expect(manifest.digest).toBe(sha256(raw));
    expect(Buffer.from(manifest.raw).equals(raw)).toBe(true);
    expect(manifest.size).toBe(raw.length);
    // The exact bytes are not what JSON.stringify would make of them.
    expect(sha256(Buffer.from(JSON.stringify(JSON.parse(raw.toString()))))).not.toBe(manifest.digest);
    // And the client asked for every manifest type it understands.
    expect(fx.requests[0]!.headers.accept).toContain(MEDIA_TYPES.ociIndex);
    expect(fx.requests[0]!.headers.accept).toContain(MEDIA_TYPES.dockerManifest);
  });

  it("prefers the Content-Type over the shape", async () => {
    // A config with Docker's media type would make the shape say "Docker manifest".
    const raw = oddBytes(imageManifest({ configMediaType: MEDIA_TYPES.dockerConfig, layerMediaType: MEDIA_TYPES.ociLayerGzip }));
    const { fx, store } = await withStore();
    store.putManifest(REPO, raw, MEDIA_TYPES.ociManifest, "v1");
    const manifest = await createRegistryClient({ url: fx.url }).getManifest(REPO, "v1");
    expect(manifest.mediaType).toBe(MEDIA_TYPES.ociManifest);
  });

  it.each([
    ["an index", { schemaVersion: 2, manifests: [descriptor(MEDIA_TYPES.ociManifest, "m0", 500, { platform: { architecture: "amd64", os: "linux" } })] }, MEDIA_TYPES.ociIndex, "index"],
    ["a Docker image", imageManifest({ configMediaType: MEDIA_TYPES.dockerConfig, layerMediaType: MEDIA_TYPES.dockerLayer }), MEDIA_TYPES.dockerManifest, "image"],
    ["an OCI image", imageManifest({ configMediaType: MEDIA_TYPES.ociConfig, layerMediaType: MEDIA_TYPES.ociLayerGzip }), MEDIA_TYPES.ociManifest, "image"],
    ["an artifact", { schemaVersion: 2, artifactType: SBOM, blobs: [descriptor(SBOM, "sbom")] }, MEDIA_TYPES.ociArtifactManifest, "image"],
  ] as const)("comes from the shape of %s served as application/json", async (_name, doc, mediaType, kind) => {
    const raw = oddBytes(doc);
    const { fx, store } = await withStore();
    const digest = store.putManifest(REPO, raw, "application/json");
    const client = createRegistryClient({ url: fx.url });

    const manifest = await client.getManifest(REPO, digest);

    expect(manifest.mediaType).toBe(mediaType);
    expect(manifest.kind).toBe(kind);
    expect(manifest.digest).toBe(digest);
    expect(Buffer.from(manifest.raw).equals(raw)).toBe(true);
  });
});

describe("manifest digests the registry does not vouch for", () => {
  it("headManifest without Docker-Content-Digest falls back to a GET and digests the bytes", async () => {
    const raw = oddBytes(imageManifest({ mediaType: MEDIA_TYPES.ociManifest, configMediaType: MEDIA_TYPES.ociConfig, layerMediaType: MEDIA_TYPES.ociLayerGzip }));
    const fx = await serve((req, res) => {
      if (req.method === "HEAD") {
        res.writeHead(200, { "content-type": MEDIA_TYPES.ociManifest, "content-length": String(raw.length) });
        res.end();
      } else sendBytes(res, 200, raw, { "content-type": MEDIA_TYPES.ociManifest });
    });
    const info = await createRegistryClient({ url: fx.url }).headManifest(REPO, "v1");
    expect(info).toEqual({ digest: sha256(raw), mediaType: MEDIA_TYPES.ociManifest, size: raw.length });
    expect(fx.requests.map((r) => r.method)).toEqual(["HEAD", "GET"]);
  });

  it("getManifest by digest rejects content that hashes to another digest", async () => {
    const raw = oddBytes(imageManifest({ mediaType: MEDIA_TYPES.ociManifest, configMediaType: MEDIA_TYPES.ociConfig, layerMediaType: MEDIA_TYPES.ociLayerGzip }));
    const asked = fakeDigest("something else");
    const fx = await serve((_req, res) => sendBytes(res, 200, raw, { "content-type": MEDIA_TYPES.ociManifest, "docker-content-digest": asked }));
    const error = await createRegistryClient({ url: fx.url }).getManifest(REPO, asked).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidManifestError);
    expect((error as InvalidManifestError).digest).toBe(asked);
    expect((error as InvalidManifestError).message).toContain(sha256(raw));
  });

  it("getManifest by tag rejects content that does not hash to the registry's Docker-Content-Digest, and takes content that does", async () => {
    const raw = oddBytes(imageManifest({ mediaType: MEDIA_TYPES.ociManifest, configMediaType: MEDIA_TYPES.ociConfig, layerMediaType: MEDIA_TYPES.ociLayerGzip }));
    const stated = fakeDigest("what the tag points at");
    const fx = await serve((_req, res, url) =>
      sendBytes(res, 200, raw, { "content-type": MEDIA_TYPES.ociManifest, "docker-content-digest": url.pathname.endsWith("/damaged") ? stated : sha256(raw) }),
    );
    const client = createRegistryClient({ url: fx.url });
    const error = await client.getManifest(REPO, "damaged").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidManifestError);
    expect((error as InvalidManifestError).digest).toBe(stated);
    expect((error as InvalidManifestError).message).toContain('tag "damaged"');
    expect((await client.getManifest(REPO, "intact")).digest).toBe(sha256(raw));
  });
});

describe("referrers", () => {
  const subject = fakeDigest("subject");
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociIndex,
    manifests: [
      descriptor(MEDIA_TYPES.ociManifest, "sbom-manifest", 700, { artifactType: SBOM }),
      descriptor(MEDIA_TYPES.ociManifest, "sig-manifest", 800, { artifactType: SIGNATURE }),
    ],
  };

  it('come from the referrers API ("api"), filtered by artifactType', async () => {
    const path = `/v2/${REPO}/referrers/${subject}`;
    const { fx } = await withStore((_req, res, url) => {
      if (url.pathname !== path) return false;
      // This registry does not filter (no OCI-Filters-Applied): the client must.
      sendBytes(res, 200, oddBytes(index), { "content-type": MEDIA_TYPES.ociIndex });
      return true;
    });
    const client = createRegistryClient({ url: fx.url });

    const all = await client.referrers(REPO, subject);
    expect(all.via).toBe("api");
    expect(all.descriptors.map((d) => d.artifactType)).toEqual([SBOM, SIGNATURE]);

    const sboms = await client.referrers(REPO, subject, { artifactType: SBOM });
    expect(sboms).toEqual({ via: "api", descriptors: [index.manifests[0]] });
    expect(fx.hits("GET", path).map((r) => r.query.get("artifactType"))).toEqual([null, SBOM]);
    // The API answered, so the fallback tag was never looked at.
    expect(fx.hits("HEAD", /\/manifests\//)).toEqual([]);
  });

  it('come from the sha256-<hex> fallback tag without the API ("tag")', async () => {
    const { fx, store } = await withStore();
    const tag = referrersFallbackTag(subject);
    expect(tag).toBe(`sha256-${subject.slice("sha256:".length)}`);
    store.putManifest(REPO, oddBytes(index), MEDIA_TYPES.ociIndex, tag);
    const client = createRegistryClient({ url: fx.url });

    const all = await client.referrers(REPO, subject);
    expect(all.via).toBe("tag");
    expect(all.descriptors).toHaveLength(2);
    expect(await client.referrers(REPO, subject, { artifactType: SIGNATURE })).toEqual({ via: "tag", descriptors: [index.manifests[1]] });
    expect(fx.hits("GET", `/v2/${REPO}/referrers/${subject}`)).toHaveLength(2);
    expect(fx.hits("GET", `/v2/${REPO}/manifests/${tag}`)).toHaveLength(2);
  });

  it('are empty ("none") with neither the API nor the tag', async () => {
    const { fx } = await withStore();
    const client = createRegistryClient({ url: fx.url });
    expect(await client.referrers(REPO, subject)).toEqual({ via: "none", descriptors: [] });
    expect(fx.hits("HEAD", `/v2/${REPO}/manifests/${referrersFallbackTag(subject)}`)).toHaveLength(1);
  });

  it("ignore a 200 that is not an index (a proxy's catch-all page) and fall back", async () => {
    const { fx } = await withStore((_req, res, url) => {
      if (!url.pathname.includes("/referrers/")) return false;
      sendJson(res, 200, { hello: "not an index" });
      return true;
    });
    const client = createRegistryClient({ url: fx.url });
    expect(await client.referrers(REPO, subject)).toEqual({ via: "none", descriptors: [] });
  });
});

import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  DigestMismatchError,
  InvalidManifestError,
  InvalidReferenceError,
  MANIFEST_ACCEPT,
  MEDIA_TYPES,
  computeDigest,
  isBuildkitCacheIndex,
  isManifestMediaType,
  manifestChildren,
  parseManifest,
  referrersFallbackTag,
  sha256Digest,
  verifyDigest,
} from "../../src/index.js";
import type { Descriptor, Manifest } from "../../src/index.js";

const encode = (doc: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(doc));
const dig = (hexPair: string): string => `sha256:${hexPair.repeat(32)}`;
const sha256Hex = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

const EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/** The OCI empty descriptor: `{}`, 2 bytes. */
const EMPTY_CONFIG: Descriptor = {
  mediaType: MEDIA_TYPES.ociEmpty,
  digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
  size: 2,
  data: "e30=",
};
const OCI_CONFIG: Descriptor = { mediaType: MEDIA_TYPES.ociConfig, digest: dig("c0"), size: 1469 };
const DOCKER_CONFIG: Descriptor = { mediaType: MEDIA_TYPES.dockerConfig, digest: dig("c1"), size: 1500 };
const LAYER: Descriptor = { mediaType: MEDIA_TYPES.ociLayerGzip, digest: dig("1a"), size: 3_623_807 };
const DOCKER_LAYER: Descriptor = { mediaType: MEDIA_TYPES.dockerLayer, digest: dig("1b"), size: 100 };
const SUBJECT: Descriptor = { mediaType: MEDIA_TYPES.ociManifest, digest: dig("5b"), size: 1024 };
const AMD64: Descriptor = {
  mediaType: MEDIA_TYPES.ociManifest,
  digest: dig("a6"),
  size: 1000,
  platform: { architecture: "amd64", os: "linux" },
};
const ARM64: Descriptor = {
  mediaType: MEDIA_TYPES.ociManifest,
  digest: dig("a8"),
  size: 1001,
  platform: { architecture: "arm64", os: "linux", variant: "v8" },
};
const ATTESTATION: Descriptor = {
  mediaType: MEDIA_TYPES.ociManifest,
  digest: dig("a7"),
  size: 840,
  platform: { architecture: "unknown", os: "unknown" },
  annotations: { "vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": dig("a6") },
};

const ociImage = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: OCI_CONFIG, layers: [LAYER] };
const dockerImage = {
  schemaVersion: 2,
  mediaType: MEDIA_TYPES.dockerManifest,
  config: DOCKER_CONFIG,
  layers: [DOCKER_LAYER],
};
const ociIndex = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [AMD64, ARM64, ATTESTATION] };
const dockerList = {
  schemaVersion: 2,
  mediaType: MEDIA_TYPES.dockerManifestList,
  manifests: [
    { ...AMD64, mediaType: MEDIA_TYPES.dockerManifest },
    { ...ARM64, mediaType: MEDIA_TYPES.dockerManifest },
  ],
};
const withoutMediaType = ({ mediaType: _, ...rest }: Record<string, unknown>) => rest;

function invalid(fn: () => unknown): InvalidManifestError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidManifestError);
    expect((err as InvalidManifestError).code).toBe("REGISTRY_ERR_INVALID_MANIFEST");
    return err as InvalidManifestError;
  }
  throw new Error("expected an InvalidManifestError");
}

describe("media types", () => {
  it("MANIFEST_ACCEPT lists the four manifest types, OCI index first", () => {
    expect(MANIFEST_ACCEPT[0]).toBe(MEDIA_TYPES.ociIndex);
    expect(MANIFEST_ACCEPT).toEqual(
      expect.arrayContaining([
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
      ]),
    );
    expect(new Set(MANIFEST_ACCEPT).size).toBe(MANIFEST_ACCEPT.length);
  });

  it.each<[string, boolean]>([
    [MEDIA_TYPES.ociManifest, true],
    [MEDIA_TYPES.ociIndex, true],
    [MEDIA_TYPES.dockerManifest, true],
    [MEDIA_TYPES.dockerManifestList, true],
    [MEDIA_TYPES.ociArtifactManifest, true],
    [MEDIA_TYPES.dockerManifestV1Signed, false],
    [MEDIA_TYPES.ociConfig, false],
    [MEDIA_TYPES.ociEmpty, false],
    [MEDIA_TYPES.ociLayerGzip, false],
    [MEDIA_TYPES.buildkitCacheConfig, false],
    ["application/json", false],
    [`${MEDIA_TYPES.ociManifest}; charset=utf-8`, false],
  ])("isManifestMediaType(%s) is %s", (mediaType, expected) => {
    expect(isManifestMediaType(mediaType)).toBe(expected);
  });
});

describe("digests", () => {
  it.each<[string, Uint8Array, string]>([
    ["no bytes", new Uint8Array(), EMPTY_SHA256],
    ["{}", new TextEncoder().encode("{}"), EMPTY_CONFIG.digest],
  ])("sha256Digest of %s", (_name, bytes, digest) => {
    expect(sha256Digest(bytes)).toBe(digest);
  });

  it("computeDigest supports sha512", () => {
    expect(computeDigest(new Uint8Array(), "sha512")).toBe(
      "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
    );
  });

  it.each<[string, string]>([
    ["sha256", EMPTY_SHA256],
    ["sha512", computeDigest(new Uint8Array(), "sha512")],
  ])("verifyDigest accepts matching %s content", (_alg, digest) => {
    expect(() => verifyDigest(new Uint8Array(), digest)).not.toThrow();
  });

  it("verifyDigest names repository, expected and actual digests on a mismatch", () => {
    const bytes = new TextEncoder().encode("tampered");
    let caught: unknown;
    try {
      verifyDigest(bytes, EMPTY_SHA256, { repository: "team/app" });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DigestMismatchError);
    const err = caught as DigestMismatchError;
    expect(err).toMatchObject({ expected: EMPTY_SHA256, actual: sha256Digest(bytes), digest: EMPTY_SHA256 });
    expect(err.message).toContain("team/app");
    expect(err.message).toContain(EMPTY_SHA256);
    expect(err.message).toContain(sha256Digest(bytes));
  });
});

describe("parseManifest: media type detection", () => {
  it.each<[string, Record<string, unknown>, string | undefined, string, Manifest["kind"]]>([
    // By field
    ["OCI manifest by field", ociImage, undefined, MEDIA_TYPES.ociManifest, "image"],
    ["Docker schema 2 by field", dockerImage, undefined, MEDIA_TYPES.dockerManifest, "image"],
    ["OCI index by field", ociIndex, undefined, MEDIA_TYPES.ociIndex, "index"],
    ["Docker manifest list by field", dockerList, undefined, MEDIA_TYPES.dockerManifestList, "index"],
    ["field wins over Content-Type", ociIndex, MEDIA_TYPES.dockerManifestList, MEDIA_TYPES.ociIndex, "index"],
    ["field wins over shape", { ...ociImage, config: DOCKER_CONFIG }, undefined, MEDIA_TYPES.ociManifest, "image"],
    // By Content-Type
    ["Docker schema 2 by Content-Type", withoutMediaType(dockerImage), MEDIA_TYPES.dockerManifest, MEDIA_TYPES.dockerManifest, "image"],
    ["Docker list by Content-Type", withoutMediaType(dockerList), MEDIA_TYPES.dockerManifestList, MEDIA_TYPES.dockerManifestList, "index"],
    ["Content-Type with parameters", withoutMediaType(ociIndex), `${MEDIA_TYPES.ociIndex}; charset=utf-8`, MEDIA_TYPES.ociIndex, "index"],
    ["Content-Type in upper case", withoutMediaType(ociImage), MEDIA_TYPES.ociManifest.toUpperCase(), MEDIA_TYPES.ociManifest, "image"],
    // By shape
    ["manifests array → OCI index", withoutMediaType(ociIndex), undefined, MEDIA_TYPES.ociIndex, "index"],
    ["OCI config → OCI manifest", withoutMediaType(ociImage), undefined, MEDIA_TYPES.ociManifest, "image"],
    ["Docker config → Docker schema 2", withoutMediaType(dockerImage), undefined, MEDIA_TYPES.dockerManifest, "image"],
    ["config without layers → OCI manifest", { schemaVersion: 2, config: EMPTY_CONFIG }, undefined, MEDIA_TYPES.ociManifest, "image"],
    ["blobs only → OCI artifact manifest", { blobs: [LAYER] }, undefined, MEDIA_TYPES.ociArtifactManifest, "image"],
    ["non-manifest Content-Type falls back to shape", withoutMediaType(dockerImage), "application/json", MEDIA_TYPES.dockerManifest, "image"],
    ["octet-stream falls back to shape", withoutMediaType(ociIndex), "application/octet-stream", MEDIA_TYPES.ociIndex, "index"],
  ])("%s", (_name, doc, contentType, mediaType, kind) => {
    const manifest = parseManifest(encode(doc), contentType);
    expect(manifest.mediaType).toBe(mediaType);
    expect(manifest.kind).toBe(kind);
  });
});

describe("parseManifest: content", () => {
  it("keeps the raw bytes and digests them exactly, however they are formatted", () => {
    // Tabs, CRLF, odd key order, escaped characters and a trailing newline: a
    // re-serialisation would digest differently, the registry digests these bytes.
    const text =
      '{\r\n\t"layers" : [ ],\r\n  "config":{"size":2,"digest":"' +
      EMPTY_CONFIG.digest +
      '","mediaType":"application\\/vnd.oci.empty.v1+json"},\n"schemaVersion":2 ,' +
      '"annotations":{"note":"caf\\u00e9"}}\n\n';
    const raw = new TextEncoder().encode(text);
    const manifest = parseManifest(raw);
    expect(manifest.raw).toBe(raw);
    expect(manifest.size).toBe(raw.byteLength);
    expect(manifest.digest).toBe(`sha256:${sha256Hex(raw)}`);
    expect(manifest.digest).not.toBe(sha256Digest(encode(JSON.parse(text))));
    expect(manifest.annotations).toEqual({ note: "café" });
  });

  it("parses an OCI image manifest with its config, layers and annotations", () => {
    const manifest = parseManifest(encode({ ...ociImage, annotations: { "org.opencontainers.image.version": "1" } }));
    expect(manifest).toMatchObject({
      kind: "image",
      config: OCI_CONFIG,
      layers: [LAYER],
      blobs: [],
      annotations: { "org.opencontainers.image.version": "1" },
    });
    expect(manifest).not.toHaveProperty("subject");
    expect(manifestChildren(manifest)).toEqual([
      { kind: "blob", role: "config", descriptor: OCI_CONFIG },
      { kind: "blob", role: "layer", descriptor: LAYER },
    ]);
  });

  it("keeps foreign layer URLs so the copier can apply its policy", () => {
    const foreign = { mediaType: MEDIA_TYPES.dockerForeignLayer, digest: dig("f0"), size: 5, urls: ["https://mcr.microsoft.com/l"] };
    const manifest = parseManifest(encode({ ...dockerImage, layers: [foreign, DOCKER_LAYER] }));
    expect(manifest.kind === "image" && manifest.layers[0]).toEqual(foreign);
  });

  it("lists every index child, for every platform, as a manifest", () => {
    const manifest = parseManifest(encode(ociIndex));
    expect(manifest.kind === "index" && manifest.manifests.map((d) => d.platform?.architecture)).toEqual([
      "amd64",
      "arm64",
      "unknown",
    ]);
    expect(manifestChildren(manifest)).toEqual([
      { kind: "manifest", role: "child", descriptor: AMD64 },
      { kind: "manifest", role: "child", descriptor: ARM64 },
      { kind: "manifest", role: "child", descriptor: ATTESTATION },
    ]);
    expect(isBuildkitCacheIndex(manifest)).toBe(false);
  });

  it("treats a Docker manifest list like an OCI index", () => {
    const manifest = parseManifest(encode(dockerList));
    expect(manifest.kind).toBe("index");
    expect(manifestChildren(manifest).map((c) => [c.kind, c.descriptor.mediaType, c.descriptor.platform?.variant])).toEqual([
      ["manifest", MEDIA_TYPES.dockerManifest, undefined],
      ["manifest", MEDIA_TYPES.dockerManifest, "v8"],
    ]);
  });

  it("parses an artifact with artifactType, the empty config and no layers field", () => {
    const doc = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      artifactType: "application/vnd.example.sbom.v1+json",
      config: EMPTY_CONFIG,
    };
    const manifest = parseManifest(encode(doc));
    expect(manifest).toMatchObject({ kind: "image", artifactType: doc.artifactType, layers: [], blobs: [] });
    // The empty config is still a blob the destination must hold.
    expect(manifestChildren(manifest)).toEqual([{ kind: "blob", role: "config", descriptor: EMPTY_CONFIG }]);
  });

  it.each<[string, unknown]>([
    ["an empty layers array", []],
    ["layers: null", null],
  ])("accepts an artifact with %s", (_name, layers) => {
    const manifest = parseManifest(encode({ ...ociImage, config: EMPTY_CONFIG, layers }));
    expect(manifest.kind === "image" && manifest.layers).toEqual([]);
    expect(manifestChildren(manifest)).toHaveLength(1);
  });

  it("parses an artifact with the empty config and a payload layer", () => {
    const payload = { mediaType: "application/vnd.cncf.helm.chart.content.v1.tar+gzip", digest: dig("4e"), size: 4096 };
    const manifest = parseManifest(encode({ ...ociImage, config: EMPTY_CONFIG, layers: [payload] }));
    expect(manifestChildren(manifest).map((c) => [c.role, c.descriptor.digest])).toEqual([
      ["config", EMPTY_CONFIG.digest],
      ["layer", payload.digest],
    ]);
  });

  it("parses an artifact manifest with blobs and a subject", () => {
    const sig = { mediaType: "application/vnd.cncf.notary.signature", digest: dig("51"), size: 2048 };
    const doc = {
      mediaType: MEDIA_TYPES.ociArtifactManifest,
      artifactType: "application/vnd.cncf.notary.signature",
      blobs: [sig],
      subject: SUBJECT,
    };
    const manifest = parseManifest(encode(doc));
    expect(manifest).toMatchObject({ kind: "image", blobs: [sig], layers: [], subject: SUBJECT });
    expect(manifest.kind === "image" && manifest.config).toBeUndefined();
    expect(manifestChildren(manifest)).toEqual([
      { kind: "blob", role: "blob", descriptor: sig },
      { kind: "manifest", role: "subject", descriptor: SUBJECT },
    ]);
  });

  it.each<[string, Record<string, unknown>]>([
    ["image manifest", { ...ociImage, artifactType: "application/vnd.dev.sigstore.bundle.v0.3+json" }],
    ["index", { ...ociIndex, artifactType: "application/vnd.example.set" }],
  ])("lists the subject of an %s last, with role subject", (_name, doc) => {
    const manifest = parseManifest(encode({ ...doc, subject: SUBJECT }));
    expect(manifest.subject).toEqual(SUBJECT);
    const children = manifestChildren(manifest);
    expect(children.at(-1)).toEqual({ kind: "manifest", role: "subject", descriptor: SUBJECT });
    expect(children.filter((c) => c.role === "subject")).toHaveLength(1);
  });

  it("treats null optional fields as absent", () => {
    const manifest = parseManifest(encode({ ...ociImage, annotations: null, subject: null, artifactType: null }));
    expect(manifest).not.toHaveProperty("annotations");
    expect(manifest).not.toHaveProperty("subject");
    expect(manifest).not.toHaveProperty("artifactType");
    expect(manifestChildren(manifest)).toHaveLength(2);
  });
});

describe("BuildKit cache index", () => {
  const cacheConfig = { mediaType: MEDIA_TYPES.buildkitCacheConfig, digest: dig("cc"), size: 900 };
  const layers = [
    { ...LAYER, annotations: { "buildkit/createdat": "2024-01-01T00:00:00Z" } },
    { mediaType: MEDIA_TYPES.dockerLayer, digest: dig("2b"), size: 12 },
  ];

  it.each<[string, Descriptor[]]>([
    ["layers and a cache config", [...layers, cacheConfig]],
    ["layers only", layers],
  ])("lists the entries of a cache index with %s as blobs", (_name, manifests) => {
    const manifest = parseManifest(encode({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests }));
    expect(isBuildkitCacheIndex(manifest)).toBe(true);
    const children = manifestChildren(manifest);
    expect(children.map((c) => c.descriptor)).toEqual(manifests);
    expect(children.every((c) => c.kind === "blob" && c.role === "child")).toBe(true);
  });

  it("keeps manifest entries of a mixed index as manifests", () => {
    const manifest = parseManifest(
      encode({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [AMD64, cacheConfig] }),
    );
    expect(isBuildkitCacheIndex(manifest)).toBe(true);
    expect(manifestChildren(manifest).map((c) => c.kind)).toEqual(["manifest", "blob"]);
  });

  it.each<[string, Record<string, unknown>]>([
    ["an image manifest", ociImage],
    ["an empty index", { ...ociIndex, manifests: [] }],
  ])("is false for %s", (_name, doc) => {
    expect(isBuildkitCacheIndex(parseManifest(encode(doc)))).toBe(false);
  });
});

describe("parseManifest: invalid manifests", () => {
  const text = (s: string) => new TextEncoder().encode(s);

  it.each<[string, Uint8Array, string | undefined, string]>([
    ["not JSON", text("<html>502</html>"), undefined, "not valid UTF-8 JSON"],
    ["invalid UTF-8", new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d]), undefined, "not valid UTF-8 JSON"],
    ["a JSON array", text("[]"), undefined, "not a JSON object"],
    ["a JSON string", text('"x"'), undefined, "not a JSON object"],
    ["schema 1 by schemaVersion", encode({ schemaVersion: 1, name: "a", tag: "b", fsLayers: [] }), undefined, "Docker schema 1 manifests are not supported"],
    ["schema 1 by field", encode({ ...ociImage, mediaType: MEDIA_TYPES.dockerManifestV1Signed }), undefined, "Docker schema 1 manifests"],
    ["schema 1 by Content-Type", encode(withoutMediaType(ociImage)), MEDIA_TYPES.dockerManifestV1, "Docker schema 1 manifests"],
    ["schemaVersion 3", encode({ ...ociImage, schemaVersion: 3 }), undefined, "schemaVersion must be 2, not 3"],
    ["unknown mediaType field", encode({ ...ociImage, mediaType: MEDIA_TYPES.ociConfig }), undefined, `unsupported manifest media type "${MEDIA_TYPES.ociConfig}" in mediaType field`],
    ["non-string mediaType", encode({ ...ociImage, mediaType: 7 }), undefined, "mediaType must be a string"],
    ["no recognisable shape", encode({ schemaVersion: 2 }), undefined, "cannot tell the manifest type"],
    ["index without manifests", encode({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, layers: [] }), undefined, 'must have a "manifests" array'],
    ["image without config", encode({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, layers: [LAYER] }), undefined, 'must have a "config" descriptor'],
    ["layers not an array", encode({ ...ociImage, layers: LAYER }), undefined, "layers must be an array of descriptors"],
    ["layer not an object", encode({ ...ociImage, layers: [LAYER, "sha256:x"] }), undefined, "layers[1] must be a descriptor object"],
    ["bad layer digest", encode({ ...ociImage, layers: [{ ...LAYER, digest: "sha256:abc" }] }), undefined, 'layers[0].digest "sha256:abc" is invalid: sha256 digest must have 64 hex characters'],
    ["upper-case digest", encode({ ...ociImage, config: { ...OCI_CONFIG, digest: OCI_CONFIG.digest.toUpperCase() } }), undefined, "config.digest"],
    ["missing digest", encode({ ...ociImage, config: { mediaType: MEDIA_TYPES.ociConfig, size: 1 } }), undefined, "config.digest must be a string"],
    ["negative size", encode({ ...ociImage, layers: [LAYER, { ...LAYER, size: -1 }] }), undefined, "layers[1].size must be a non-negative integer, not -1"],
    ["fractional size", encode({ ...ociImage, layers: [{ ...LAYER, size: 1.5 }] }), undefined, "layers[0].size must be a non-negative integer, not 1.5"],
    ["string size", encode({ ...ociImage, layers: [{ ...LAYER, size: "12" }] }), undefined, 'layers[0].size must be a non-negative integer, not "12"'],
    ["missing mediaType", encode({ ...ociImage, layers: [{ digest: LAYER.digest, size: 1 }] }), undefined, "layers[0].mediaType must be a non-empty string"],
    ["bad index child", encode({ ...ociIndex, manifests: [AMD64, { ...ARM64, size: -5 }] }), undefined, "manifests[1].size"],
    ["platform without os", encode({ ...ociIndex, manifests: [{ ...AMD64, platform: { architecture: "amd64" } }] }), undefined, "manifests[0].platform.os must be a string"],
    ["non-string annotation", encode({ ...ociImage, annotations: { a: 1 } }), undefined, "annotations must map strings to strings"],
    ["non-string urls", encode({ ...ociImage, layers: [{ ...LAYER, urls: [1] }] }), undefined, "layers[0].urls must be an array of strings"],
    ["bad subject", encode({ ...ociImage, subject: { ...SUBJECT, digest: "md5:00" } }), undefined, 'subject.digest "md5:00" is invalid: unsupported digest algorithm'],
    ["blobs not an array", encode({ mediaType: MEDIA_TYPES.ociArtifactManifest, blobs: {} }), undefined, "blobs must be an array of descriptors"],
  ])("rejects %s, naming the repository, digest and problem", (_name, bytes, contentType, problem) => {
    const err = invalid(() => parseManifest(bytes, contentType, { repository: "team/app" }));
    const digest = sha256Digest(bytes);
    expect(err.message).toContain(problem);
    expect(err.message).toContain(`team/app@${digest}`);
    expect(err).toMatchObject({ repository: "team/app", digest });
  });
});

describe("referrersFallbackTag", () => {
  it.each<[string, string]>([
    [dig("ab"), `sha256-${"ab".repeat(32)}`],
    [`sha512:${"cd".repeat(64)}`, `sha512-${"cd".repeat(32)}`],
  ])("%s → %s", (digest, tag) => {
    expect(referrersFallbackTag(digest)).toBe(tag);
  });

  it("rejects an invalid digest", () => {
    expect(() => referrersFallbackTag("sha256:zz")).toThrow(InvalidReferenceError);
  });
});

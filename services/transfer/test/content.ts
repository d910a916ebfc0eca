/** Small OCI and Docker content built in memory and pushed to a real registry, for the tests. */
import { createHash, randomBytes } from "node:crypto";
import type { RegistryClient } from "@georep/registry-client";

export const sha256 = (data: Uint8Array): string => `sha256:${createHash("sha256").update(data).digest("hex")}`;

export const MT = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociEmpty: "application/vnd.oci.empty.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  buildkitCacheConfig: "application/vnd.buildkit.cacheconfig.v0",
} as const;

export interface Blob {
  readonly bytes: Buffer;
  readonly digest: string;
  readonly size: number;
  readonly mediaType: string;
}

export interface Pushed {
  readonly raw: Buffer;
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  /** Every blob the manifest (tree) references. */
  readonly blobs: readonly Blob[];
}

export function blob(bytes: Buffer, mediaType: string = MT.ociLayer): Blob {
  return { bytes, digest: sha256(bytes), size: bytes.length, mediaType };
}

export const descriptor = (b: { mediaType: string; digest: string; size: number }) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size });

function manifest(doc: unknown, mediaType: string, blobs: readonly Blob[]): Pushed {
  // Unusual whitespace on purpose: digests are of these exact bytes, never a re-serialisation.
  const raw = Buffer.from(`${JSON.stringify(doc, null, 1)}\n`);
  return { raw, digest: sha256(raw), mediaType, size: raw.length, blobs };
}

/** An image manifest: OCI by default, Docker schema 2 with `docker`; `layers` random layers (or the given ones). */
export function image(options: { docker?: boolean; layers?: readonly Blob[]; layerCount?: number; layerSize?: number; architecture?: string; omitMediaType?: boolean } = {}): Pushed {
  const docker = options.docker ?? false;
  const config = blob(Buffer.from(JSON.stringify({ architecture: options.architecture ?? "amd64", os: "linux", salt: randomBytes(8).toString("hex") })), docker ? MT.dockerConfig : MT.ociConfig);
  const layers = options.layers ?? Array.from({ length: options.layerCount ?? 2 }, () => blob(randomBytes(options.layerSize ?? 2048), docker ? MT.dockerLayer : MT.ociLayer));
  const mediaType = docker ? MT.dockerManifest : MT.ociManifest;
  const doc = {
    schemaVersion: 2,
    ...(options.omitMediaType === true ? {} : { mediaType }),
    config: descriptor(config),
    layers: layers.map(descriptor),
  };
  return manifest(doc, mediaType, [config, ...layers]);
}

/** An index (OCI, or a Docker manifest list) over `children`, one platform each. */
export function index(children: readonly Pushed[], architectures: readonly string[], options: { docker?: boolean } = {}): Pushed {
  const mediaType = options.docker === true ? MT.dockerList : MT.ociIndex;
  const doc = {
    schemaVersion: 2,
    mediaType,
    manifests: children.map((c, i) => ({ ...descriptor(c), platform: { architecture: architectures[i] ?? "amd64", os: "linux" } })),
  };
  return manifest(doc, mediaType, children.flatMap((c) => c.blobs));
}

/** An OCI artifact: the empty config, `layers` (possibly none), an `artifactType`, and a `subject`. */
export function artifact(options: { artifactType: string; layers?: readonly Blob[]; subject?: Pushed; annotations?: Record<string, string> }): Pushed {
  const empty = blob(Buffer.from("{}"), MT.ociEmpty);
  const layers = options.layers ?? [];
  const doc = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    artifactType: options.artifactType,
    config: descriptor(empty),
    layers: layers.map(descriptor),
    ...(options.subject === undefined ? {} : { subject: descriptor(options.subject) }),
    ...(options.annotations === undefined ? {} : { annotations: options.annotations }),
  };
  return manifest(doc, MT.ociManifest, [empty, ...layers]);
}

/** The referrers fallback index (distribution-spec "Referrers Tag Schema") listing `referrers`. */
export function referrersIndex(referrers: readonly (Pushed & { artifactType: string })[]): Pushed {
  const doc = {
    schemaVersion: 2,
    mediaType: MT.ociIndex,
    manifests: referrers.map((r) => ({ ...descriptor(r), artifactType: r.artifactType })),
  };
  return manifest(doc, MT.ociIndex, []);
}

/** A BuildKit registry cache: an OCI index whose entries are blobs (layers and the cache config). */
export function buildkitCache(): Pushed {
  const layer = blob(randomBytes(1024), MT.ociLayer);
  const config = blob(Buffer.from(JSON.stringify({ layers: [{ blob: layer.digest }], salt: randomBytes(4).toString("hex") })), MT.buildkitCacheConfig);
  const doc = { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [descriptor(layer), descriptor(config)] };
  return manifest(doc, MT.ociIndex, [layer, config]);
}

/** `sha256-<hex>` of a digest (the referrers fallback tag, and cosign's `.sig`/`.att` prefix). */
export const digestTag = (digest: string): string => digest.replace(":", "-");

/** Pushes blobs, then the manifest by digest, then each tag. Children of an index must be pushed first (see {@link pushTree}). */
export async function push(client: RegistryClient, repository: string, m: Pushed, tags: readonly string[] = []): Promise<void> {
  for (const b of m.blobs) if ((await client.headBlob(repository, b.digest)) === undefined) await client.uploadBlob(repository, b, b.bytes);
  await client.putManifest(repository, m.digest, m);
  for (const tag of tags) await client.putManifest(repository, tag, m);
}

/** Pushes an index's children, then the index under `tags`. */
export async function pushTree(client: RegistryClient, repository: string, top: Pushed, children: readonly Pushed[], tags: readonly string[]): Promise<void> {
  for (const child of children) await push(client, repository, child);
  await push(client, repository, { ...top, blobs: [] }, tags);
}

/** Tag → digest of a repository as the registry reports it (HEAD with the full Accept). */
export async function tagMap(client: RegistryClient, repository: string): Promise<Map<string, string>> {
  let tags: string[];
  try {
    tags = await client.listTags(repository);
  } catch {
    return new Map();
  }
  const map = new Map<string, string>();
  for (const tag of tags) {
    const head = await client.headManifest(repository, tag);
    if (head !== undefined) map.set(tag, head.digest);
  }
  return map;
}

/** The checksum of DESIGN.md computed independently of the service: sha256 of sorted "tag digest\n" lines. */
export function checksumOf(tags: ReadonlyMap<string, string>): string {
  const text = [...tags]
    .map(([t, d]) => `${t} ${d}\n`)
    .sort()
    .join("");
  return `sha256:${createHash("sha256").update(text).digest("hex")}`;
}

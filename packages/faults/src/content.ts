/**
 * What the fault tests push to the primary: small images, multi-platform
 * indexes and large images whose layers are streamed from a generator (the
 * test process never holds a layer in memory).
 */
import { createCipheriv, createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import type { RegistryClient } from "@georep/registry-client";

export const MEDIA_TYPES = {
  manifest: "application/vnd.oci.image.manifest.v1+json",
  index: "application/vnd.oci.image.index.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar",
} as const;

export const MiB = 1024 * 1024;

/** One tag pushed to the primary, and what it must point at everywhere. */
export interface PushedTag {
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
  /** `Date.now()` when the primary acknowledged the tag. */
  readonly pushedAt: number;
}

export const sha256 = (bytes: Uint8Array): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

interface Blob {
  readonly digest: string;
  readonly size: number;
}

async function pushBytes(client: RegistryClient, repository: string, bytes: Buffer): Promise<Blob> {
  const blob = { digest: sha256(bytes), size: bytes.length };
  await client.uploadBlob(repository, blob, bytes);
  return blob;
}

/** Pushes a config and one random layer, and the image manifest by `reference` (a tag, or its own digest when omitted). */
async function pushImageManifest(client: RegistryClient, repository: string, reference: string | undefined, options: { architecture?: string; layerBytes?: number } = {}) {
  const config = await pushBytes(client, repository, Buffer.from(JSON.stringify({ architecture: options.architecture ?? "amd64", os: "linux", salt: randomBytes(8).toString("hex") })));
  const layer = await pushBytes(client, repository, randomBytes(options.layerBytes ?? 4096));
  const raw = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.manifest,
      config: { mediaType: MEDIA_TYPES.config, ...config },
      layers: [{ mediaType: MEDIA_TYPES.layer, ...layer }],
    }),
  );
  const digest = sha256(raw);
  await client.putManifest(repository, reference ?? digest, { raw, mediaType: MEDIA_TYPES.manifest });
  return { digest, size: raw.length };
}

/** A small image (config and one random layer) pushed by tag only: one push event naming the tag. */
export async function pushImage(client: RegistryClient, repository: string, tag: string): Promise<PushedTag> {
  const { digest } = await pushImageManifest(client, repository, tag);
  return { repository, tag, digest, pushedAt: Date.now() };
}

/** Two platform images pushed by digest, then an OCI index naming both, pushed by tag. */
export async function pushIndex(client: RegistryClient, repository: string, tag: string): Promise<PushedTag> {
  const platforms = [];
  for (const architecture of ["amd64", "arm64"]) {
    const child = await pushImageManifest(client, repository, undefined, { architecture });
    platforms.push({ mediaType: MEDIA_TYPES.manifest, ...child, platform: { architecture, os: "linux" } });
  }
  const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: platforms }));
  await client.putManifest(repository, tag, { raw, mediaType: MEDIA_TYPES.index });
  return { repository, tag, digest: sha256(raw), pushedAt: Date.now() };
}

/**
 * `size` random-looking bytes (an AES-CTR keystream) from a generator: the
 * same key gives the same bytes again, so a layer is hashed in one pass and
 * uploaded in a second without being kept.
 */
export function keystream(size: number, key: Buffer, iv: Buffer): Readable {
  async function* generate() {
    const cipher = createCipheriv("aes-128-ctr", key, iv);
    const zeros = Buffer.alloc(MiB);
    for (let left = size; left > 0; ) {
      const n = Math.min(left, MiB);
      left -= n;
      yield cipher.update(zeros.subarray(0, n));
    }
  }
  return Readable.from(generate(), { objectMode: false });
}

/** A large image: `layers` layers of random data totalling `totalBytes`, each streamed twice (hash, then upload). */
export async function pushLargeImage(client: RegistryClient, repository: string, tag: string, totalBytes: number, layers = 4): Promise<PushedTag> {
  const descriptors = [];
  for (let i = 0; i < layers; i++) {
    const size = Math.floor(totalBytes / layers);
    const key = randomBytes(16);
    const iv = randomBytes(16);
    const hash = createHash("sha256");
    for await (const chunk of keystream(size, key, iv)) hash.update(chunk as Buffer);
    const layer = { digest: `sha256:${hash.digest("hex")}`, size };
    await client.uploadBlob(repository, layer, keystream(size, key, iv));
    descriptors.push({ mediaType: MEDIA_TYPES.layer, ...layer });
  }
  const config = await pushBytes(client, repository, Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", salt: randomBytes(8).toString("hex") })));
  const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.manifest, config: { mediaType: MEDIA_TYPES.config, ...config }, layers: descriptors }));
  await client.putManifest(repository, tag, { raw, mediaType: MEDIA_TYPES.manifest });
  return { repository, tag, digest: sha256(raw), pushedAt: Date.now() };
}

/** What a burst pushes: `repositories` repositories under `prefix`, `tags` tags each; every `indexEvery`-th push is an index. */
export interface BurstOptions {
  readonly prefix: string;
  readonly repositories: number;
  readonly tags: number;
  readonly indexEvery?: number;
  /** Pushes in flight at once (default 4). */
  readonly concurrency?: number;
  /** Pause between the pushes of one lane, to spread the burst over time (default 0). */
  readonly pauseMs?: number;
  /**
   * A push that fails is tried again (the primary registry may be restarting),
   * until this deadline passes (default: no retry).
   */
  readonly retryForMs?: number;
  /** Called after every push (for tests that act mid-burst). */
  readonly onPushed?: (pushed: PushedTag, count: number) => void;
}

/** Names of a burst's repositories. */
export const burstRepositories = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}/app-${String(i).padStart(2, "0")}`);

/**
 * Pushes a burst: the tags of every repository, round-robin over the
 * repositories, `concurrency` at a time. Resolves with every tag pushed.
 */
export async function pushBurst(client: RegistryClient, options: BurstOptions): Promise<PushedTag[]> {
  const work: { repository: string; tag: string; index: boolean }[] = [];
  const repositories = burstRepositories(options.prefix, options.repositories);
  let n = 0;
  for (let t = 0; t < options.tags; t++) {
    for (const repository of repositories) {
      n++;
      work.push({ repository, tag: `v${t + 1}`, index: options.indexEvery !== undefined && n % options.indexEvery === 0 });
    }
  }
  const pushed: PushedTag[] = [];
  let next = 0;
  const lane = async () => {
    while (next < work.length) {
      const item = work[next++]!;
      const deadline = Date.now() + (options.retryForMs ?? 0);
      for (;;) {
        try {
          const result = await (item.index ? pushIndex(client, item.repository, item.tag) : pushImage(client, item.repository, item.tag));
          pushed.push(result);
          options.onPushed?.(result, pushed.length);
          break;
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await sleep(250);
        }
      }
      if (options.pauseMs !== undefined && options.pauseMs > 0) await sleep(options.pauseMs);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 4 }, lane));
  return pushed;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

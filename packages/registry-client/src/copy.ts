/**
 * Copying content between registries: blobs stream from one to the other
 * with constant memory and the digest checked on the way; manifests are
 * pushed as their exact bytes, children before parents, the tag last.
 */
import type { RegistryClient } from "./client.js";
import { RegistryError } from "./errors.js";
import { manifestChildren } from "./manifest/children.js";
import type { Descriptor, Manifest } from "./manifest/manifest.js";

/** One end of a copy: a client and a repository on it. */
export interface CopyEnd {
  readonly client: RegistryClient;
  readonly repository: string;
}

export interface CopyBlobOptions {
  /** Repositories on the target that may already hold the blob (tried with a cross-repository mount). */
  readonly mountFrom?: readonly string[];
  /** PATCH size for the upload; default: one request for the whole blob. */
  readonly chunkSize?: number;
  readonly resumeAttempts?: number;
  /** Largest blob uploaded in one PUT with its bytes (see {@link UploadOptions.monolithicMaxBytes}). */
  readonly monolithicMaxBytes?: number;
  /**
   * Skip the HEAD on the target: the caller believes the target lacks the
   * blob (a mount or an upload of a blob it has anyway only costs requests).
   */
  readonly skipHead?: boolean;
}

export type CopyBlobAction = "skipped" | "mounted" | "uploaded";

/** Bytes each action moved, for metrics. */
export interface CopyBlobResult {
  readonly action: CopyBlobAction;
  readonly bytes: number;
}

/**
 * Copies one blob: nothing when the target has it (HEAD), a mount when a
 * sibling repository has it, else a streamed upload from a ranged GET on the
 * source (resumed from the target's offset after a failure).
 */
export async function copyBlob(from: CopyEnd, to: CopyEnd, descriptor: Pick<Descriptor, "digest" | "size">, options: CopyBlobOptions = {}): Promise<CopyBlobResult> {
  if (options.skipHead !== true) {
    const existing = await to.client.headBlob(to.repository, descriptor.digest);
    if (existing !== undefined && (existing.size === descriptor.size || existing.size < 0)) return { action: "skipped", bytes: 0 };
  }
  let location: string | undefined;
  for (const sibling of options.mountFrom ?? []) {
    if (sibling === to.repository) continue;
    const mount = await to.client.mountBlob(to.repository, descriptor.digest, sibling);
    if (mount.mounted) return { action: "mounted", bytes: 0 };
    // 202: the registry opened an upload session instead; use it rather than leak it.
    if (location !== undefined) await to.client.cancelUpload(to.repository, location);
    location = mount.location;
  }
  await to.client.uploadBlob(
    to.repository,
    descriptor,
    async (offset) => (await from.client.getBlob(from.repository, descriptor.digest, { offset })).stream,
    {
      ...(location === undefined ? {} : { location }),
      ...(options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize }),
      ...(options.resumeAttempts === undefined ? {} : { resumeAttempts: options.resumeAttempts }),
      ...(options.monolithicMaxBytes === undefined ? {} : { monolithicMaxBytes: options.monolithicMaxBytes }),
    },
  );
  return { action: "uploaded", bytes: descriptor.size };
}

export interface CopyImageOptions extends CopyBlobOptions {
  /** Tag to set on the target after everything is there; none copies by digest only. */
  readonly tag?: string;
  /** Blobs copied at once. */
  readonly concurrency?: number;
  /** Copy the subject of a referrer too (default false: the subject is someone else's image). */
  readonly withSubject?: boolean;
}

export interface CopyImageResult {
  readonly digest: string;
  readonly manifests: number;
  readonly blobs: Readonly<Record<CopyBlobAction, number>>;
  readonly bytes: number;
}

/** Runs `work` over `items` with at most `limit` at once; the first failure rejects after the rest settle. */
async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: Error | undefined;
  const worker = async () => {
    while (next < items.length && failure === undefined) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failure ??= error instanceof Error ? error : new Error(`copy failed: ${JSON.stringify(error)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure !== undefined) throw failure;
}

/**
 * Copies the manifest tree under `reference` depth first: blobs, then child
 * manifests by digest, then the manifest itself by digest, then the tag.
 * Index children of every platform are copied; artifacts with no layers too.
 */
export async function copyImage(from: CopyEnd, to: CopyEnd, reference: string, options: CopyImageOptions = {}): Promise<CopyImageResult> {
  const counts: Record<CopyBlobAction, number> = { skipped: 0, mounted: 0, uploaded: 0 };
  let bytes = 0;
  let manifests = 0;
  const doneBlobs = new Set<string>();
  const doneManifests = new Set<string>();

  async function copyTree(manifest: Manifest): Promise<void> {
    if (doneManifests.has(manifest.digest)) return;
    const children = manifestChildren(manifest).filter((c) => c.role !== "subject" || options.withSubject === true);
    const blobs = children.filter((c) => c.kind === "blob" && !doneBlobs.has(c.descriptor.digest));
    const unique = [...new Map(blobs.map((c) => [c.descriptor.digest, c.descriptor])).values()];
    for (const d of unique) doneBlobs.add(d.digest);
    await eachLimited(unique, options.concurrency ?? 4, async (descriptor) => {
      const result = await copyBlob(from, to, descriptor, options);
      counts[result.action]++;
      bytes += result.bytes;
    });
    for (const child of children.filter((c) => c.kind === "manifest")) {
      if (doneManifests.has(child.descriptor.digest)) continue;
      const childManifest = await from.client.getManifest(from.repository, child.descriptor.digest);
      await copyTree(childManifest);
    }
    if ((await to.client.headManifest(to.repository, manifest.digest)) === undefined) {
      await to.client.putManifest(to.repository, manifest.digest, manifest);
    }
    doneManifests.add(manifest.digest);
    manifests++;
  }

  const root = await from.client.getManifest(from.repository, reference);
  await copyTree(root);
  if (options.tag !== undefined) {
    const pushed = await to.client.putManifest(to.repository, options.tag, root);
    if (pushed !== root.digest) {
      throw new RegistryError("REGISTRY_ERR_DIGEST_MISMATCH", `${to.repository}:${options.tag}: target stored ${pushed}, expected ${root.digest}`, { repository: to.repository, digest: root.digest });
    }
  }
  return { digest: root.digest, manifests, blobs: counts, bytes };
}

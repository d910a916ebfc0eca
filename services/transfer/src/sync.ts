/**
 * One sync of one repository (DESIGN.md, "One sync of one repository"):
 * make the secondary serve exactly the primary's tags, complete, and prove it.
 *
 * 1. List every tag on both sides and resolve each to its digest (HEAD with
 *    the full `Accept`, done by the registry client).
 * 2. For each tag that is missing or points elsewhere, copy the manifest tree
 *    depth first: blobs (HEAD-skip, mount from a sibling repository known to
 *    hold them, else a streamed upload verified against its digest), then
 *    child manifests by digest, then the manifest by digest, its referrers,
 *    and the tag last. One failing tag does not stop the others, but fails
 *    the sync with every failing tag named.
 * 3. Remove the tags the primary no longer has; delete a manifest digest only
 *    when no primary tag points at it (Distribution 2.8 cannot untag: a tag
 *    sharing its digest with a kept tag is reported as unremovable).
 * 4. Verify: the checksum of the sorted `tag digest` lines is equal on both
 *    sides, and every tagged manifest on the secondary hashes to its digest.
 */
import { createHash } from "node:crypto";
import {
  AuthError,
  InvalidManifestError,
  OCI_ERROR_CODES,
  RegistryHttpError,
  copyBlob,
  isManifestMediaType,
  manifestChildren,
  repositoryScope,
} from "@georep/registry-client";
import type { CopyBlobAction, Descriptor, Manifest, Referrers, RegistryClient } from "@georep/registry-client";
import { NO_BLOB_PLACES, blobCopyUnderWay, blobPlacesMany, forgetRepositoryBlobs, recordBlobs } from "@georep/tracking";
import type { AwaitedTag, BlobPlaces, IncrementalBasis, TrackingDb } from "@georep/tracking";
import { TRANSFER_ERROR_CODES, TagsFailedError, TransferError, describeError } from "./errors.js";
import type { TagFailure } from "./errors.js";
import { createLimiter, createTurnLoader, mapLimited, settleAll } from "./limit.js";

/** Tags copied at once within one repository (blobs are limited separately). */
export const DEFAULT_TAG_CONCURRENCY = 4;
/** Tags resolved (HEAD) at once on each side. */
export const DEFAULT_RESOLVE_CONCURRENCY = 16;
/** Copy-and-verify rounds before giving up on a primary that keeps changing during the sync. */
export const DEFAULT_MAX_PASSES = 3;
/** Blob locations tried as mount sources per blob. */
export const MOUNT_CANDIDATES = 3;
/**
 * An event sync uploads a blob up to this size that tracking knows nowhere
 * on the secondary without asking first (HEAD): a new image's config and
 * small layers are new, and sending such a blob twice costs less than asking.
 */
export const UNASKED_UPLOAD_MAX_BYTES = 1024 * 1024;
/** How often a sync looks whether another process's copy of a blob it needs has ended. */
export const BLOB_COPY_POLL_MS = 250;

/** How a sync behaves. */
export interface SyncOptions {
  /** Blobs copied at once, across every tag of the repository. */
  readonly blobConcurrency: number;
  /** Upload PATCH size in bytes; default one request per blob. */
  readonly chunkSize?: number | undefined;
  /** Remove from the secondary what the primary no longer has (tags, manifests, the whole repository). */
  readonly deleteMissing: boolean;
  /** Default {@link DEFAULT_TAG_CONCURRENCY}. */
  readonly tagConcurrency?: number | undefined;
  /** Default {@link DEFAULT_MAX_PASSES}. */
  readonly maxPasses?: number | undefined;
  /**
   * Which manifests verification reads back byte for byte from the
   * secondary: "all" (default; backfill, retries, resyncs) or "copied", only
   * those this sync pushed or tagged (event-driven syncs: the rest was read
   * back by an earlier sync, and the next full one reads it again), or "none"
   * (every manifest this sync pushed was accepted under the digest of the
   * exact bytes sent). Tags and their digests are compared on both sides
   * whatever the mode.
   */
  readonly verifyContent?: "all" | "copied" | "none" | undefined;
  /**
   * Trust the tag map the last sync verified, resolving (HEAD) on the primary
   * only the tags named by events since then and tags it did not know, and on
   * the secondary only tags this sync changed or did not know. The cost of an
   * event sync then no longer grows with the number of tags. Anything the
   * trust would miss (a lost notification, a change made behind georep's
   * back) is found by the next full sync (re-verification).
   */
  readonly incremental?: IncrementalBasis | undefined;
  /**
   * Tags push events named, with the digest each event said. Distribution
   * sends a push notification before it links the tag, so a fast sync can
   * find the tag missing or still on its old digest: such tags come back in
   * {@link SyncResult.unconfirmed} for a re-check, while the event is younger
   * than {@link SyncOptions.awaitWindowMs}.
   */
  readonly awaited?: Readonly<Record<string, AwaitedTag>> | undefined;
  /** How long after its push an event's tag is re-checked at most (default {@link DEFAULT_AWAIT_WINDOW_MS}). */
  readonly awaitWindowMs?: number | undefined;
  /**
   * georep never synced this repository (tracking has no success nor failure
   * of it): take the secondary as empty instead of listing it first. The
   * verification lists it anyway; should it have held tags after all (put
   * there by something else), the sync takes another pass with a real
   * listing, which removes what the primary does not have.
   */
  readonly assumeSecondaryEmpty?: boolean | undefined;
}

/** Default of {@link SyncOptions.awaitWindowMs}: a registry links the tag within milliseconds of notifying; a minute is generous. */
export const DEFAULT_AWAIT_WINDOW_MS = 60_000;

/** What a sync reports while it works (for logs and heartbeats). */
export type SyncProgress =
  | { readonly type: "blob"; readonly digest: string; readonly action: CopyBlobAction; readonly bytes: number }
  | { readonly type: "manifest"; readonly digest: string; readonly mediaType: string }
  | { readonly type: "tag"; readonly tag: string; readonly digest: string }
  | { readonly type: "delete"; readonly tag?: string; readonly digest?: string }
  | { readonly type: "repair"; readonly digest: string; readonly tags: readonly string[] };

/** Everything {@link syncRepository} needs. */
export interface SyncParams {
  /** The primary registry (only read). */
  readonly primary: RegistryClient;
  /** The secondary registry (written). */
  readonly secondary: RegistryClient;
  readonly repository: string;
  /** The tracking database: which secondary repositories hold which blob (mount sources). */
  readonly db: TrackingDb;
  readonly options: SyncOptions;
  readonly onProgress?: (event: SyncProgress) => void;
  /** Stops the sync between operations (a lost lease, shutdown); it then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /**
   * Blob copies under way in this process, by digest, shared by its
   * concurrent syncs: a sync that needs a blob another one is copying waits
   * and mounts it from there instead of copying it again.
   */
  readonly inFlightBlobs?: InFlightBlobs;
}

/** See {@link SyncParams.inFlightBlobs}. */
export type InFlightBlobs = Map<string, { readonly repository: string; readonly done: Promise<void> }>;

/** How long a process trusts what it learnt about a primary's referrers API (a registry upgrade is seen after this). */
export const REFERRERS_API_TTL_MS = 5 * 60_000;
const referrersApiByRegistry = new Map<string, { readonly has: boolean; readonly at: number }>();

function knownReferrersApi(registry: string): boolean | undefined {
  const known = referrersApiByRegistry.get(registry);
  return known !== undefined && Date.now() - known.at < REFERRERS_API_TTL_MS ? known.has : undefined;
}

function rememberReferrersApi(registry: string, has: boolean): void {
  referrersApiByRegistry.set(registry, { has, at: Date.now() });
}

/** The outcome of a successful sync. */
export interface SyncResult {
  readonly repository: string;
  readonly tags: {
    /** Tags set on the secondary (missing or pointing elsewhere before). */
    readonly copied: readonly string[];
    /** Tags already right. */
    readonly unchanged: readonly string[];
    /** Tags removed from the secondary. */
    readonly deleted: readonly string[];
    /** Tags the primary no longer has that the secondary could not remove (they share a digest with a kept tag and the registry cannot untag). */
    readonly unremovable: readonly string[];
  };
  /** Manifests pushed to the secondary (by digest). */
  readonly manifests: number;
  /** Manifest digests deleted from the secondary. */
  readonly deletedManifests: number;
  readonly blobs: { readonly copied: number; readonly skipped: number; readonly mounted: number };
  /** Bytes uploaded to the secondary. */
  readonly bytes: number;
  /** `sha256:` of the sorted `<tag> <digest>\n` lines, equal on both sides (see {@link tagListChecksum}). */
  readonly checksum: string;
  /** The primary does not know the repository: it was removed from the secondary. */
  readonly removed: boolean;
  /** Tag → digest on the secondary after the sync (stored in tracking for the next incremental sync). */
  readonly verifiedTags: Readonly<Record<string, string>>;
  /**
   * Awaited tags (see {@link SyncOptions.awaited}) the primary did not yet show on the event's
   * digest, whose manifest the primary still has, and whose event is recent: sync again shortly.
   */
  readonly unconfirmed: Readonly<Record<string, AwaitedTag>>;
  readonly durationMs: number;
}

/**
 * The verification checksum of a tag list: `sha256:` of the lines
 * `<tag> <digest>\n` sorted (tags are ASCII, so this is byte order).
 */
export function tagListChecksum(tags: ReadonlyMap<string, string>): string {
  const lines = [...tags].map(([tag, digest]) => `${tag} ${digest}\n`).sort();
  return `sha256:${createHash("sha256").update(lines.join("")).digest("hex")}`;
}

type TagMap = Map<string, string>;

function isNameUnknown(error: unknown): error is RegistryHttpError {
  return error instanceof RegistryHttpError && !(error instanceof AuthError) && (error.ociCode === OCI_ERROR_CODES.NAME_UNKNOWN || error.status === 404);
}

/** Tags present on one side but not the other, or pointing elsewhere: for error messages. */
function differences(expected: ReadonlyMap<string, string>, actual: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  for (const [tag, digest] of expected) {
    const got = actual.get(tag);
    if (got === undefined) out.push(`"${tag}" missing`);
    else if (got !== digest) out.push(`"${tag}" is ${got}, expected ${digest}`);
  }
  for (const tag of actual.keys()) if (!expected.has(tag)) out.push(`"${tag}" unexpected`);
  return out;
}

/**
 * Syncs one repository from the primary to the secondary and verifies it.
 *
 * @returns counts, the tags copied, kept, removed and unremovable, and the checksum.
 * @throws {TransferError} `TRANSFER_ERR_PRIMARY` when the primary cannot be read (nothing is removed then),
 *   {@link TagsFailedError} naming every failing tag and its cause, `TRANSFER_ERR_VERIFICATION` when the
 *   secondary does not end up serving the primary's tags with intact manifests.
 */
export async function syncRepository(params: SyncParams): Promise<SyncResult> {
  const { primary, secondary, repository, db, options, signal, inFlightBlobs } = params;
  const incremental = options.incremental;
  const eventTags = new Set(incremental?.eventTags ?? []);
  /** The first listing of an incremental sync trusts the verified map instead of listing; later passes list. */
  let listedOnce = false;
  let secondaryListedOnce = false;
  /** The secondary was taken as empty without a listing (see {@link SyncOptions.assumeSecondaryEmpty}). */
  let assumedEmpty = false;
  const started = performance.now();
  const progress = params.onProgress ?? (() => undefined);
  const from = { client: primary, repository };
  const to = { client: secondary, repository };
  const blobLimiter = createLimiter(options.blobConcurrency);
  const tagConcurrency = options.tagConcurrency ?? DEFAULT_TAG_CONCURRENCY;
  const checkAborted = () => signal?.throwIfAborted();

  const counts = { copied: 0, skipped: 0, mounted: 0, bytes: 0, manifests: 0, deletedManifests: 0 };
  /** Tag → digest the secondary answered to this sync's push of the tag. */
  const copiedTags = new Map<string, string>();
  /** Tags set by the push of their root manifest (see {@link copyTag}). */
  const taggedByPush = new Map<string, string>();
  /** The secondary's tag map as the last verification listed it (the next incremental sync's basis). */
  let verifiedMap: TagMap = new Map();
  /** Manifests this sync pushed or tagged (what "copied" verification reads back). */
  const touchedDigests = new Set<string>();
  const deletedTags = new Set<string>();
  const unremovable = new Set<string>();
  /** Blobs known to be in the secondary repository, not yet recorded in tracking. */
  const storedBlobs = new Set<string>();
  /** Blobs this sync recorded in tracking already. */
  const recordedBlobs = new Set<string>();
  /** Where tracking places blobs: the lookups of one turn (a manifest's blobs) are one query. */
  const placesOf = createTurnLoader<string, BlobPlaces>(
    (digests) => blobPlacesMany(db, digests, repository, MOUNT_CANDIDATES),
    () => NO_BLOB_PLACES,
  );

  // Memos shared by every tag (and pass) of this sync: each blob and manifest is handled once.
  const blobCopies = new Map<string, Promise<void>>();
  const manifestCopies = new Map<string, Promise<void>>();
  const primaryManifests = new Map<string, Promise<Manifest>>();
  const referrerCopies = new Map<string, Promise<void>>();
  /** Whether the primary has the OCI 1.1 referrers API; found out on first use. */
  // Whether the primary has the referrers API, as a recent sync of this process learnt it.
  let referrersApi: boolean | undefined = knownReferrersApi(primary.url);
  /** The first referrers request, while it runs: the others wait for it to learn whether the API exists. */
  let referrersProbe: Promise<void> | undefined;
  /** Whether the secondary can delete a tag alone (OCI 1.1 / Distribution 3); found out on first use. */
  let tagDeletion: boolean | undefined;

  /** The first listing found no tag on the secondary: its manifests are new there. */
  let secondaryWasEmpty = false;
  /** Event syncs trust tracking's blob locations and ask the secondary less (see copyBlobOnce). */
  const trustLocations = incremental !== undefined;
  /** The digests of the last verified tag map (an incremental sync's): what the secondary holds. */
  const verifiedDigests = incremental === undefined ? undefined : new Set(Object.values(incremental.verifiedTags));

  const fetchPrimary = (digest: string): Promise<Manifest> => {
    let pending = primaryManifests.get(digest);
    if (pending === undefined) {
      pending = primary.getManifest(repository, digest);
      primaryManifests.set(digest, pending);
      // A failed fetch is not cached beyond this sync's memo of the failure itself.
      pending.catch(() => undefined);
    }
    return pending;
  };

  /** The digest of `tag` on the primary (undefined: no such tag), its manifest kept for the copy. */
  const fetchPrimaryTag = async (tag: string): Promise<string | undefined> => {
    let manifest: Manifest;
    try {
      manifest = await primary.getManifest(repository, tag);
    } catch (error) {
      if (error instanceof RegistryHttpError && !(error instanceof AuthError) && error.status === 404) return undefined;
      if (error instanceof RegistryHttpError) throw error;
      // Content the client refuses (invalid JSON, too large, wrong digest) fails this tag only, when
      // the copy fetches it again and names the problem: a HEAD tells the digest meanwhile.
      return (await primary.headManifest(repository, tag))?.digest;
    }
    if (!primaryManifests.has(manifest.digest)) primaryManifests.set(manifest.digest, Promise.resolve(manifest));
    return manifest.digest;
  };

  /** The primary's tags as the last listing saw them (what awaited tags are checked against). */
  let lastPrimary: TagMap | undefined;
  /** Tags the last listing of the primary could not resolve, with why (each fails only itself). */
  let unresolvedPrimary = new Map<string, unknown>();
  async function listPrimary(): Promise<TagMap | undefined> {
    lastPrimary = await listPrimaryOnce();
    return lastPrimary;
  }

  /**
   * Awaited tags the last listing did not show on their event's digest, when the
   * event is recent and the primary still has that manifest (else the tag was
   * moved on or deleted since, and newer events tell).
   */
  async function unconfirmedTags(): Promise<Record<string, AwaitedTag>> {
    const window = options.awaitWindowMs ?? DEFAULT_AWAIT_WINDOW_MS;
    const candidates = Object.entries(options.awaited ?? {}).filter(
      ([tag, { digest, at }]) => lastPrimary?.get(tag) !== digest && Date.now() - Date.parse(at) < window,
    );
    const out: Record<string, AwaitedTag> = {};
    await mapLimited(candidates, DEFAULT_RESOLVE_CONCURRENCY, async ([tag, awaited]) => {
      try {
        if ((await primary.headManifest(repository, awaited.digest)) !== undefined) out[tag] = awaited;
      } catch {
        // The primary cannot tell right now: check again later.
        out[tag] = awaited;
      }
    });
    return out;
  }

  async function listPrimaryOnce(): Promise<TagMap | undefined> {
    unresolvedPrimary = new Map();
    let tags: string[];
    if (incremental !== undefined && !listedOnce) {
      // Only tag pushes since the last verified sync (a delete would have made this sync full):
      // the tags are the verified ones plus those named, and only the named ones are resolved.
      listedOnce = true;
      tags = [...new Set([...Object.keys(incremental.verifiedTags), ...eventTags])];
      try {
        // The tags events named are read with a GET by tag: it tells the digest and brings the
        // manifest the copy needs, one request instead of a HEAD and a GET.
        return await resolve(primary, tags, (tag) => (eventTags.has(tag) ? undefined : incremental.verifiedTags[tag]), unresolvedPrimary, true);
      } catch (error) {
        throw new TransferError(TRANSFER_ERROR_CODES.primary, repository, `cannot resolve tags on the primary: ${describeError(error)}`, { cause: error });
      }
    }
    try {
      tags = await primary.listTags(repository);
    } catch (error) {
      if (isNameUnknown(error)) {
        if (error.ociCode === OCI_ERROR_CODES.NAME_UNKNOWN) return undefined;
        // A bare 404 could be a wrong URL rather than an unknown repository: only a registry that
        // answers /v2/ is believed.
        try {
          await primary.ping();
        } catch (pingError) {
          throw new TransferError(TRANSFER_ERROR_CODES.primary, repository, `cannot list tags on the primary: ${describeError(error)} (and /v2/ fails: ${describeError(pingError)})`, { cause: error });
        }
        return undefined;
      }
      throw new TransferError(TRANSFER_ERROR_CODES.primary, repository, `cannot list tags on the primary: ${describeError(error)}`, { cause: error });
    }
    try {
      // Incremental: only tags named by events since the last sync, and tags it did not know, are resolved.
      return await resolve(primary, tags, (tag) => (incremental === undefined || eventTags.has(tag) ? undefined : incremental.verifiedTags[tag]), unresolvedPrimary, secondaryWasEmpty);
    } catch (error) {
      throw new TransferError(TRANSFER_ERROR_CODES.primary, repository, `cannot resolve tags on the primary: ${describeError(error)}`, { cause: error });
    }
  }

  async function listSecondary(): Promise<TagMap> {
    if (options.assumeSecondaryEmpty === true && incremental === undefined && !secondaryListedOnce) {
      secondaryListedOnce = true;
      assumedEmpty = true;
      return new Map();
    }
    if (incremental !== undefined && !secondaryListedOnce) {
      // Before copying, the secondary is as the last sync verified it; verification lists it for real.
      secondaryListedOnce = true;
      return new Map(Object.entries(incremental.verifiedTags));
    }
    // A tag this sync pushed is where the registry's answer to the push said (the listing still
    // shows it is there, and full syncs read every manifest back); an incremental sync trusts
    // the last verified map for the others, a full sync resolves them.
    return listSecondaryTrusting((tag) => (deletedTags.has(tag) ? undefined : (copiedTags.get(tag) ?? (incremental === undefined ? undefined : incremental.verifiedTags[tag]))));
  }

  async function listSecondaryTrusting(trusted: (tag: string) => string | undefined): Promise<TagMap> {
    let tags: string[];
    try {
      tags = await secondary.listTags(repository);
    } catch (error) {
      if (isNameUnknown(error)) return new Map();
      throw new TransferError(TRANSFER_ERROR_CODES.secondary, repository, `cannot list tags on the secondary: ${describeError(error)}`, { cause: error });
    }
    try {
      return await resolve(secondary, tags, trusted);
    } catch (error) {
      throw new TransferError(TRANSFER_ERROR_CODES.secondary, repository, `cannot resolve tags on the secondary: ${describeError(error)}`, { cause: error });
    }
  }

  /**
   * Tag → digest; a tag that vanished between the listing and the HEAD is
   * left out. `trusted` gives the digest of tags that need no HEAD (an
   * incremental sync's verified map).
   */
  async function resolve(
    client: RegistryClient,
    tags: readonly string[],
    trusted: (tag: string) => string | undefined = () => undefined,
    failed?: Map<string, unknown>,
    fetch = false,
  ): Promise<TagMap> {
    const digests = await mapLimited(tags, DEFAULT_RESOLVE_CONCURRENCY, async (tag) => {
      checkAborted();
      const known = trusted(tag);
      if (known !== undefined) return known;
      try {
        if (fetch && client === primary) return await fetchPrimaryTag(tag);
        return (await client.headManifest(repository, tag))?.digest;
      } catch (error) {
        // One tag the registry cannot serve (a corrupt manifest: 500 after the retries) fails
        // that tag only; credentials, the network and everything else fail the listing.
        if (failed === undefined || !(error instanceof RegistryHttpError) || error instanceof AuthError || error.status < 500) throw error;
        failed.set(tag, error);
        return undefined;
      }
    });
    if (failed !== undefined && failed.size > 0 && failed.size === tags.length) throw failed.values().next().value;
    const map: TagMap = new Map();
    tags.forEach((tag, i) => {
      const digest = digests[i];
      if (digest !== undefined) map.set(tag, digest);
    });
    return map;
  }

  /** Waits while another process's claim on copying `digest` here is live (see `claimBlobCopy`). */
  async function waitForCopyElsewhere(digest: string): Promise<void> {
    while (await blobCopyUnderWay(db, digest, repository)) {
      checkAborted();
      await new Promise((resolve) => setTimeout(resolve, BLOB_COPY_POLL_MS));
    }
  }

  function copyBlobOnce(descriptor: Descriptor): Promise<void> {
    let pending = blobCopies.get(descriptor.digest);
    if (pending === undefined) {
      pending = blobLimiter.run(async () => {
        checkAborted();
        // Foreign (non-distributable) layers live at their `urls`; copy them only when the primary has them.
        if (descriptor.urls !== undefined && descriptor.urls.length > 0 && (await primary.headBlob(repository, descriptor.digest)) === undefined) return;
        // Another sync of this process, or the blob prefetch, may be copying the same blob right now
        // (a shared base layer at backfill, a layer announced by the primary): wait for it, then
        // mount from the repository it copied into, or find the blob here.
        // Registered before any await, so concurrent syncs see each other.
        const sibling = inFlightBlobs?.get(descriptor.digest);
        let finished = (): void => undefined;
        const mine = sibling === undefined ? { repository, done: new Promise<void>((r) => (finished = r)) } : undefined;
        if (mine !== undefined) inFlightBlobs?.set(descriptor.digest, mine);
        let result: Awaited<ReturnType<typeof copyBlob>>;
        /** Tracking already places it here and this sync believed it: nothing new to record. */
        let trustedHere = false;
        try {
          // Asked before waiting: an event sync that trusts tracking's "here" need not wait for a
          // copy of the blob into another repository (every sync of a shared layer would otherwise
          // queue behind the others, then mount what is already here).
          const places = await placesOf(descriptor.digest);
          if (trustLocations && places.here) {
            // Tracking saw it here: an event sync believes it (a manifest push refused for a missing
            // blob makes ensureManifest check every blob of that manifest for real).
            result = { action: "skipped", bytes: 0 };
            trustedHere = true;
          } else {
            // Into this repository too: the blob prefetch copies into the repository it was pushed to.
            if (sibling !== undefined) await sibling.done;
            // The prefetch of another transfer process is copying it here: wait for that copy.
            const copiedElsewhere = sibling === undefined && places.copying;
            if (copiedElsewhere) await waitForCopyElsewhere(descriptor.digest);
            const copiedHere = sibling?.repository === repository || copiedElsewhere;
            const mountFrom = [...new Set([...(sibling === undefined ? [] : [sibling.repository]), ...places.elsewhere])].filter((r) => r !== repository);
            result = await copyBlob(from, to, descriptor, {
              mountFrom,
              // A mount tells by itself whether the blob is there; a small blob tracking knows
              // nowhere is most likely new (a config, a small layer): neither needs a HEAD first.
              // After a copy into this repository, the HEAD tells whether it succeeded.
              skipHead: !copiedHere && (mountFrom.length > 0 || (!places.here && descriptor.size <= UNASKED_UPLOAD_MAX_BYTES)),
              ...(options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize }),
            });
          }
        } finally {
          finished();
          if (mine !== undefined && inFlightBlobs?.get(descriptor.digest) === mine) inFlightBlobs.delete(descriptor.digest);
        }
        // Recorded with the other blobs of its manifest once they are all there (other processes
        // then mount instead of copying again); what is not recorded then is at the end of the sync.
        if (!trustedHere) storedBlobs.add(descriptor.digest);
        if (result.action === "uploaded") counts.copied++;
        else counts[result.action]++;
        counts.bytes += result.bytes;
        progress({ type: "blob", digest: descriptor.digest, action: result.action, bytes: result.bytes });
      });
      blobCopies.set(descriptor.digest, pending);
    }
    return pending;
  }

  /**
   * Makes the manifest `digest` (and everything under it) present on the
   * secondary. A manifest the secondary already has is complete: registries
   * refuse a manifest whose blobs or children are missing, and we push
   * children first.
   */
  function ensureManifest(digest: string, tag?: string, assumeAbsent = false): Promise<void> {
    let pending = manifestCopies.get(digest);
    if (pending === undefined) {
      pending = (async () => {
        checkAborted();
        if (!assumeAbsent && (await secondary.headManifest(repository, digest)) !== undefined) return;
        const manifest = await fetchPrimary(digest);
        // The subject is someone else's image (and need not exist first); referrers are copied after their subject.
        const children = manifestChildren(manifest).filter((c) => c.role !== "subject");
        const blobs = [...new Map(children.filter((c) => c.kind === "blob").map((c) => [c.descriptor.digest, c.descriptor])).values()];
        const manifests = [...new Set(children.filter((c) => c.kind === "manifest").map((c) => c.descriptor.digest))];
        let recording: Promise<void> | undefined;
        try {
          await settleAll([...blobs.map(copyBlobOnce), ...manifests.map((d) => ensureManifest(d))]);
        } finally {
          // One statement for the blobs of this manifest, while the manifest is pushed.
          recording = flushBlobLocations().catch(() => undefined);
        }
        checkAborted();
        // With a tag, the push sets it too (the caller's tag push is then done).
        let pushed: string;
        try {
          pushed = await secondary.putManifest(repository, tag ?? digest, manifest);
        } catch (error) {
          if (!trustLocations || !(error instanceof RegistryHttpError) || error.ociCode !== "MANIFEST_BLOB_UNKNOWN") throw error;
          // A blob tracking placed here is not (garbage-collected, deleted by hand): check and copy
          // each blob of this manifest for real, then push again.
          await settleAll(
            blobs.map(async (b) => {
              await copyBlob(from, to, b, options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize });
              storedBlobs.add(b.digest);
            }),
          );
          checkAborted();
          pushed = await secondary.putManifest(repository, tag ?? digest, manifest);
        }
        await recording;
        if (pushed !== digest) {
          throw new TransferError(TRANSFER_ERROR_CODES.secondary, repository, `the secondary stored ${tag === undefined ? `manifest ${digest}` : `tag "${tag}"`} as ${pushed}, expected ${digest}`);
        }
        if (tag !== undefined) taggedByPush.set(tag, digest);
        counts.manifests++;
        touchedDigests.add(digest);
        progress({ type: "manifest", digest, mediaType: manifest.mediaType });
        await copyReferrers(digest);
      })();
      manifestCopies.set(digest, pending);
    }
    return pending;
  }

  /**
   * Copies the referrers of `digest` when the primary has the referrers API.
   * Without it, referrers live in `sha256-<hex>` fallback tags, which are
   * ordinary tags and copied as such.
   */
  function copyReferrers(digest: string): Promise<void> {
    if (referrersApi === false) return Promise.resolve();
    let pending = referrerCopies.get(digest);
    if (pending === undefined) {
      if (referrersApi === undefined && referrersProbe !== undefined) {
        const probe = referrersProbe;
        return probe
          .catch(() => {
            // The probe failed (and fails its own tag); the next caller probes again.
            if (referrersProbe === probe) referrersProbe = undefined;
          })
          .then(() => copyReferrers(digest));
      }
      pending = (async () => {
        checkAborted();
        let found: Referrers;
        try {
          found = await primary.referrers(repository, digest);
        } catch (error) {
          // The client fell back to a `sha256-<hex>` tag that is not an index: no API, and the tag is copied as it is.
          if (error instanceof InvalidManifestError) {
            referrersApi = false;
            rememberReferrersApi(primary.url, false);
            return;
          }
          throw error;
        }
        if (found.via !== "api") {
          referrersApi = false;
          rememberReferrersApi(primary.url, false);
          return;
        }
        referrersApi = true;
        rememberReferrersApi(primary.url, true);
        const referrers = found.descriptors.filter((d) => isManifestMediaType(d.mediaType)).map((d) => d.digest);
        await settleAll([...new Set(referrers)].map((d) => ensureManifest(d)));
      })();
      referrerCopies.set(digest, pending);
      if (referrersApi === undefined) referrersProbe = pending;
    }
    return pending;
  }

  /**
   * Copies one tag: its tree, its referrers, then the tag itself. When the
   * primary has no referrers API (referrers are ordinary fallback tags), a
   * root manifest the secondary lacks is pushed by the tag: its children are
   * there by then, the registry stores it under its digest and sets the tag
   * in one request.
   */
  async function copyTag(tag: string, digest: string): Promise<void> {
    // Only this call's own push counts (a repair deletes the digest, and with it the tag, first).
    taggedByPush.delete(tag);
    const byTag = referrersApi === false && !manifestCopies.has(digest);
    // An event sync copying a pushed tag to a digest the secondary's verified tags do not have:
    // the manifest is new there, no need to ask (if it is there, pushing it again is harmless).
    // Likewise when the secondary had no tag at all in the repository (a backfill's new repository).
    const assumeAbsent = secondaryWasEmpty || (eventTags.has(tag) && verifiedDigests !== undefined && !verifiedDigests.has(digest));
    await ensureManifest(digest, byTag ? tag : undefined, assumeAbsent);
    await copyReferrers(digest);
    checkAborted();
    if (taggedByPush.get(tag) !== digest) {
      const pushed = await secondary.putManifest(repository, tag, await fetchPrimary(digest));
      if (pushed !== digest) throw new TransferError(TRANSFER_ERROR_CODES.secondary, repository, `the secondary stored tag "${tag}" as ${pushed}, expected ${digest}`);
    }
    copiedTags.set(tag, digest);
    touchedDigests.add(digest);
    progress({ type: "tag", tag, digest });
  }

  /** DELETE /manifests/<tag>: "deleted", "absent" (already gone) or "unsupported" (the registry only deletes digests). */
  async function deleteTag(tag: string): Promise<"deleted" | "absent" | "unsupported"> {
    try {
      const res = await secondary.transport.send({
        method: "DELETE",
        url: `/v2/${repository}/manifests/${tag}`,
        scopes: [repositoryScope(repository, ["delete"])],
        accept: [202],
        repository,
      });
      await res.body.dump();
      return "deleted";
    } catch (error) {
      // Distribution 2.8 answers 400 DIGEST_INVALID; others 404, 405 or UNSUPPORTED. Credentials problems are real failures.
      if (!(error instanceof RegistryHttpError) || error instanceof AuthError || error.status < 400 || error.status >= 500) throw error;
      if (error.status === 404 && (await secondary.headManifest(repository, tag)) === undefined) return "absent";
      return "unsupported";
    }
  }

  async function deleteDigest(digest: string): Promise<void> {
    const deleted = await secondary.deleteManifest(repository, digest);
    manifestCopies.delete(digest);
    if (deleted) counts.deletedManifests++;
    progress({ type: "delete", digest });
  }

  /**
   * Removes the tags the primary no longer has. A digest is deleted only
   * when no primary tag points at it, nor any secondary tag the primary still
   * has (one that failed to move keeps its old content rather than none).
   */
  async function removeTags(primaryTags: TagMap, secondaryTags: TagMap, failures: TagFailure[]): Promise<void> {
    const protectedDigests = new Set(primaryTags.values());
    for (const [tag, digest] of secondaryTags) if (primaryTags.has(tag)) protectedDigests.add(digest);
    const deletedDigests = new Set<string>();
    for (const tag of [...secondaryTags.keys()].filter((t) => !primaryTags.has(t)).sort()) {
      const digest = secondaryTags.get(tag)!;
      try {
        checkAborted();
        if (tagDeletion !== false) {
          const outcome = await deleteTag(tag);
          if (outcome !== "unsupported") {
            if (outcome === "deleted") tagDeletion = true;
            deletedTags.add(tag);
            progress({ type: "delete", tag });
            continue;
          }
          tagDeletion = false;
        }
        if (protectedDigests.has(digest)) {
          unremovable.add(tag);
          continue;
        }
        if (!deletedDigests.has(digest)) {
          await deleteDigest(digest);
          deletedDigests.add(digest);
        }
        deletedTags.add(tag);
        progress({ type: "delete", tag, digest });
      } catch (error) {
        failures.push({ tag, error: new TransferError(TRANSFER_ERROR_CODES.secondary, repository, `cannot remove it from the secondary: ${describeError(error)}`, { cause: error }) });
      }
    }
  }

  /** The primary does not know the repository: delete every manifest of it here, children too. */
  async function removeRepository(secondaryTags: TagMap): Promise<void> {
    const roots = [...new Set(secondaryTags.values())];
    const children = new Set<string>();
    for (const digest of roots) {
      try {
        const manifest = await secondary.getManifest(repository, digest);
        for (const child of manifestChildren(manifest)) if (child.kind === "manifest" && child.role === "child") children.add(child.descriptor.digest);
      } catch {
        // A manifest we cannot read is still deleted; its children are left to garbage collection.
      }
    }
    const failures: TagFailure[] = [];
    for (const digest of [...roots, ...[...children].filter((d) => !roots.includes(d))]) {
      checkAborted();
      try {
        await deleteDigest(digest);
      } catch (error) {
        const tags = [...secondaryTags].filter(([, d]) => d === digest).map(([t]) => t);
        failures.push({ tag: tags.join(", ") || digest, error });
      }
    }
    if (failures.length > 0) throw new TagsFailedError(repository, failures, secondaryTags.size);
    for (const tag of secondaryTags.keys()) deletedTags.add(tag);
    await forgetRepositoryBlobs(db, repository);
  }

  /** Records the blobs known here that this sync did not record yet; on failure they stay to record. */
  async function flushBlobLocations(): Promise<void> {
    const digests = [...storedBlobs].filter((d) => !recordedBlobs.has(d));
    storedBlobs.clear();
    if (digests.length === 0) return;
    for (const d of digests) recordedBlobs.add(d);
    try {
      await recordBlobs(db, repository, digests);
    } catch (error) {
      for (const d of digests) {
        recordedBlobs.delete(d);
        storedBlobs.add(d);
      }
      throw error;
    }
  }

  /**
   * Re-lists the secondary and compares it with the primary's tags as this
   * pass listed them (tags the secondary cannot remove left out). "ok": equal,
   * with the digests whose manifest on the secondary does not hash to its
   * digest; "changed": they differ because the primary moved on meanwhile
   * (checked by listing it again only then).
   */
  async function verify(synced: TagMap): Promise<{ kind: "ok"; checksum: string; corrupt: Map<string, string> } | { kind: "changed" }> {
    // The secondary is compared with the primary as this pass listed it: a change on the
    // primary since then came with its own event (a newer generation, so another sync), or is
    // found by the next re-verification; listing the primary again would double the cost.
    const secondaryAll = await listSecondary();
    verifiedMap = secondaryAll;
    const secondaryNow = new Map([...secondaryAll].filter(([tag]) => !unremovable.has(tag)));
    const sideChecksum = tagListChecksum(secondaryNow);
    if (tagListChecksum(synced) !== sideChecksum && assumedEmpty) {
      // It was not empty: another pass, with the secondary listed, makes it equal.
      assumedEmpty = false;
      return { kind: "changed" };
    }
    if (tagListChecksum(synced) !== sideChecksum) {
      const primaryNow = await listPrimary();
      if (primaryNow !== undefined && tagListChecksum(primaryNow) !== tagListChecksum(synced)) return { kind: "changed" };
      throw new TransferError(
        TRANSFER_ERROR_CODES.verification,
        repository,
        `the secondary's tags differ from the primary's after the copy: ${differences(synced, secondaryNow).join("; ")}`,
      );
    }
    // HEAD answers with the digest the registry filed the manifest under; only the bytes prove it.
    const corrupt = new Map<string, string>();
    const mode = options.verifyContent ?? "all";
    const toRead = mode === "none" ? [] : [...new Set(secondaryNow.values())].filter((d) => mode === "all" || touchedDigests.has(d));
    await mapLimited(toRead, DEFAULT_RESOLVE_CONCURRENCY, async (digest) => {
      checkAborted();
      try {
        const manifest = await secondary.getManifest(repository, digest);
        if (manifest.kind === "image") for (const child of manifestChildren(manifest)) if (child.kind === "blob" && child.role !== "subject") storedBlobs.add(child.descriptor.digest);
      } catch (error) {
        if (!(error instanceof InvalidManifestError)) throw error;
        corrupt.set(digest, describeError(error));
      }
    });
    return { kind: "ok", checksum: sideChecksum, corrupt };
  }

  function result(checksum: string, removed: boolean): SyncResult {
    return {
      repository,
      tags: {
        copied: [...copiedTags.keys()].sort(),
        unchanged: [],
        deleted: [...deletedTags].sort(),
        unremovable: [...unremovable].sort(),
      },
      manifests: counts.manifests,
      deletedManifests: counts.deletedManifests,
      blobs: { copied: counts.copied, skipped: counts.skipped, mounted: counts.mounted },
      bytes: counts.bytes,
      checksum,
      removed,
      verifiedTags: removed ? {} : Object.fromEntries(verifiedMap),
      unconfirmed: {},
      durationMs: performance.now() - started,
    };
  }

  const maxPasses = Math.max(1, options.maxPasses ?? DEFAULT_MAX_PASSES);
  let repaired = false;
  try {
    for (let pass = 1; pass <= maxPasses; pass++) {
      checkAborted();
      // The secondary first: when it has no tag of the repository, the primary's tags are read
      // with GETs by tag (each copied anyway), not HEADs followed by GETs.
      const secondaryFirst = pass === 1 ? await listSecondary() : undefined;
      if (secondaryFirst !== undefined) secondaryWasEmpty = secondaryFirst.size === 0;
      const primaryTags = await listPrimary();
      let secondaryTags = secondaryFirst ?? (await listSecondary());
      if (primaryTags === undefined) {
        if (assumedEmpty) {
          // Removing a repository needs to know what it holds.
          assumedEmpty = false;
          secondaryTags = await listSecondary();
        }
        if (options.deleteMissing) await removeRepository(secondaryTags);
        const remaining = await listSecondary();
        if (options.deleteMissing && remaining.size > 0) {
          throw new TransferError(TRANSFER_ERROR_CODES.verification, repository, `still has tags on the secondary after its removal: ${[...remaining.keys()].join(", ")}`);
        }
        await flushBlobLocations();
        // A push to a new repository can be notified before its tag exists: then it is not gone, only early.
        return { ...result(options.deleteMissing ? tagListChecksum(new Map()) : tagListChecksum(secondaryTags), options.deleteMissing), unconfirmed: await unconfirmedTags() };
      }

      const failures: TagFailure[] = [...unresolvedPrimary].map(([tag, error]) => ({
        tag,
        error: new TransferError(TRANSFER_ERROR_CODES.primary, repository, `cannot resolve it on the primary: ${describeError(error)}`, { cause: error }),
      }));
      const tags = [...primaryTags.keys()].sort();
      await mapLimited(tags, tagConcurrency, async (tag) => {
        const digest = primaryTags.get(tag)!;
        try {
          if (secondaryTags.get(tag) === digest) await copyReferrers(digest);
          else await copyTag(tag, digest);
        } catch (error) {
          if (signal?.aborted === true) throw error;
          failures.push({ tag, error });
        }
      });
      if (options.deleteMissing) {
        // A tag the primary could not resolve is not gone: the secondary keeps it and its digest.
        const kept = new Map(primaryTags);
        for (const tag of unresolvedPrimary.keys()) {
          const digest = secondaryTags.get(tag);
          if (digest !== undefined) kept.set(tag, digest);
        }
        await removeTags(kept, secondaryTags, failures);
      }
      if (failures.length > 0) {
        failures.sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
        throw new TagsFailedError(repository, failures, primaryTags.size + unresolvedPrimary.size + [...secondaryTags.keys()].filter((t) => !primaryTags.has(t) && !unresolvedPrimary.has(t)).length);
      }

      let verified = await verify(primaryTags);
      if (verified.kind === "ok" && verified.corrupt.size > 0 && !repaired) {
        // A re-push of stored content does not rewrite it: delete, then copy again, once.
        repaired = true;
        for (const digest of verified.corrupt.keys()) {
          const affected = tags.filter((t) => primaryTags.get(t) === digest);
          progress({ type: "repair", digest, tags: affected });
          await deleteDigest(digest);
          for (const tag of affected) await copyTag(tag, digest);
        }
        verified = await verify(primaryTags);
      }
      if (verified.kind === "changed") continue;
      if (verified.corrupt.size > 0) {
        const detail = [...verified.corrupt]
          .map(([digest, why]) => `tag(s) ${tags.filter((t) => primaryTags.get(t) === digest).map((t) => `"${t}"`).join(", ")} (${digest}): ${why}`)
          .join("; ");
        throw new TransferError(
          TRANSFER_ERROR_CODES.verification,
          repository,
          `the secondary serves corrupt manifests even after deleting and re-pushing them (the registry keeps stored content until garbage collection): ${detail}`,
        );
      }
      await flushBlobLocations();
      const final = result(verified.checksum, false);
      return { ...final, tags: { ...final.tags, unchanged: tags.filter((t) => !copiedTags.has(t)) }, unconfirmed: await unconfirmedTags() };
    }
    throw new TransferError(TRANSFER_ERROR_CODES.verification, repository, `the primary kept changing during ${maxPasses} copy passes; will retry`);
  } finally {
    // What reached the secondary is a mount source for later copies even when the sync failed
    // (best effort here: the failure being reported matters more).
    await flushBlobLocations().catch(() => undefined);
  }
}

/**
 * Blob prefetch: the primary's ingest announces every large blob the primary
 * registry stores (`georep.blobs.pushed`, core NATS); one transfer worker of
 * each site (a queue group per site) copies it into the same repository here
 * while the rest of the image is still being pushed. The manifest's sync then
 * finds the blob here, or waits for the copy under way in this process (the
 * shared {@link InFlightBlobs}) or, in another process, for the copy's claim
 * in tracking (`blob_copy`), instead of copying it a second time.
 *
 * Only a head start, never the record: a lost or refused hint costs time, not
 * data, because the manifest's sync copies every blob the secondary lacks.
 * So hints are dropped rather than queued without bound, skipped while
 * replication is paused, and a failed copy is counted and logged, nothing more.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { BlobPushedHint, SUBJECTS, blobHintQueueGroup, decodeJson } from "@georep/schema";
import { SpanKind, contextFromCarrier, withSpan } from "@georep/runtime";
import type { Logger } from "@georep/runtime";
import { copyBlob } from "@georep/registry-client";
import type { RegistryClient } from "@georep/registry-client";
import { blobPlaces, claimBlobCopy, isPaused, recordBlobs, releaseBlobCopy, renewBlobCopy } from "@georep/tracking";
import type { TrackingDb } from "@georep/tracking";
import { createLimiter } from "./limit.js";
import type { TransferMetrics } from "./metrics.js";
import type { InFlightBlobs } from "./sync.js";

/** Default of {@link PrefetchOptions.concurrency}. */
export const DEFAULT_PREFETCH_CONCURRENCY = 4;
/** Default of {@link PrefetchOptions.maxQueued}. */
export const DEFAULT_PREFETCH_MAX_QUEUED = 256;
/** How long a claim on a blob copy lives without renewal (renewed every third of it while copying). */
export const BLOB_COPY_CLAIM_MS = 60_000;

export interface PrefetchOptions {
  /** This site: its workers share one queue group, so each hint is taken once per site. */
  readonly site: string;
  /** This process's name on its blob copy claims (the worker id). */
  readonly owner: string;
  /** Blob copies at once. */
  readonly concurrency?: number;
  /** Hints waiting for a free copy slot; more are dropped (their manifests' syncs copy the blobs). */
  readonly maxQueued?: number;
  /** Upload PATCH size, as the syncs use. */
  readonly chunkSize?: number | undefined;
}

export interface PrefetchDeps {
  readonly nc: NatsConnection;
  readonly db: TrackingDb;
  readonly primary: RegistryClient;
  readonly secondary: RegistryClient;
  readonly logger: Logger;
  readonly metrics: TransferMetrics;
  /** Shared with the worker's syncs. */
  readonly inFlightBlobs: InFlightBlobs;
  readonly options: PrefetchOptions;
}

export interface Prefetcher {
  /** Subscribes to the hints. */
  start(): void;
  /** Unsubscribes; waits up to `timeoutMs` for the copies under way. */
  stop(timeoutMs: number): Promise<void>;
  /** Copies running or waiting now. */
  readonly pending: number;
}

/** What became of one hint (the label of `georep_transfer_prefetch_total`). */
export type PrefetchResult = "uploaded" | "mounted" | "skipped" | "failed" | "invalid" | "dropped" | "paused" | "duplicate";

export function createPrefetcher(deps: PrefetchDeps): Prefetcher {
  const { nc, db, metrics, inFlightBlobs, options } = deps;
  const logger = deps.logger.child({ component: "prefetch" });
  const limiter = createLimiter(options.concurrency ?? DEFAULT_PREFETCH_CONCURRENCY);
  const maxQueued = options.maxQueued ?? DEFAULT_PREFETCH_MAX_QUEUED;
  const running = new Set<Promise<void>>();
  let waiting = 0;
  let subscription: Subscription | undefined;

  async function copy(hint: BlobPushedHint): Promise<PrefetchResult> {
    if (await isPaused(db)) return "paused";
    const { repository, digest, size } = hint;
    // The claim tells syncs in other processes that the blob is on its way: they wait for it.
    if (!(await claimBlobCopy(db, digest, repository, options.owner, BLOB_COPY_CLAIM_MS))) return "duplicate";
    const renew = setInterval(() => {
      renewBlobCopy(db, digest, repository, options.owner, BLOB_COPY_CLAIM_MS).catch((err: unknown) => logger.debug({ err, digest }, "cannot renew a blob copy claim"));
    }, BLOB_COPY_CLAIM_MS / 3);
    try {
      const places = await blobPlaces(db, digest, repository);
      const result = await copyBlob(
        { client: deps.primary, repository },
        { client: deps.secondary, repository },
        { digest, size },
        { mountFrom: places.elsewhere, ...(options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize }) },
      );
      // Recorded before the syncs waiting for this copy go on: they then know it is here.
      await recordBlobs(db, repository, [digest]);
      metrics.inc("bytes", "", result.bytes);
      return result.action;
    } finally {
      clearInterval(renew);
      await releaseBlobCopy(db, digest, repository, options.owner).catch((err: unknown) => logger.debug({ err, digest }, "cannot release a blob copy claim; it expires"));
    }
  }

  function onHint(data: Uint8Array): void {
    const decoded = decodeJson(BlobPushedHint, data);
    if (!decoded.ok) {
      metrics.inc("prefetch", "invalid");
      logger.warn({ problems: decoded.problems }, "invalid blob push hint ignored");
      return;
    }
    const hint = decoded.value;
    if (inFlightBlobs.has(hint.digest)) return void metrics.inc("prefetch", "duplicate");
    if (waiting >= maxQueued) return void metrics.inc("prefetch", "dropped");
    // Registered at once: a sync that needs this blob from now on waits for this copy.
    let finished = (): void => undefined;
    const entry = { repository: hint.repository, done: new Promise<void>((resolve) => (finished = resolve)) };
    inFlightBlobs.set(hint.digest, entry);
    waiting++;
    const started = performance.now();
    const work = limiter
      .run(async () => {
        waiting--;
        const attributes = { "georep.repository": hint.repository, "georep.digest": hint.digest, "georep.size": hint.size };
        return withSpan("transfer.prefetch", { parent: contextFromCarrier(hint.trace), kind: SpanKind.CONSUMER, attributes }, async (span) => {
          const result = await copy(hint);
          span.setAttribute("georep.prefetch.result", result);
          return result;
        });
      })
      .then(
        (result) => {
          metrics.inc("prefetch", result);
          logger.debug({ repository: hint.repository, digest: hint.digest, size: hint.size, result, ms: Math.round(performance.now() - started) }, "blob prefetched");
        },
        (err: unknown) => {
          metrics.inc("prefetch", "failed");
          logger.info({ err, repository: hint.repository, digest: hint.digest }, "blob prefetch failed; the manifest's sync will copy it");
        },
      )
      .finally(() => {
        finished();
        if (inFlightBlobs.get(hint.digest) === entry) inFlightBlobs.delete(hint.digest);
        running.delete(work);
      });
    running.add(work);
  }

  return {
    get pending() {
      return running.size;
    },
    start() {
      if (subscription !== undefined) return;
      subscription = nc.subscribe(SUBJECTS.BLOB_PUSHED, {
        queue: blobHintQueueGroup(options.site),
        callback: (err, message) => {
          if (err === null) onHint(message.data);
        },
      });
      logger.info({ subject: SUBJECTS.BLOB_PUSHED, queue: blobHintQueueGroup(options.site) }, "taking blob push hints");
    },
    async stop(timeoutMs) {
      subscription?.unsubscribe();
      subscription = undefined;
      if (running.size === 0) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...running]), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(timer);
    },
  };
}

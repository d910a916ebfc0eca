/**
 * The `transfer` pull consumer of TRANSFER_JOBS: claims each job's
 * repository in the tracking table, syncs it, records the outcome.
 *
 * - At most `concurrency` syncs run at once; messages are fetched only for
 *   free slots, so a busy worker leaves jobs to the others.
 * - Per message: invalid → `term()`; already covered by a sync ("done") →
 *   ack; another worker's live lease ("busy") → `nak` until it expires;
 *   claimed → sync, renewing the lease and sending `working()` meanwhile,
 *   then `complete` or `fail` (the dispatcher re-dispatches at the retry
 *   time) and ack. A lease lost mid-sync stops the sync and records nothing.
 * - Postgres unavailable → `nak` with a delay (the job comes back).
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { Consumer, ConsumerConfig, ConsumerMessages, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Kysely } from "kysely";
import { STREAM_NAMES, SUBJECTS, TransferJob, decodeJson, syncDoneSubject } from "@georep/schema";
import { SpanKind, contextFromCarrier, ensureConsumer as ensureDurableConsumer, extractTraceHeaders, withSpan } from "@georep/runtime";
import type { EnsureConsumerAction, Logger } from "@georep/runtime";
import type { RegistryClient } from "@georep/registry-client";
import { claim, complete, fail, renewLease, requestSync } from "@georep/tracking";
import type { BackoffPolicy, Claim, TrackingDatabase } from "@georep/tracking";
import { TRANSFER_ERROR_CODES, TransferError, describeError } from "./errors.js";
import type { TransferMetrics } from "./metrics.js";
import { syncRepository } from "./sync.js";
import type { InFlightBlobs, SyncOptions, SyncResult } from "./sync.js";

/** Name of the durable pull consumer every transfer replica shares. */
export const CONSUMER_NAME = "transfer";
/** Pause after a failed fetch, and the `nak` delay when Postgres is unavailable. */
export const DEFAULT_RETRY_DELAY_MS = 2_000;
/** How long one fetch waits for messages. */
export const DEFAULT_FETCH_EXPIRES_MS = 5_000;
/** How often the stream's existence is checked while waiting for the dispatcher to create it. */
export const DEFAULT_STREAM_POLL_MS = 1_000;
/** Random extra delay of a `busy` nak, so replicas do not retry in lockstep. */
export const BUSY_JITTER_MS = 1_000;
/** Default of {@link WorkerOptions.recheckDelayMs}. */
export const DEFAULT_RECHECK_DELAY_MS = 1_000;
/** `nak` delay of a job that arrives while replication is paused at this site. */
export const PAUSED_RETRY_MS = 5_000;

/** Settings of the worker. */
export interface WorkerOptions {
  /** Lease owner name: unique per process. */
  readonly workerId: string;
  /** This site: each recorded outcome is announced on `georep.<site>.syncs.done`, so the dispatcher refills the slot at once. */
  readonly site?: string;
  /** Event syncs trust the last verified tag map (`TRANSFER_INCREMENTAL_SYNCS`). */
  readonly incrementalSyncs?: boolean;
  /** A sync is full when the last full one is older than this (`TRANSFER_FULL_SYNC_AFTER_MS`; tracking's default otherwise). */
  readonly fullSyncAfterMs?: number;
  /** Syncs at once in this process. */
  readonly concurrency: number;
  readonly leaseMs: number;
  /** The consumer's `ack_wait`. */
  readonly ackWaitMs: number;
  readonly backoff: BackoffPolicy;
  readonly sync: SyncOptions;
  /** How long `stop()` lets in-flight syncs finish before handing them back. */
  readonly drainTimeoutMs: number;
  readonly retryDelayMs?: number;
  readonly fetchExpiresMs?: number;
  readonly streamPollMs?: number;
  /** Delay before a sync again for pushed tags the primary did not show yet (default {@link DEFAULT_RECHECK_DELAY_MS}). */
  readonly recheckDelayMs?: number;
}

/** Dependencies of {@link createWorker}; the caller owns the connection, the pool and the clients. */
export interface WorkerDeps {
  readonly nc: NatsConnection;
  readonly db: Kysely<TrackingDatabase>;
  readonly primary: RegistryClient;
  readonly secondary: RegistryClient;
  readonly logger: Logger;
  readonly metrics: TransferMetrics;
  readonly options: WorkerOptions;
  /** Blob copies under way in this process (shared with the blob prefetch); a fresh map by default. */
  readonly inFlightBlobs?: InFlightBlobs;
}

export type WorkerState = "new" | "waiting" | "running" | "stopping" | "stopped";

/** The consumer loop; see {@link createWorker}. */
export interface Worker {
  /**
   * Waits for the TRANSFER_JOBS stream (the dispatcher creates it), ensures
   * the consumer, and starts fetching. Resolves once consuming, or when
   * stopped before that.
   */
  start(): Promise<void>;
  /**
   * Stops fetching; lets in-flight syncs finish for up to `drainTimeoutMs`,
   * then aborts them and hands their jobs back (`nak`, nothing recorded).
   * Idempotent.
   */
  stop(): Promise<void>;
  readonly state: WorkerState;
  /** Syncs running now. */
  readonly active: number;
}

/** The consumer configuration transfer wants. */
export function consumerConfig(ackWaitMs: number): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    durable_name: CONSUMER_NAME,
    description: "transfer: repository syncs from the primary registry",
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    // nats-server 2.9 knows only the singular filter_subject.
    filter_subject: SUBJECTS.TRANSFER_JOBS_ALL,
    ack_wait: nanos(ackWaitMs),
    // A job is never dropped: failures are recorded in tracking and acked, busy ones come back.
    max_deliver: -1,
  };
}

/** Creates the durable consumer, or updates what differs. Throws StreamNotFound while there is no stream. */
export async function ensureConsumer(jsm: JetStreamManager, ackWaitMs: number): Promise<EnsureConsumerAction> {
  return ensureDurableConsumer(jsm, STREAM_NAMES.TRANSFER_JOBS, consumerConfig(ackWaitMs), ["description", "filter_subject", "ack_wait", "max_deliver"]);
}

class LeaseLostError extends TransferError {
  override readonly name: string = "LeaseLostError";
}

/** Builds the worker; nothing happens until `start()`. */
export function createWorker(deps: WorkerDeps): Worker {
  const { nc, db, metrics, options } = deps;
  const logger = deps.logger.child({ component: "worker", worker: options.workerId });
  const doneSubject = options.site === undefined ? undefined : syncDoneSubject(options.site);
  const retryDelayMs = options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
  const js = jetstream(nc);
  const stopController = new AbortController();
  /** Aborts running syncs when the drain deadline passes. */
  const handBack = new AbortController();
  let state: WorkerState = "new";
  let batch: ConsumerMessages | undefined;
  let loop: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  const running = new Set<Promise<void>>();
  /** Blob copies under way across this worker's concurrent syncs (a shared layer is copied once, then mounted). */
  const inFlightBlobs: InFlightBlobs = deps.inFlightBlobs ?? (new Map() as InFlightBlobs);
  let syncsRunning = 0;
  /** Wakes the loop when a slot frees up. */
  let slotFreed: (() => void) | undefined;

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      if (stopController.signal.aborted) return resolve();
      const timer = setTimeout(resolve, ms);
      stopController.signal.addEventListener(
        "abort",
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    });

  async function waitForStream(): Promise<boolean> {
    const jsm = await jetstreamManager(nc);
    let logged = false;
    while (!stopController.signal.aborted) {
      try {
        const action = await ensureConsumer(jsm, options.ackWaitMs);
        logger.info({ consumer: CONSUMER_NAME, action }, "consumer ready");
        return true;
      } catch (err) {
        if (!logged) {
          logger.info({ err, stream: STREAM_NAMES.TRANSFER_JOBS }, "waiting for the TRANSFER_JOBS stream (the dispatcher creates it)");
          logged = true;
        }
      }
      await sleep(options.streamPollMs ?? DEFAULT_STREAM_POLL_MS);
    }
    return false;
  }

  /** Runs the sync of a claimed job; renews the lease and keeps the message alive meanwhile. */
  async function runClaimed(message: JsMsg, job: TransferJob, claimed: Extract<Claim, { kind: "claimed" }>, log: Logger): Promise<void> {
    const repository = job.repository;
    const controller = new AbortController();
    const onHandBack = () => controller.abort(new TransferError(TRANSFER_ERROR_CODES.aborted, repository, "interrupted by shutdown; handed back"));
    handBack.signal.addEventListener("abort", onHandBack, { once: true });
    const keepAlive = setInterval(() => message.working(), Math.max(500, Math.floor(options.ackWaitMs / 3)));
    const renew = setInterval(() => {
      renewLease(db, repository, options.workerId, options.leaseMs)
        .then((held) => {
          if (!held && !controller.signal.aborted) controller.abort(new LeaseLostError(TRANSFER_ERROR_CODES.aborted, repository, "lease lost to another worker"));
        })
        .catch((err: unknown) => log.warn({ err }, "cannot renew the lease; will try again"));
    }, Math.max(200, Math.floor(options.leaseMs / 3)));

    metrics.setInFlight(++syncsRunning);
    const started = performance.now();
    // Only event syncs trust the last verified tag map, and only while the claim allows it.
    const incremental = job.reason === "event" && options.incrementalSyncs === true ? claimed.incremental : undefined;
    let result: SyncResult | undefined;
    let failure: unknown;
    try {
      result = await syncRepository({
        primary: deps.primary,
        secondary: deps.secondary,
        repository,
        db,
        // Event syncs read back only what they pushed; every other sync reads back everything.
        // Event syncs do not read manifests back, and resolve only the tags events named when
        // the claim says the last sync's tag map can be trusted; every other sync does it all.
        options: {
          ...options.sync,
          // The registry answered each PUT with the digest of the bytes sent; reading them back
          // at once proves little more, and the hourly full sync reads everything back.
          verifyContent: job.reason === "event" ? "none" : "all",
          incremental,
          awaited: claimed.awaited,
          // A repository georep never synced: its first sync does not list the secondary first.
          assumeSecondaryEmpty: claimed.firstSync,
        },
        signal: controller.signal,
        inFlightBlobs,
        onProgress: (event) => log.debug({ progress: event }, "sync progress"),
      });
    } catch (error) {
      failure = error;
    } finally {
      clearInterval(keepAlive);
      clearInterval(renew);
      handBack.signal.removeEventListener("abort", onHandBack);
      metrics.setInFlight(--syncsRunning);
      metrics.observeDuration((performance.now() - started) / 1000, result !== undefined ? "synced" : "failed");
    }

    if (controller.signal.aborted) {
      const reason: unknown = controller.signal.reason;
      if (reason instanceof LeaseLostError) {
        // Someone else owns the repository now (the lease expired and was swept or taken): that sync counts.
        metrics.inc("syncs", "lease_lost");
        log.warn("lease lost during the sync; nothing recorded");
        message.ack();
      } else {
        metrics.inc("syncs", "interrupted");
        log.info("sync interrupted by shutdown; job handed back");
        message.nak();
      }
      return;
    }

    try {
      if (result !== undefined) {
        const synced = result;
        const unconfirmed = Object.entries(synced.unconfirmed);
        // The outcome and the recheck of pushed tags the primary did not show yet are one
        // transaction: a reader never sees the row synced between the two.
        const recorded = await db.transaction().execute(async (trx) => {
          const done = await complete(trx, repository, options.workerId, claimed.generation, {
            checksum: synced.checksum,
            bytesCopied: synced.bytes,
            blobsCopied: synced.blobs.copied,
            blobsMounted: synced.blobs.mounted,
            durationMs: synced.durationMs,
            unremovableTags: synced.tags.unremovable,
            verifiedTags: synced.verifiedTags,
            reason: job.reason,
            full: incremental === undefined,
          });
          if (!done || unconfirmed.length === 0) return done;
          // The registry notified these pushes before linking their tags: look again shortly.
          const notBefore = new Date(Date.now() + (options.recheckDelayMs ?? DEFAULT_RECHECK_DELAY_MS));
          for (const [tag, awaited] of unconfirmed) await requestSync(trx, repository, "event", new Date(awaited.at), tag, { digest: awaited.digest, notBefore });
          return done;
        });
        metrics.inc("syncs", recorded ? "synced" : "lease_lost");
        if (recorded && claimed.pushedAt !== null) metrics.observeLag(Math.max(0, Date.now() - claimed.pushedAt.getTime()) / 1000);
        if (recorded && unconfirmed.length > 0) {
          metrics.inc("rechecks", "", unconfirmed.length);
          log.info({ tags: Object.fromEntries(unconfirmed) }, "pushed tags not yet visible on the primary; sync again shortly");
        }
        metrics.inc("bytes", "", result.bytes);
        metrics.inc("blobs", "copied", result.blobs.copied);
        metrics.inc("blobs", "skipped", result.blobs.skipped);
        metrics.inc("blobs", "mounted", result.blobs.mounted);
        metrics.inc("manifests", "", result.manifests);
        metrics.inc("tagsCopied", "", result.tags.copied.length);
        metrics.inc("tagsDeleted", "", result.tags.deleted.length);
        const summary = {
          copied: result.tags.copied.length,
          unchanged: result.tags.unchanged.length,
          deleted: result.tags.deleted.length,
          unremovable: result.tags.unremovable,
          blobs: result.blobs,
          bytes: result.bytes,
          removed: result.removed,
          durationMs: Math.round(result.durationMs),
          checksum: result.checksum,
        };
        if (recorded) log.info(summary, "repository synced");
        else log.warn(summary, "repository synced but the lease was lost meanwhile; not recorded");
      } else {
        const text = describeError(failure);
        const recorded = await fail(db, repository, options.workerId, text, options.backoff, {
          generation: claimed.generation,
          reason: job.reason,
          durationMs: performance.now() - started,
        });
        metrics.inc("syncs", recorded ? "failed" : "lease_lost");
        log.warn({ err: failure, recorded }, "repository sync failed");
      }
      message.ack();
      announceDone();
    } catch (err) {
      // The outcome could not be recorded: the job comes back, and we hold the lease, so we claim it again.
      metrics.inc("jobs", "error");
      log.warn({ err }, "cannot record the sync outcome; job handed back");
      message.nak(retryDelayMs);
    }
  }

  /** A dispatcher slot is free: tell the site's dispatchers (a hint; their tick covers a lost one). */
  function announceDone(): void {
    if (doneSubject === undefined) return;
    try {
      nc.publish(doneSubject);
    } catch (err) {
      logger.debug({ err }, "cannot announce a finished sync");
    }
  }

  async function handle(message: JsMsg): Promise<void> {
    const decoded = decodeJson(TransferJob, message.data);
    if (!decoded.ok) {
      metrics.inc("jobs", "invalid");
      logger.warn({ subject: message.subject, seq: message.seq, problems: decoded.problems }, "invalid transfer job terminated");
      // No reason argument: nats-server < 2.10.4 does not parse `+TERM <reason>` and redelivers.
      message.term();
      return;
    }
    const job = decoded.value;
    // The sync joins the trace of the push that caused it (across the leafnode from the primary).
    const parent = job.trace === undefined ? extractTraceHeaders(message.headers) : contextFromCarrier(job.trace);
    const attributes = { "georep.repository": job.repository, "georep.generation": job.generation, "georep.reason": job.reason };
    await withSpan("transfer.sync", { parent, kind: SpanKind.CONSUMER, attributes }, () => handleJob(message, job));
  }

  async function handleJob(message: JsMsg, job: TransferJob): Promise<void> {
    const log = logger.child({ repository: job.repository, generation: job.generation, reason: job.reason, deliveries: message.info.deliveryCount });
    let claimed: Claim;
    try {
      claimed = await claim(db, job.repository, job.generation, options.workerId, options.leaseMs, {
        ...(options.fullSyncAfterMs === undefined ? {} : { fullSyncAfterMs: options.fullSyncAfterMs }),
      });
    } catch (err) {
      metrics.inc("jobs", "error");
      log.warn({ err }, "cannot claim the repository; job handed back");
      message.nak(retryDelayMs);
      return;
    }
    metrics.inc("jobs", claimed.kind);
    switch (claimed.kind) {
      case "done":
        log.debug("generation already synced");
        message.ack();
        return;
      case "busy": {
        const untilExpiry = claimed.leaseExpiresAt === null ? 0 : claimed.leaseExpiresAt.getTime() - Date.now();
        const delay = Math.max(retryDelayMs, untilExpiry) + Math.floor(Math.random() * BUSY_JITTER_MS);
        log.debug({ delay }, "another worker holds the lease; job comes back after it expires");
        message.nak(delay);
        return;
      }
      case "paused":
        log.debug("replication is paused at this site; job comes back later");
        message.nak(PAUSED_RETRY_MS + Math.floor(Math.random() * BUSY_JITTER_MS));
        return;
      case "claimed":
        log.debug({ syncGeneration: claimed.generation }, "repository claimed");
        await runClaimed(message, job, claimed, log);
        return;
    }
  }

  function track(message: JsMsg): void {
    const work = handle(message)
      .catch((err: unknown) => {
        logger.error({ err }, "transfer job handling failed");
        message.nak(retryDelayMs);
      })
      .finally(() => {
        running.delete(work);
        slotFreed?.();
      });
    running.add(work);
  }

  async function consumeLoop(): Promise<void> {
    const jsm = await jetstreamManager(nc);
    let consumer: Consumer | undefined;
    while (state === "running") {
      const free = options.concurrency - running.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => {
          slotFreed = resolve;
          stopController.signal.addEventListener("abort", () => resolve(), { once: true });
        });
        slotFreed = undefined;
        continue;
      }
      try {
        consumer ??= await js.consumers.get(STREAM_NAMES.TRANSFER_JOBS, CONSUMER_NAME);
        batch = await consumer.fetch({ max_messages: free, expires: options.fetchExpiresMs ?? DEFAULT_FETCH_EXPIRES_MS });
        if (state !== "running") void batch.close();
        for await (const message of batch) {
          if (state !== "running") {
            message.nak();
            continue;
          }
          track(message);
        }
      } catch (err) {
        if (state !== "running") break;
        consumer = undefined;
        logger.warn({ err }, "fetching transfer jobs failed; will retry");
        await sleep(retryDelayMs);
        await ensureConsumer(jsm, options.ackWaitMs).catch((error: unknown) => logger.debug({ err: error }, "cannot ensure the consumer yet"));
      } finally {
        batch = undefined;
      }
    }
  }

  return {
    get state() {
      return state;
    },
    get active() {
      return running.size;
    },
    async start() {
      if (state !== "new") throw new Error(`transfer worker cannot start: it is ${state}`);
      state = "waiting";
      if (!(await waitForStream())) return;
      if ((state as WorkerState) !== "waiting") return;
      state = "running";
      loop = consumeLoop().catch((err: unknown) => {
        logger.error({ err }, "consume loop failed");
        if (state === "running") state = "stopped";
      });
      logger.info({ stream: STREAM_NAMES.TRANSFER_JOBS, concurrency: options.concurrency }, "transfer consuming");
    },
    stop() {
      stopping ??= (async () => {
        state = "stopping";
        stopController.abort();
        await batch?.close().catch(() => undefined);
        await loop;
        if (running.size > 0) {
          logger.info({ active: running.size, drainTimeoutMs: options.drainTimeoutMs }, "waiting for in-flight syncs");
          let timer: NodeJS.Timeout | undefined;
          const deadline = new Promise<void>((resolve) => {
            timer = setTimeout(resolve, options.drainTimeoutMs);
          });
          await Promise.race([Promise.allSettled([...running]), deadline]);
          clearTimeout(timer);
          if (running.size > 0) {
            handBack.abort();
            await Promise.allSettled([...running]);
          }
        }
        state = "stopped";
        logger.info("transfer worker stopped");
      })();
      return stopping;
    },
  };
}

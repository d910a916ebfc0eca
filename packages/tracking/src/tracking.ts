/**
 * The state machine of the tracking row, as SQL that is safe with any
 * number of dispatcher and transfer replicas:
 *
 * - an event never gets lost during a sync: it bumps `pending_generation`;
 *   a sync records the generation it started with, and the row goes back to
 *   `pending` when a newer one arrived meanwhile;
 * - a generation is dispatched once (`dispatched_generation`, updated with
 *   the row locked);
 * - at most one sync per repository runs: `claim` takes a lease only when no
 *   live lease exists; an expired lease is swept back to `pending`;
 * - `retry_count` resets only on success; retries back off exponentially with
 *   jitter up to a cap.
 */
import type { Kysely, Transaction } from "kysely";
import { sql } from "kysely";
import { DEFAULT_TRANSFER_PRIORITY } from "@georep/schema";
import type { TransferReason } from "@georep/schema";
import { migrate } from "@georep/runtime";
import type { Logger } from "@georep/runtime";
import { TRACKING_MIGRATIONS, TRACKING_MIGRATION_LOCK_ID, TRACKING_MIGRATION_LOCK_TABLE, TRACKING_MIGRATION_TABLE } from "./table.js";
import type { AwaitedTag, RepositorySyncTable, TrackingDatabase } from "./table.js";

export type TrackingDb = Kysely<TrackingDatabase> | Transaction<TrackingDatabase>;

/** Retry backoff: first delay, cap (1 hour, as DESIGN.md asks), jitter share. */
export interface BackoffPolicy {
  readonly baseMs: number;
  readonly capMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 10_000, capMs: 3_600_000 };

/**
 * Delay before retry number `retryCount` (1 for the first retry): exponential
 * from `baseMs`, capped at `capMs`, with "equal jitter" (half fixed, half
 * random) so replicas and repositories do not retry in lockstep.
 */
export function retryDelayMs(retryCount: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const exp = Math.min(policy.capMs, policy.baseMs * 2 ** Math.max(0, Math.min(retryCount - 1, 40)));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/** A row as the services read it (bigints as numbers: generations never get near 2^53). */
export interface TrackingRow {
  readonly repository: string;
  readonly state: RepositorySyncTable["state"];
  readonly priority: number;
  readonly pendingGeneration: number;
  readonly syncedGeneration: number;
  readonly dispatchedGeneration: number;
  readonly retryCount: number;
  readonly retryAt: Date | null;
  readonly lastSyncFailure: string | null;
  readonly lastSyncedAt: Date | null;
  readonly leaseOwner: string | null;
  readonly leaseExpiresAt: Date | null;
  readonly verificationChecksum: string | null;
  readonly missingOnPrimary: boolean;
  readonly unremovableTags: readonly string[];
}

type Selected = Pick<
  RepositorySyncTable,
  | "repository"
  | "state"
  | "priority"
  | "retry_count"
  | "last_sync_failure"
  | "lease_owner"
  | "verification_checksum"
  | "missing_on_primary"
> & {
  pending_generation: string;
  synced_generation: string;
  dispatched_generation: string;
  retry_at: Date | null;
  last_synced_at: Date | null;
  lease_expires_at: Date | null;
  unremovable_tags: string[];
};

function toRow(r: Selected): TrackingRow {
  return {
    repository: r.repository,
    state: r.state,
    priority: r.priority,
    pendingGeneration: Number(r.pending_generation),
    syncedGeneration: Number(r.synced_generation),
    dispatchedGeneration: Number(r.dispatched_generation),
    retryCount: r.retry_count,
    retryAt: r.retry_at,
    lastSyncFailure: r.last_sync_failure,
    lastSyncedAt: r.last_synced_at,
    leaseOwner: r.lease_owner,
    leaseExpiresAt: r.lease_expires_at,
    verificationChecksum: r.verification_checksum,
    missingOnPrimary: r.missing_on_primary,
    unremovableTags: r.unremovable_tags,
  };
}

const COLUMNS = [
  "repository",
  "state",
  "priority",
  "pending_generation",
  "synced_generation",
  "dispatched_generation",
  "retry_count",
  "retry_at",
  "last_sync_failure",
  "last_synced_at",
  "lease_owner",
  "lease_expires_at",
  "verification_checksum",
  "missing_on_primary",
  "unremovable_tags",
] as const;

/** One row, or `undefined`. */
export async function getRow(db: TrackingDb, repository: string): Promise<TrackingRow | undefined> {
  const r = await db.selectFrom("repository_sync").select(COLUMNS).where("repository", "=", repository).executeTakeFirst();
  return r === undefined ? undefined : toRow(r);
}

/** More about a sync request. */
export interface SyncRequestDetails {
  /** The digest the push event said `tag` points at (checked on the primary by the sync). */
  readonly digest?: string | undefined;
  /** Do not dispatch before this time (a re-check that should let the primary settle). */
  readonly notBefore?: Date | undefined;
  /** The event's W3C trace context: the sync that covers it joins that trace. */
  readonly trace?: { readonly traceparent: string; readonly tracestate?: string } | undefined;
}

/**
 * Something happened to `repository` that a sync must cover (an event, a
 * resync): bump its generation, make it pending (a failed row stops waiting
 * for its retry time), raise its priority. Creates the row if needed.
 */
export async function requestSync(
  db: TrackingDb,
  repository: string,
  reason: TransferReason,
  at: Date = new Date(),
  tag?: string,
  details: SyncRequestDetails = {},
): Promise<void> {
  const priority = DEFAULT_TRANSFER_PRIORITY[reason];
  // A push event names its tag: an incremental sync resolves only the tags named since the
  // last claim. Anything else (an event without a tag, a resync) asks for a full sync.
  const named = reason === "event" && tag !== undefined ? tag : null;
  const awaited = named !== null && details.digest !== undefined ? JSON.stringify({ digest: details.digest, at: at.toISOString() }) : null;
  const notBefore = details.notBefore ?? null;
  const trace = details.trace === undefined ? null : JSON.stringify(details.trace);
  await sql`
    insert into repository_sync (repository, priority, pending_generation, last_event_at, event_tags, event_digests, retry_at, last_trace)
    values (${repository}, ${priority}, 1, ${reason === "event" ? at : null}, ${JSON.stringify(named === null ? [] : [named])}::jsonb,
      case when ${awaited}::jsonb is null then '{}'::jsonb else jsonb_build_object(${named}::text, ${awaited}::jsonb) end, ${notBefore}::timestamptz,
      ${trace}::jsonb)
    on conflict (repository) do update set
      pending_generation = repository_sync.pending_generation + 1,
      priority = least(repository_sync.priority, excluded.priority),
      state = case when repository_sync.state = 'started' then 'started' else 'pending' end,
      retry_at = ${notBefore}::timestamptz,
      missing_on_primary = false,
      last_event_at = greatest(excluded.last_event_at, repository_sync.last_event_at),
      event_tags = case
        when ${named}::text is null or repository_sync.event_tags ? ${named}::text then repository_sync.event_tags
        else repository_sync.event_tags || jsonb_build_array(${named}::text) end,
      -- the newest push of a tag wins (a re-check of an older one must not override it)
      event_digests = case
        when ${awaited}::jsonb is null then repository_sync.event_digests
        when repository_sync.event_digests ? ${named}::text
          and (repository_sync.event_digests -> ${named}::text ->> 'at')::timestamptz >= ${at} then repository_sync.event_digests
        else repository_sync.event_digests || jsonb_build_object(${named}::text, ${awaited}::jsonb) end,
      needs_full_sync = repository_sync.needs_full_sync or ${named}::text is null,
      last_trace = coalesce(excluded.last_trace, repository_sync.last_trace),
      updated_at = now()`.execute(db);
}

/**
 * Backfill: rows for repositories of the primary catalog that are not
 * tracked yet (pending, backfill priority), and `missing_on_primary` for
 * tracked ones the catalog no longer lists (which are then synced once more,
 * so the sync removes them here). Returns how many of each.
 */
export async function reconcileCatalog(db: Kysely<TrackingDatabase>, catalog: readonly string[]): Promise<{ added: number; missing: number }> {
  return db.transaction().execute(async (trx) => {
    let added = 0;
    for (let i = 0; i < catalog.length; i += 1000) {
      const slice = catalog.slice(i, i + 1000);
      const inserted = await sql<{ repository: string }>`
        insert into repository_sync (repository, priority)
        select r, ${DEFAULT_TRANSFER_PRIORITY.backfill} from unnest(${sql.val(slice)}::text[]) as r
        on conflict (repository) do nothing
        returning repository`.execute(trx);
      added += inserted.rows.length;
    }
    const missing = await sql<{ repository: string }>`
      update repository_sync set
        missing_on_primary = true,
        needs_full_sync = true,
        pending_generation = pending_generation + 1,
        state = case when state = 'started' then 'started' else 'pending' end,
        retry_at = null,
        updated_at = now()
      where missing_on_primary = false
        and not (repository = any(${sql.val(catalog)}::text[]))
      returning repository`.execute(trx);
    return { added, missing: missing.rows.length };
  });
}

/** A dispatched job: the repository, the generation it covers, why. */
export interface Dispatch {
  readonly repository: string;
  readonly generation: number;
  readonly priority: number;
  readonly reason: TransferReason;
  /** Trace context of the newest event the row got (the job carries it on). */
  readonly trace?: { readonly traceparent: string; readonly tracestate?: string };
}

function reasonOf(wasFailed: boolean, priority: number): TransferReason {
  if (wasFailed) return "retry";
  if (priority <= DEFAULT_TRANSFER_PRIORITY.resync) return "resync";
  if (priority <= DEFAULT_TRANSFER_PRIORITY.event) return "event";
  if (priority <= DEFAULT_TRANSFER_PRIORITY.retry) return "retry";
  return "backfill";
}

/** Rows dispatched and not finished: what counts against `max_concurrent_syncs`. */
export async function inFlight(db: TrackingDb): Promise<number> {
  const r = await sql<{ n: string }>`
    select count(*) as n from repository_sync
    where state = 'started' or (state = 'pending' and dispatched_generation = pending_generation and dispatched_generation > synced_generation)`.execute(db);
  return Number(r.rows[0]?.n ?? 0);
}

/**
 * Picks up to `limit` rows that need a sync (pending with an undispatched
 * generation, or failed with their retry time reached), most urgent first,
 * and marks them dispatched in the same statement. Rows locked by another
 * replica are skipped, so no generation is dispatched twice.
 */
export async function takeDispatchable(db: TrackingDb, limit: number, now: Date = new Date()): Promise<Dispatch[]> {
  if (limit <= 0) return [];
  const r = await sql<{ repository: string; pending_generation: string; priority: number; was_failed: boolean; last_trace: Dispatch["trace"] | null }>`
    with picked as (
      select repository, state = 'failed' as was_failed from repository_sync
      where ((state = 'pending' and dispatched_generation < pending_generation and (retry_at is null or retry_at <= ${now}))
         or (state = 'failed' and retry_at <= ${now}))
        and not coalesce((select paused from site_control where id = 1), false)
      order by priority, updated_at
      limit ${limit}
      for update skip locked
    )
    update repository_sync s set
      dispatched_generation = s.pending_generation,
      state = 'pending',
      updated_at = now()
    from picked where s.repository = picked.repository
    returning s.repository, s.pending_generation, s.priority, picked.was_failed, s.last_trace`.execute(db);
  return r.rows
    .map((row) => ({
      repository: row.repository,
      generation: Number(row.pending_generation),
      priority: row.priority,
      reason: reasonOf(row.was_failed, row.priority),
      ...(row.last_trace === null ? {} : { trace: row.last_trace }),
    }))
    .sort((a, b) => a.priority - b.priority);
}

/**
 * What an incremental sync may trust: the tag map the last successful sync
 * verified, and the tags push events named since then. Absent when the sync
 * must be full (first sync, an event without a tag, a failure, a resync, a
 * re-verification, an expired lease).
 */
export interface IncrementalBasis {
  readonly verifiedTags: Readonly<Record<string, string>>;
  readonly eventTags: readonly string[];
}

/** The outcome of {@link claim}. */
export type Claim =
  | {
      readonly kind: "claimed";
      readonly generation: number;
      readonly missingOnPrimary: boolean;
      /** The primary's push this sync delivers (the row's newest event since the last success), or null. */
      readonly pushedAt: Date | null;
      /** Tags push events named since the last claim, with the digest each event said (see {@link AwaitedTag}). */
      readonly awaited: Readonly<Record<string, AwaitedTag>>;
      readonly incremental?: IncrementalBasis;
      /** No sync of this repository ever ended, successfully or not, nor was one cut short: georep wrote nothing there yet. */
      readonly firstSync: boolean;
    }
  /** Another worker holds a live lease: retry the job after it expires. */
  | { readonly kind: "busy"; readonly leaseExpiresAt: Date | null }
  /** A sync already covered this generation (a redelivered or duplicate job). */
  | { readonly kind: "done" }
  /** Replication is paused at this site: hand the job back for later. */
  | { readonly kind: "paused" };

/**
 * Takes the repository's lease for `owner` unless a live lease exists,
 * whoever holds it (two jobs of one worker for the same repository must not
 * sync it at the same time either). The sync then covers the row's current
 * `pending_generation` (at least the job's) and the tags named by events so
 * far, which the claim hands over (events after it are kept for the next sync).
 */
export async function claim(
  db: TrackingDb,
  repository: string,
  jobGeneration: number,
  owner: string,
  leaseMs: number,
  options: { readonly fullSyncAfterMs?: number } = {},
): Promise<Claim> {
  const r = await sql<{
    pending_generation: string;
    missing_on_primary: boolean;
    verified_tags: Record<string, string>;
    event_tags: string[];
    needs_full_sync: boolean;
    last_event_at: Date | null;
    last_synced_at: Date | null;
    event_digests: Record<string, AwaitedTag>;
    taken_over: boolean;
    full_due: boolean;
    never_claimed: boolean;
  }>`
    with old as (
      select repository, event_tags, needs_full_sync, last_event_at, last_synced_at, event_digests, state = 'started' as taken_over,
        started_at is null as never_claimed,
        (full_verified_at is null or full_verified_at < now() - make_interval(secs => ${(options.fullSyncAfterMs ?? DEFAULT_FULL_SYNC_AFTER_MS) / 1000})) as full_due
      from repository_sync
      where repository = ${repository}
        and (state <> 'started' or lease_expires_at < now())
        and synced_generation < ${jobGeneration}
        and not coalesce((select paused from site_control where id = 1), false)
      for update
    )
    update repository_sync s set
      state = 'started',
      lease_owner = ${owner},
      lease_expires_at = now() + make_interval(secs => ${leaseMs / 1000}),
      started_at = now(),
      event_tags = '[]',
      event_digests = '{}',
      needs_full_sync = false,
      updated_at = now()
    from old where s.repository = old.repository
    returning s.pending_generation, s.missing_on_primary, s.verified_tags, old.event_tags, old.needs_full_sync, old.last_event_at, old.last_synced_at, old.event_digests, old.taken_over, old.full_due, old.never_claimed`.execute(db);
  const row = r.rows[0];
  if (row !== undefined) {
    // Taking over an expired lease: what the dead worker was handed is gone, so everything is checked.
    const full = row.needs_full_sync || row.taken_over || row.full_due || Object.keys(row.verified_tags).length === 0;
    return {
      kind: "claimed",
      generation: Number(row.pending_generation),
      missingOnPrimary: row.missing_on_primary,
      // A push since the last successful sync: this sync makes it available here.
      pushedAt: row.last_event_at !== null && (row.last_synced_at === null || row.last_event_at > row.last_synced_at) ? row.last_event_at : null,
      awaited: row.event_digests,
      // started_at is set by every claim and never cleared: no sync ever started, ended or failed.
      firstSync: row.never_claimed,
      ...(full ? {} : { incremental: { verifiedTags: row.verified_tags, eventTags: row.event_tags } }),
    };
  }
  // Nothing claimed: paused (checked only on this path, so a claim costs one statement), done or busy.
  if (await isPaused(db)) return { kind: "paused" };
  const current = await getRow(db, repository);
  if (current === undefined || current.syncedGeneration >= jobGeneration) return { kind: "done" };
  return { kind: "busy", leaseExpiresAt: current.leaseExpiresAt };
}

/** Extends a held lease; false when it was lost (expired and taken by someone else). */
export async function renewLease(db: TrackingDb, repository: string, owner: string, leaseMs: number): Promise<boolean> {
  const r = await sql`
    update repository_sync set lease_expires_at = now() + make_interval(secs => ${leaseMs / 1000}), updated_at = now()
    where repository = ${repository} and state = 'started' and lease_owner = ${owner}`.execute(db);
  return Number(r.numAffectedRows ?? 0) === 1;
}

/** What a successful sync reports. */
export interface SyncSuccess {
  readonly checksum: string;
  readonly bytesCopied: number;
  readonly blobsCopied: number;
  readonly blobsMounted: number;
  readonly durationMs: number;
  readonly unremovableTags?: readonly string[];
  /** Tag → digest on both sides after the sync (the basis of the next incremental sync). */
  readonly verifiedTags?: Readonly<Record<string, string>>;
  /** Why the job was queued (kept in the sync history). */
  readonly reason?: string;
  /** Every tag was listed and resolved on both sides (not an incremental sync): restarts the full-sync clock. */
  readonly full?: boolean;
}

/**
 * Default of `claim`'s `fullSyncAfterMs`: an incremental sync is allowed only
 * while the last full one is younger than this, so whatever an incremental
 * sync cannot see (a lost notification, a change behind georep's back) is
 * found within minutes on a repository that is being pushed to.
 */
export const DEFAULT_FULL_SYNC_AFTER_MS = 5 * 60_000;

/**
 * The lag sample of a sync: from the row's newest primary event to now, when
 * that event came after the previous successful sync (else the sync covered
 * no new push and says nothing about lag).
 */
const LAG_SAMPLE = sql`case when old.last_event_at is not null and (old.last_synced_at is null or old.last_event_at > old.last_synced_at)
  then greatest(0, round(extract(epoch from (now() - old.last_event_at)) * 1000))::integer end`;

/**
 * Records a successful sync of `generation`: synced, or pending again when
 * a newer generation arrived during the sync. Resets `retry_count`. False
 * when the lease was lost meanwhile (the result is then not recorded).
 */
export async function complete(db: TrackingDb, repository: string, owner: string, generation: number, result: SyncSuccess): Promise<boolean> {
  const r = await sql<{ n: string }>`
    with old as (
      select repository, started_at, last_event_at, last_synced_at from repository_sync
      where repository = ${repository} and state = 'started' and lease_owner = ${owner}
      for update
    ), updated as (
      update repository_sync s set
        state = case when pending_generation > ${generation} then 'pending' else 'synced' end,
        priority = case when pending_generation > ${generation} then priority else ${DEFAULT_TRANSFER_PRIORITY.backfill} end,
        synced_generation = ${generation},
        retry_count = 0,
        retry_at = null,
        last_sync_failure = null,
        last_synced_at = now(),
        verification_checksum = ${result.checksum},
        verified_at = now(),
        full_verified_at = case when ${result.full ?? true} then now() else full_verified_at end,
        bytes_copied = bytes_copied + ${result.bytesCopied},
        blobs_copied = blobs_copied + ${result.blobsCopied},
        blobs_mounted = blobs_mounted + ${result.blobsMounted},
        last_duration_ms = ${Math.round(result.durationMs)},
        unremovable_tags = ${JSON.stringify(result.unremovableTags ?? [])}::jsonb,
        verified_tags = ${JSON.stringify(result.verifiedTags ?? {})}::jsonb,
        needs_full_sync = needs_full_sync or ${result.verifiedTags === undefined},
        lease_owner = null,
        lease_expires_at = null,
        updated_at = now()
      from old where s.repository = old.repository
      returning s.repository
    ), history as (
      insert into sync_history (repository, generation, outcome, reason, started_at, duration_ms, bytes_copied, blobs_copied, blobs_mounted, lag_ms)
      select old.repository, ${generation}, 'synced', ${result.reason ?? null}, old.started_at, ${Math.round(result.durationMs)},
        ${result.bytesCopied}, ${result.blobsCopied}, ${result.blobsMounted}, ${LAG_SAMPLE}
      from old join updated using (repository)
    )
    select count(*) as n from updated`.execute(db);
  return Number(r.rows[0]?.n ?? 0) === 1;
}

/**
 * Records a failed sync: `failed`, retry_count + 1, retry_at after the
 * backoff, the message (naming the tag and cause). A newer generation that
 * arrived meanwhile is kept and is dispatched at the retry time.
 */
export async function fail(
  db: TrackingDb,
  repository: string,
  owner: string,
  message: string,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  details: { readonly generation?: number; readonly reason?: string; readonly durationMs?: number } = {},
): Promise<boolean> {
  const row = await getRow(db, repository);
  if (row === undefined || row.leaseOwner !== owner) return false;
  const delay = retryDelayMs(row.retryCount + 1, policy);
  const text = message.slice(0, 4000);
  const r = await sql<{ n: string }>`
    with old as (
      select repository, started_at, pending_generation from repository_sync
      where repository = ${repository} and state = 'started' and lease_owner = ${owner}
      for update
    ), updated as (
      update repository_sync s set
        state = 'failed',
        retry_count = retry_count + 1,
        retry_at = now() + make_interval(secs => ${delay / 1000}),
        last_sync_failure = ${text},
        dispatched_generation = least(dispatched_generation, synced_generation),
        needs_full_sync = true,
        lease_owner = null,
        lease_expires_at = null,
        updated_at = now()
      from old where s.repository = old.repository
      returning s.repository
    ), history as (
      insert into sync_history (repository, generation, outcome, reason, started_at, duration_ms, error)
      select old.repository, coalesce(${details.generation ?? null}::bigint, old.pending_generation), 'failed', ${details.reason ?? null},
        old.started_at, ${details.durationMs === undefined ? null : Math.round(details.durationMs)}::integer, ${text}
      from old join updated using (repository)
    )
    select count(*) as n from updated`.execute(db);
  return Number(r.rows[0]?.n ?? 0) === 1;
}

/**
 * Rows whose worker died: a `started` row with an expired lease goes back to
 * `pending` with its generation undispatched, so it is dispatched again.
 * Returns the repositories released.
 */
export async function releaseExpiredLeases(db: TrackingDb): Promise<string[]> {
  const r = await sql<{ repository: string }>`
    update repository_sync set
      state = 'pending',
      dispatched_generation = synced_generation,
      needs_full_sync = true,
      lease_owner = null,
      lease_expires_at = null,
      updated_at = now()
    where state = 'started' and lease_expires_at < now()
    returning repository`.execute(db);
  return r.rows.map((x) => x.repository);
}

/** Counts per state, for status reports. */
export async function countByState(db: TrackingDb): Promise<Record<RepositorySyncTable["state"], number>> {
  const r = await db.selectFrom("repository_sync").select(["state", sql<string>`count(*)`.as("n")]).groupBy("state").execute();
  const counts = { pending: 0, started: 0, synced: 0, failed: 0 };
  for (const row of r) counts[row.state] = Number(row.n);
  return counts;
}

/** Records that `repository` on the secondary holds `digests` (mount sources for later copies). */
export async function recordBlobs(db: TrackingDb, repository: string, digests: readonly string[]): Promise<void> {
  if (digests.length === 0) return;
  const unique = [...new Set(digests)];
  for (let i = 0; i < unique.length; i += 1000) {
    await db
      .insertInto("blob_location")
      .values(unique.slice(i, i + 1000).map((digest) => ({ digest, repository })))
      .onConflict((oc) => oc.columns(["digest", "repository"]).doUpdateSet({ seen_at: sql`now()` }))
      .execute();
  }
}

/** Other repositories of the secondary known to hold `digest`, most recently seen first. */
export async function blobLocations(db: TrackingDb, digest: string, except: string, limit = 3): Promise<string[]> {
  return (await blobPlaces(db, digest, except, limit)).elsewhere;
}

/**
 * Where the secondary is known to hold `digest`: whether `repository`
 * itself holds it, and up to `limit` other repositories, most recently seen
 * first. One query for what {@link blobLocations} and a HEAD would tell.
 */
export async function blobPlaces(db: TrackingDb, digest: string, repository: string, limit = 3): Promise<BlobPlaces> {
  return (await blobPlacesMany(db, [digest], repository, limit)).get(digest) ?? NO_BLOB_PLACES;
}

/** Nowhere known, and no copy under way. */
export const NO_BLOB_PLACES: BlobPlaces = { here: false, elsewhere: [], copying: false };

/** Where the secondary is known to hold a blob (see {@link blobPlaces}). */
export interface BlobPlaces {
  readonly here: boolean;
  readonly elsewhere: string[];
  /** A transfer process is copying it into the repository asked about now ({@link claimBlobCopy}). */
  readonly copying: boolean;
}

/** {@link blobPlaces} of several digests in one query; every digest asked for is in the answer. */
export async function blobPlacesMany(db: TrackingDb, digests: readonly string[], repository: string, limit = 3): Promise<Map<string, BlobPlaces>> {
  const unique = [...new Set(digests)];
  const out = new Map<string, BlobPlaces>(unique.map((d) => [d, NO_BLOB_PLACES]));
  if (unique.length === 0) return out;
  // Per digest: the primary key says whether it is here, the (digest, seen_at desc) index gives
  // the most recent other places, so the cost does not grow with how many repositories hold it.
  const r = await sql<{ digest: string; here: boolean; elsewhere: string[]; copying: boolean }>`
    select d.digest,
      exists (select 1 from blob_location b where b.digest = d.digest and b.repository = ${repository}) as here,
      exists (select 1 from blob_copy c where c.digest = d.digest and c.repository = ${repository} and c.expires_at > now()) as copying,
      array (
        select b.repository from blob_location b
        where b.digest = d.digest and b.repository <> ${repository}
        order by b.seen_at desc limit ${limit}
      ) as elsewhere
    from unnest(${unique}::text[]) as d (digest)`.execute(db);
  for (const row of r.rows) out.set(row.digest, { here: row.here, elsewhere: row.elsewhere, copying: row.copying });
  return out;
}

/**
 * Claims the copy of `digest` into `repository` for `owner` for `ttlMs`:
 * false while another owner's claim is live. Syncs in other processes see
 * the claim ({@link BlobPlaces.copying}) and wait instead of copying the
 * same bytes; {@link releaseBlobCopy} ends it, expiry covers a dead owner.
 */
export async function claimBlobCopy(db: TrackingDb, digest: string, repository: string, owner: string, ttlMs: number): Promise<boolean> {
  const r = await sql<{ owner: string }>`
    insert into blob_copy (digest, repository, owner, expires_at)
    values (${digest}, ${repository}, ${owner}, now() + ${ttlMs} * interval '1 millisecond')
    on conflict (digest, repository) do update set owner = excluded.owner, expires_at = excluded.expires_at
    where blob_copy.expires_at <= now() or blob_copy.owner = excluded.owner
    returning owner`.execute(db);
  return r.rows.length === 1;
}

/** Extends `owner`'s claim (a long copy); false when it is no longer theirs. */
export async function renewBlobCopy(db: TrackingDb, digest: string, repository: string, owner: string, ttlMs: number): Promise<boolean> {
  const r = await sql`
    update blob_copy set expires_at = now() + ${ttlMs} * interval '1 millisecond'
    where digest = ${digest} and repository = ${repository} and owner = ${owner}`.execute(db);
  return Number(r.numAffectedRows ?? 0) === 1;
}

/** Ends `owner`'s claim (the copy finished or failed). */
export async function releaseBlobCopy(db: TrackingDb, digest: string, repository: string, owner: string): Promise<void> {
  await db.deleteFrom("blob_copy").where("digest", "=", digest).where("repository", "=", repository).where("owner", "=", owner).execute();
}

/** Whether a live claim on copying `digest` into `repository` exists. */
export async function blobCopyUnderWay(db: TrackingDb, digest: string, repository: string): Promise<boolean> {
  const row = await db.selectFrom("blob_copy").select("owner").where("digest", "=", digest).where("repository", "=", repository).where("expires_at", ">", sql<Date>`now()`).executeTakeFirst();
  return row !== undefined;
}

/** Forgets blob locations of a repository (it was deleted on the secondary). */
export async function forgetRepositoryBlobs(db: TrackingDb, repository: string): Promise<void> {
  await db.deleteFrom("blob_location").where("repository", "=", repository).execute();
}

/** Creates or updates the tracking tables (under an advisory lock; dispatcher and transfer both call it). */
export async function migrateTracking(db: Kysely<TrackingDatabase>, logger?: Logger): Promise<string[]> {
  return migrate(db, TRACKING_MIGRATIONS, {
    lockId: TRACKING_MIGRATION_LOCK_ID,
    migrationTableName: TRACKING_MIGRATION_TABLE,
    migrationLockTableName: TRACKING_MIGRATION_LOCK_TABLE,
    ...(logger === undefined ? {} : { logger }),
  });
}

/**
 * Known repositories not verified for `olderThanMs` get a new generation at
 * backfill priority, so a change whose notification was lost is found by a
 * full sync (list, compare, read back) within that time. Rows that are
 * pending, started or failed are left alone: they will sync anyway.
 * Returns how many were requested.
 */
export async function requestStaleSyncs(db: TrackingDb, olderThanMs: number): Promise<number> {
  const r = await sql<{ repository: string }>`
    update repository_sync set
      pending_generation = pending_generation + 1,
      state = 'pending',
      needs_full_sync = true,
      priority = ${DEFAULT_TRANSFER_PRIORITY.backfill},
      updated_at = now()
    where state = 'synced'
      and (last_synced_at is null or last_synced_at < now() - make_interval(secs => ${olderThanMs / 1000}))
    returning repository`.execute(db);
  return r.rows.length;
}

/** Whether replication is paused at this site (no dispatch, no claim). */
export async function isPaused(db: TrackingDb): Promise<boolean> {
  const row = await db.selectFrom("site_control").select("paused").where("id", "=", 1).executeTakeFirst();
  return row?.paused ?? false;
}

/** The pause switch: who and when, as the status service shows it. */
export interface PauseState {
  readonly paused: boolean;
  readonly pausedAt: Date | null;
  readonly pausedBy: string | null;
}

/** Reads the pause switch. */
export async function pauseState(db: TrackingDb): Promise<PauseState> {
  const row = await db.selectFrom("site_control").select(["paused", "paused_at", "paused_by"]).where("id", "=", 1).executeTakeFirst();
  return { paused: row?.paused ?? false, pausedAt: row?.paused_at ?? null, pausedBy: row?.paused_by ?? null };
}

/** Pauses or resumes replication at this site; returns the new state. */
export async function setPaused(db: TrackingDb, paused: boolean, by?: string): Promise<PauseState> {
  const row = await db
    .insertInto("site_control")
    .values({ id: 1, paused, paused_at: paused ? new Date() : null, paused_by: paused ? (by ?? null) : null })
    .onConflict((oc) =>
      oc.column("id").doUpdateSet({ paused, paused_at: paused ? new Date() : null, paused_by: paused ? (by ?? null) : null, updated_at: new Date() }),
    )
    .returning(["paused", "paused_at", "paused_by"])
    .executeTakeFirstOrThrow();
  return { paused: row.paused, pausedAt: row.paused_at, pausedBy: row.paused_by };
}

/** One finished sync, newest first from {@link recentSyncs}. */
export interface SyncRecord {
  readonly generation: number;
  readonly outcome: "synced" | "failed";
  readonly reason: string | null;
  readonly startedAt: Date | null;
  readonly finishedAt: Date;
  readonly durationMs: number | null;
  readonly bytesCopied: number;
  readonly blobsCopied: number;
  readonly blobsMounted: number;
  readonly lagMs: number | null;
  readonly error: string | null;
}

/** The newest finished syncs of a repository. */
export async function recentSyncs(db: TrackingDb, repository: string, limit = 10): Promise<SyncRecord[]> {
  const rows = await db
    .selectFrom("sync_history")
    .selectAll()
    .where("repository", "=", repository)
    .orderBy("finished_at", "desc")
    .orderBy("id", "desc")
    .limit(limit)
    .execute();
  return rows.map((row) => ({
    generation: Number(row.generation),
    outcome: row.outcome,
    reason: row.reason,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    durationMs: row.duration_ms,
    bytesCopied: Number(row.bytes_copied),
    blobsCopied: row.blobs_copied,
    blobsMounted: row.blobs_mounted,
    lagMs: row.lag_ms,
    error: row.error,
  }));
}

/** Replication lag percentiles (seconds) over the syncs finished in the last `windowMs`; nulls without samples. */
export async function lagPercentiles(db: TrackingDb, windowMs = 3_600_000): Promise<{ p50: number | null; p99: number | null; samples: number }> {
  const r = await sql<{ p50: number | null; p99: number | null; n: string }>`
    select percentile_cont(0.5) within group (order by lag_ms) as p50,
           percentile_cont(0.99) within group (order by lag_ms) as p99,
           count(lag_ms) as n
    from sync_history
    where lag_ms is not null and finished_at > now() - make_interval(secs => ${windowMs / 1000})`.execute(db);
  const row = r.rows[0];
  const toSeconds = (ms: number | null | undefined): number | null => (ms === null || ms === undefined ? null : Number(ms) / 1000);
  return { p50: toSeconds(row?.p50), p99: toSeconds(row?.p99), samples: Number(row?.n ?? 0) };
}

/**
 * The dispatcher's own SQL on the tracking table, next to the state machine
 * of `@georep/tracking` (which these statements follow: see its module doc).
 */
import { sql } from "kysely";
import type { Kysely } from "kysely";
import { DEFAULT_TRANSFER_PRIORITY } from "@georep/schema";
import { inFlight, takeDispatchable } from "@georep/tracking";
import type { Dispatch, TrackingDatabase, TrackingDb } from "@georep/tracking";

/**
 * Transaction-scoped advisory lock that serialises "count in-flight, then
 * take" across dispatcher replicas. `takeDispatchable` alone never hands a
 * generation out twice (SKIP LOCKED), but two replicas counting at the same
 * time would each fill the whole capacity.
 */
export const DISPATCH_LOCK_ID = 0x6765_6470; // "gedp"

/**
 * Takes what fits in the capacity: `max - inFlight` rows, most urgent first,
 * marked dispatched. One replica at a time (see {@link DISPATCH_LOCK_ID});
 * the lock is held for two short statements.
 */
export async function takeWithinCapacity(db: Kysely<TrackingDatabase>, maxConcurrent: number): Promise<{ readonly taken: Dispatch[]; readonly inFlight: number }> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${DISPATCH_LOCK_ID})`.execute(trx);
    const running = await inFlight(trx);
    const taken = await takeDispatchable(trx, maxConcurrent - running);
    return { taken, inFlight: running };
  });
}

/**
 * Undoes the dispatch of `generation` after its job could not be published
 * (or was lost): the row becomes dispatchable again. Nothing happens when a
 * worker claimed the row meanwhile or a newer generation was dispatched.
 * Returns whether the row was put back.
 */
export async function undispatch(db: TrackingDb, repository: string, generation: number): Promise<boolean> {
  const r = await sql`
    update repository_sync set
      dispatched_generation = least(dispatched_generation, synced_generation),
      updated_at = now()
    where repository = ${repository}
      and state = 'pending'
      and dispatched_generation = ${generation}`.execute(db);
  return Number(r.numAffectedRows ?? 0) === 1;
}

/** A dispatched row that no worker has claimed for a while. */
export interface UnclaimedDispatch {
  readonly repository: string;
  readonly generation: number;
}

/**
 * Rows dispatched at least `olderThanMs` ago and still not claimed: either
 * their job waits in TRANSFER_JOBS (workers busy or down) or it was lost
 * (the caller checks which).
 */
export async function unclaimedDispatches(db: TrackingDb, olderThanMs: number, limit: number): Promise<UnclaimedDispatch[]> {
  const r = await sql<{ repository: string; dispatched_generation: string }>`
    select repository, dispatched_generation from repository_sync
    where state = 'pending'
      and dispatched_generation = pending_generation
      and dispatched_generation > synced_generation
      and updated_at < now() - make_interval(secs => ${olderThanMs / 1000})
    order by updated_at
    limit ${limit}`.execute(db);
  return r.rows.map((row) => ({ repository: row.repository, generation: Number(row.dispatched_generation) }));
}

/** Which rows a bulk resync covers. */
export type ResyncScope = "all" | "failed";

/**
 * A resync of many rows: what `requestSync` does to one row (a new
 * generation, pending unless a sync runs, the retry wait dropped), for every
 * row or every failed one. Returns how many rows.
 *
 * Priorities: failed rows are few and an operator is waiting for them, so
 * they get the resync priority; "all" is a forced backfill and gets the
 * backfill priority, so fresh events still go first meanwhile (the jobs then
 * carry reason "backfill").
 */
export async function resyncMany(db: TrackingDb, scope: ResyncScope): Promise<number> {
  const priority = scope === "failed" ? DEFAULT_TRANSFER_PRIORITY.resync : DEFAULT_TRANSFER_PRIORITY.backfill;
  const r = await sql`
    update repository_sync set
      pending_generation = pending_generation + 1,
      priority = least(priority, ${priority}),
      state = case when state = 'started' then 'started' else 'pending' end,
      retry_at = null,
      needs_full_sync = true,
      updated_at = now()
    where ${scope === "failed" ? sql`state = 'failed'` : sql`true`}`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}

/** How many rows are tracked. */
export async function trackedCount(db: TrackingDb): Promise<number> {
  const r = await sql<{ n: string }>`select count(*) as n from repository_sync`.execute(db);
  return Number(r.rows[0]?.n ?? 0);
}

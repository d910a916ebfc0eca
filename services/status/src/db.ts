/**
 * What the status service reads from its site's Postgres: the tracking
 * tables on a secondary (`@georep/tracking`), the event-log's `geo_events`
 * on the primary (read only: event-log owns and migrates it).
 */
import { sql } from "kysely";
import type { ColumnType, Kysely, RawBuilder } from "kysely";
import type { SyncState } from "@georep/schema";
import type { TrackingDatabase } from "@georep/tracking";
import type { RepositoryCursor, RepositorySort, SortOrder } from "./cursor.js";

/** The columns of event-log's `geo_events` the status service reads (see event-log's migrations). */
export interface GeoEventsReadTable {
  id: ColumnType<string, never, never>;
  registry_event_id: string;
  event_type: string;
  repository: string;
  tag: string | null;
  digest: string | null;
  media_type: string | null;
  received_at: ColumnType<Date, string, never>;
  published_at: ColumnType<Date | null, never, never>;
}

/** Every table the status service reads, at either role. */
export interface StatusDatabase extends TrackingDatabase {
  geo_events: GeoEventsReadTable;
}

/**
 * The same pool seen as the tracking tables, for `@georep/tracking`'s
 * functions. Sound: {@link StatusDatabase} has every tracking table, and
 * only Kysely's invariance in its database type needs the cast.
 */
export function trackingDb(db: Kysely<StatusDatabase>): Kysely<TrackingDatabase> {
  return db as unknown as Kysely<TrackingDatabase>;
}

/** A tracking row as the API shows it (docs/status-api.md, `RepositoryRow`). */
export interface RepositoryRow {
  readonly repository: string;
  readonly state: SyncState;
  readonly retry_count: number;
  readonly retry_at: string | null;
  readonly last_sync_failure: string | null;
  readonly last_synced_at: string | null;
  readonly last_event_at: string | null;
  readonly updated_at: string;
  readonly pending_generation: number;
  readonly synced_generation: number;
  readonly verified_at: string | null;
  readonly verification_checksum: string | null;
  readonly bytes_copied: number;
  readonly blobs_copied: number;
  readonly blobs_mounted: number;
  readonly last_duration_ms: number | null;
  readonly missing_on_primary: boolean;
  readonly unremovable_tags: readonly unknown[];
}

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

const ROW_COLUMNS = [
  "repository",
  "state",
  "retry_count",
  "retry_at",
  "last_sync_failure",
  "last_synced_at",
  "last_event_at",
  "updated_at",
  "pending_generation",
  "synced_generation",
  "verified_at",
  "verification_checksum",
  "bytes_copied",
  "blobs_copied",
  "blobs_mounted",
  "last_duration_ms",
  "missing_on_primary",
  "unremovable_tags",
] as const;

interface SelectedRow {
  repository: string;
  state: SyncState;
  retry_count: number;
  retry_at: Date | null;
  last_sync_failure: string | null;
  last_synced_at: Date | null;
  last_event_at: Date | null;
  updated_at: Date;
  pending_generation: string;
  synced_generation: string;
  verified_at: Date | null;
  verification_checksum: string | null;
  bytes_copied: string;
  blobs_copied: number;
  blobs_mounted: number;
  last_duration_ms: number | null;
  missing_on_primary: boolean;
  unremovable_tags: unknown;
}

function toRepositoryRow(r: SelectedRow): RepositoryRow {
  return {
    repository: r.repository,
    state: r.state,
    retry_count: r.retry_count,
    retry_at: iso(r.retry_at),
    last_sync_failure: r.last_sync_failure,
    last_synced_at: iso(r.last_synced_at),
    last_event_at: iso(r.last_event_at),
    updated_at: r.updated_at.toISOString(),
    pending_generation: Number(r.pending_generation),
    synced_generation: Number(r.synced_generation),
    verified_at: iso(r.verified_at),
    verification_checksum: r.verification_checksum,
    bytes_copied: Number(r.bytes_copied),
    blobs_copied: r.blobs_copied,
    blobs_mounted: r.blobs_mounted,
    last_duration_ms: r.last_duration_ms,
    missing_on_primary: r.missing_on_primary,
    unremovable_tags: Array.isArray(r.unremovable_tags) ? (r.unremovable_tags as unknown[]) : [],
  };
}

/** One tracking row, or `undefined`. */
export async function repositoryRow(db: Kysely<StatusDatabase>, repository: string): Promise<RepositoryRow | undefined> {
  const row = await db.selectFrom("repository_sync").select(ROW_COLUMNS).where("repository", "=", repository).executeTakeFirst();
  return row === undefined ? undefined : toRepositoryRow(row);
}

/** The sort column as an expression; `last_synced_at` puts never-synced rows first in ascending order. */
const SORT_EXPRESSIONS: Record<RepositorySort, RawBuilder<unknown>> = {
  repository: sql`repository collate "C"`,
  updated_at: sql`updated_at`,
  last_synced_at: sql`coalesce(last_synced_at, '-infinity'::timestamptz)`,
  retry_count: sql`retry_count`,
};

/** The sort key as the cursor keeps it: timestamps printed in UTC with microseconds (exact, whatever the session's DateStyle). */
const SORT_KEYS: Record<RepositorySort, RawBuilder<unknown>> = {
  repository: sql`repository`,
  updated_at: sql`to_char(updated_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'`,
  last_synced_at: sql`case when last_synced_at is null then '-infinity' else to_char(last_synced_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' end`,
  retry_count: sql`retry_count`,
};

/** The cursor's key back as a value of the sort column's type. */
function keyValue(cursor: RepositoryCursor): RawBuilder<unknown> {
  switch (cursor.sort) {
    case "repository":
      return sql`${cursor.repository}::text collate "C"`;
    case "retry_count":
      return sql`${cursor.key}::integer`;
    default:
      return sql`${String(cursor.key)}::timestamptz`;
  }
}

/** Filters, order and page of {@link listRepositories}. */
export interface RepositoryQuery {
  readonly state?: SyncState | undefined;
  /** Substring of the name (case-sensitive). */
  readonly name?: string | undefined;
  readonly sort: RepositorySort;
  readonly order: SortOrder;
  readonly limit: number;
  readonly after?: RepositoryCursor | undefined;
}

/** One page of tracking rows, and the cursor of the next one (when there are more rows). */
export async function listRepositories(
  db: Kysely<StatusDatabase>,
  query: RepositoryQuery,
): Promise<{ items: RepositoryRow[]; next: RepositoryCursor | undefined }> {
  const expr = SORT_EXPRESSIONS[query.sort];
  const direction = query.order === "asc" ? sql`asc` : sql`desc`;
  const comparison = query.order === "asc" ? sql`>` : sql`<`;
  const conditions: RawBuilder<unknown>[] = [sql`true`];
  if (query.state !== undefined) conditions.push(sql`state = ${query.state}`);
  if (query.name !== undefined && query.name !== "") conditions.push(sql`strpos(repository, ${query.name}) > 0`);
  if (query.after !== undefined) {
    conditions.push(
      query.sort === "repository"
        ? sql`${expr} ${comparison} ${keyValue(query.after)}`
        : sql`(${expr}, repository collate "C") ${comparison} (${keyValue(query.after)}, ${query.after.repository}::text collate "C")`,
    );
  }
  const where = sql.join(conditions, sql` and `);
  const order = query.sort === "repository" ? sql`${expr} ${direction}` : sql`${expr} ${direction}, repository collate "C" ${direction}`;
  const columns = sql.join(ROW_COLUMNS.map((c) => sql.ref(c)));
  const result = await sql<SelectedRow & { sort_key: string | number }>`
    select ${columns}, ${SORT_KEYS[query.sort]} as sort_key
    from repository_sync
    where ${where}
    order by ${order}
    limit ${query.limit + 1}`.execute(db);
  const rows = result.rows.slice(0, query.limit);
  const last = rows.at(-1);
  const next =
    result.rows.length > query.limit && last !== undefined
      ? { sort: query.sort, order: query.order, key: query.sort === "retry_count" ? Number(last.sort_key) : last.sort_key, repository: last.repository }
      : undefined;
  return { items: rows.map(toRepositoryRow), next };
}

/** The secondary's totals over every tracking row (besides the counts per state). */
export interface TrackingTotals {
  readonly bytesCopied: number;
  readonly blobsCopied: number;
  readonly blobsMounted: number;
  readonly lastEventAt: Date | null;
  readonly lastSyncedAt: Date | null;
  readonly missingOnPrimary: number;
  readonly unremovableTags: number;
}

/** Sums and newest times over the tracking rows. */
export async function trackingTotals(db: Kysely<StatusDatabase>): Promise<TrackingTotals> {
  const r = await sql<{
    bytes_copied: string | null;
    blobs_copied: string | null;
    blobs_mounted: string | null;
    last_event_at: Date | null;
    last_synced_at: Date | null;
    missing_on_primary: string;
    unremovable_tags: string | null;
  }>`
    select sum(bytes_copied) as bytes_copied, sum(blobs_copied) as blobs_copied, sum(blobs_mounted) as blobs_mounted,
           max(last_event_at) as last_event_at, max(last_synced_at) as last_synced_at,
           count(*) filter (where missing_on_primary) as missing_on_primary,
           sum(case when jsonb_typeof(unremovable_tags) = 'array' then jsonb_array_length(unremovable_tags) else 0 end) as unremovable_tags
    from repository_sync`.execute(db);
  const row = r.rows[0];
  return {
    bytesCopied: Number(row?.bytes_copied ?? 0),
    blobsCopied: Number(row?.blobs_copied ?? 0),
    blobsMounted: Number(row?.blobs_mounted ?? 0),
    lastEventAt: row?.last_event_at ?? null,
    lastSyncedAt: row?.last_synced_at ?? null,
    missingOnPrimary: Number(row?.missing_on_primary ?? 0),
    unremovableTags: Number(row?.unremovable_tags ?? 0),
  };
}

/** The primary's event log at a glance. */
export interface EventLogTotals {
  readonly total: number;
  readonly lastId: string | null;
  readonly lastEventAt: Date | null;
}

/** Row count, newest id and newest event time of `geo_events`. */
export async function eventLogTotals(db: Kysely<StatusDatabase>): Promise<EventLogTotals> {
  const r = await sql<{ total: string; last_id: string | null; last_event_at: Date | null }>`
    select count(*) as total, max(id)::text as last_id, max(received_at) as last_event_at from geo_events`.execute(db);
  const row = r.rows[0];
  return { total: Number(row?.total ?? 0), lastId: row?.last_id ?? null, lastEventAt: row?.last_event_at ?? null };
}

/** A `geo_events` row as the API shows it. */
export interface EventItem {
  readonly id: string;
  readonly event_id: string;
  readonly repository: string;
  readonly action: string;
  readonly tag: string | null;
  readonly digest: string | null;
  readonly media_type: string | null;
  readonly received_at: string;
  readonly published_at: string | null;
}

/** Filters, order and page of {@link listEvents}. */
export interface EventQuery {
  readonly repository?: string | undefined;
  /** Row id, exclusive: with `desc`, rows before it. */
  readonly after?: string | undefined;
  readonly order: SortOrder;
  readonly limit: number;
}

/** One page of the event log, and the id to pass as `after` for the next one. */
export async function listEvents(db: Kysely<StatusDatabase>, query: EventQuery): Promise<{ items: EventItem[]; next: string | undefined }> {
  let q = db
    .selectFrom("geo_events")
    .select(["id", "registry_event_id", "repository", "event_type", "tag", "digest", "media_type", "received_at", "published_at"]);
  if (query.repository !== undefined) q = q.where("repository", "=", query.repository);
  if (query.after !== undefined) q = q.where(sql<string>`id`, query.order === "asc" ? ">" : "<", sql<string>`${query.after}::bigint`);
  const rows = await q
    .orderBy("id", query.order)
    .limit(query.limit + 1)
    .execute();
  const page = rows.slice(0, query.limit);
  const items = page.map((r) => ({
    id: String(r.id),
    event_id: r.registry_event_id,
    repository: r.repository,
    action: r.event_type,
    tag: r.tag,
    digest: r.digest,
    media_type: r.media_type,
    received_at: r.received_at.toISOString(),
    published_at: iso(r.published_at),
  }));
  return { items, next: rows.length > query.limit ? items.at(-1)?.id : undefined };
}

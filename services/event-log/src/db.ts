/**
 * The `geo_events` table: its kysely types and the queries event-log runs.
 */
import { sql } from "kysely";
import type { ColumnType, Generated, Insertable, Kysely, Selectable, Transaction } from "kysely";
import type { GeoEventType } from "@georep/schema";

/** A `geo_events` row as kysely sees it (`bigint` columns arrive as strings from pg). */
export interface GeoEventsTable {
  id: ColumnType<string, never, never>;
  registry_event_id: string;
  event_type: GeoEventType;
  repository: string;
  tag: string | null;
  digest: string | null;
  media_type: string | null;
  size: ColumnType<string | null, number | null, never>;
  from_repository: string | null;
  /** RFC 3339 strings on insert; Postgres parses (and judges) them. */
  occurred_at: ColumnType<Date | null, string | null, never>;
  received_at: ColumnType<Date, string, never>;
  created_at: Generated<Date>;
  published_at: ColumnType<Date | null, never, Date | null>;
  traceparent: string | null;
  tracestate: string | null;
}

/** The tables event-log owns. */
export interface EventLogDatabase {
  geo_events: GeoEventsTable;
}

/** A selected `geo_events` row. */
export type GeoEventRow = Selectable<GeoEventsTable>;
/** Values of a new `geo_events` row. */
export type NewGeoEventRow = Insertable<GeoEventsTable>;

/** What {@link insertGeoEvent} found: the new row, or the row an earlier delivery inserted. */
export interface InsertResult {
  readonly row: GeoEventRow;
  /** False when the registry event was already in the log (redelivery, a replica, a retried notification). */
  readonly inserted: boolean;
}

/**
 * Inserts the row unless its `registry_event_id` is already there
 * (`ON CONFLICT DO NOTHING`), and returns the row either way.
 */
export async function insertGeoEvent(db: Kysely<EventLogDatabase>, values: NewGeoEventRow): Promise<InsertResult> {
  const inserted = await db
    .insertInto("geo_events")
    .values(values)
    .onConflict((oc) => oc.column("registry_event_id").doNothing())
    .returningAll()
    .executeTakeFirst();
  if (inserted !== undefined) return { row: inserted, inserted: true };
  const existing = await db
    .selectFrom("geo_events")
    .selectAll()
    .where("registry_event_id", "=", values.registry_event_id)
    .executeTakeFirstOrThrow();
  return { row: existing, inserted: false };
}

/** Sets `published_at` of the given rows that are still unpublished. */
export async function markPublished(db: Kysely<EventLogDatabase> | Transaction<EventLogDatabase>, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db
    .updateTable("geo_events")
    .set({ published_at: new Date() })
    .where("id", "in", ids)
    .where("published_at", "is", null)
    .execute();
}

/**
 * In one transaction: locks up to `limit` unpublished rows older than
 * `olderThanMs`, oldest id first, skipping rows another transaction holds
 * (`FOR UPDATE SKIP LOCKED`, so replicas split the work instead of
 * waiting), hands them to `publish`, and marks the ids it returns as
 * published before committing.
 *
 * @returns the number of rows selected and of rows published.
 */
export async function withUnpublished(
  db: Kysely<EventLogDatabase>,
  options: { readonly limit: number; readonly olderThanMs: number },
  publish: (rows: readonly GeoEventRow[]) => Promise<readonly string[]>,
): Promise<{ selected: number; published: number }> {
  return db.transaction().execute(async (trx) => {
    const rows = await trx
      .selectFrom("geo_events")
      .selectAll()
      .where("published_at", "is", null)
      // The database's clock, not ours: replicas' clocks may disagree.
      .where("created_at", "<=", sql<Date>`now() - ${options.olderThanMs} * interval '1 millisecond'`)
      .orderBy("id")
      .limit(options.limit)
      .forUpdate()
      .skipLocked()
      .execute();
    if (rows.length === 0) return { selected: 0, published: 0 };
    const published = await publish(rows);
    await markPublished(trx, published);
    return { selected: rows.length, published: published.length };
  });
}

/**
 * SQLSTATE classes of errors that retrying the same row can never fix:
 * 22 data exception (e.g. a timestamp that matches the RFC 3339 pattern but
 * names a 13th month) and 23 integrity violation (the unique conflict is
 * handled by the query; anything else means the row itself is wrong).
 */
const PERMANENT_SQLSTATE_CLASSES: ReadonlySet<string> = new Set(["22", "23"]);

/**
 * True when a Postgres error is caused by the values of the row, so the
 * message is poison; false for everything else (connection refused or
 * reset, server shutting down, timeouts, serialization failures), which a
 * later retry may fix.
 */
export function isPermanentDatabaseError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) && PERMANENT_SQLSTATE_CLASSES.has(code.slice(0, 2));
}

/**
 * The event-log's schema: the `geo_events` table, the primary's ordered and
 * queryable log of what happened in the registry.
 */
import { sql } from "kysely";
import type { Kysely } from "kysely";
import type { MigrateOptions, Migrations } from "@georep/runtime";

/**
 * How event-log runs {@link migrations}: its own advisory lock and its own
 * kysely bookkeeping tables, so services sharing the primary's database
 * (status reads `geo_events`) migrate independently.
 */
export const MIGRATE_OPTIONS = {
  lockId: 0x6765_0001,
  migrationTableName: "event_log_migration",
  migrationLockTableName: "event_log_migration_lock",
} as const satisfies MigrateOptions;

/** Migrations of event-log, applied in name order. */
export const migrations: Migrations = {
  "0001_geo_events": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("geo_events")
        // bigserial: the order of the log and the Nats-Msg-Id of its GEO_EVENTS message.
        .addColumn("id", "bigserial", (c) => c.primaryKey())
        // One row per registry event, whatever the redeliveries and replicas.
        .addColumn("registry_event_id", "text", (c) => c.notNull().unique())
        .addColumn("event_type", "text", (c) =>
          c.notNull().check(sql`event_type in ('push', 'delete', 'repository_delete', 'mount')`),
        )
        .addColumn("repository", "text", (c) => c.notNull())
        .addColumn("tag", "text")
        .addColumn("digest", "text")
        .addColumn("media_type", "text")
        .addColumn("size", "bigint")
        .addColumn("from_repository", "text")
        // The registry's own timestamp (absent when it sent none) and when ingest accepted the event.
        .addColumn("occurred_at", "timestamptz")
        .addColumn("received_at", "timestamptz", (c) => c.notNull())
        .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
        // NULL until GEO_EVENTS acked the row's message: the outbox.
        .addColumn("published_at", "timestamptz")
        // W3C trace context of the registry event, carried on to GEO_EVENTS.
        .addColumn("traceparent", "text")
        .addColumn("tracestate", "text")
        .execute();
      // The outbox scan: only unpublished rows, in id order; stays tiny.
      await db.schema
        .createIndex("geo_events_unpublished_idx")
        .on("geo_events")
        .column("id")
        .where(sql.ref("published_at"), "is", null)
        .execute();
      // "What happened to this repository", newest first.
      await db.schema.createIndex("geo_events_repository_idx").on("geo_events").columns(["repository", "id"]).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable("geo_events").execute();
    },
  },
};

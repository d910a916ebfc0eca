/**
 * The tracking table of a secondary site (DESIGN.md, "The tracking row"):
 * one row per container repository of the primary.
 */
import type { ColumnType, Generated, Kysely, Migration } from "kysely";
import { sql } from "kysely";
import type { SyncState } from "@georep/schema";

type Timestamp = ColumnType<Date, Date | string, Date | string>;

export interface RepositorySyncTable {
  repository: string;
  state: SyncState;
  /** 0 is the most urgent; events 2, retries 5, backfill 8 (schema's DEFAULT_TRANSFER_PRIORITY). */
  priority: number;
  /** Bumped by every reason to sync (event, discovery, resync); a sync covers the generation it started with. */
  pending_generation: ColumnType<string, string | number | bigint, string | number | bigint>;
  /** The generation the last successful sync covered. */
  synced_generation: ColumnType<string, string | number | bigint, string | number | bigint>;
  /** The generation last handed to TRANSFER_JOBS (so replicas never dispatch it twice). */
  dispatched_generation: ColumnType<string, string | number | bigint, string | number | bigint>;
  retry_count: number;
  retry_at: Timestamp | null;
  last_sync_failure: string | null;
  last_synced_at: Timestamp | null;
  last_event_at: Timestamp | null;
  lease_owner: string | null;
  lease_expires_at: Timestamp | null;
  started_at: Timestamp | null;
  verification_checksum: string | null;
  verified_at: Timestamp | null;
  bytes_copied: ColumnType<string, string | number | bigint, string | number | bigint>;
  blobs_copied: number;
  blobs_mounted: number;
  last_duration_ms: number | null;
  /** Tags the secondary could not remove (Distribution 2.8 deletes digests only), with why. */
  unremovable_tags: ColumnType<string[], string, string>;
  /** The primary's catalog no longer lists it (the next sync removes it here). */
  missing_on_primary: boolean;
  /** Tag → digest as the last successful sync left both sides (what an incremental sync trusts). */
  verified_tags: ColumnType<Record<string, string>, string, string>;
  /** Tags named by push events since the last claim (an incremental sync resolves only these). */
  event_tags: ColumnType<string[], string, string>;
  /** Something since the last claim needs a full sync (an event without a tag, a failure, a resync). */
  needs_full_sync: boolean;
  /**
   * Tag → the digest and time of the newest push event naming it, since the
   * last claim: the sync checks the primary's tag points there (Distribution
   * notifies a push before it links the tag, so an event can overtake it).
   */
  event_digests: ColumnType<Record<string, AwaitedTag>, string, string>;
  /** When a full sync (every tag listed and resolved on both sides) last succeeded. */
  full_verified_at: Timestamp | null;
  /** W3C trace context of the newest event (its sync joins that push's trace). */
  last_trace: ColumnType<{ traceparent: string; tracestate?: string } | null, string | null, string | null>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

/** What a push event said a tag should point at, and when it was pushed. */
export interface AwaitedTag {
  readonly digest: string;
  /** RFC 3339 time of the event on the primary. */
  readonly at: string;
}

/** The blob index: which repositories of the secondary hold which blob (mount sources). */
export interface BlobLocationTable {
  digest: string;
  repository: string;
  seen_at: Generated<Date>;
}

/**
 * A blob copy under way into a repository of the secondary, by a transfer
 * process (the blob prefetch): a sync in another process waits for it
 * instead of copying the same bytes again. Expires if its owner dies.
 */
export interface BlobCopyTable {
  digest: string;
  repository: string;
  owner: string;
  expires_at: Date;
}

/** One row per finished sync (the repository detail's "recent syncs" and the lag samples). */
export interface SyncHistoryTable {
  id: Generated<string>;
  repository: string;
  generation: ColumnType<string, string | number | bigint, string | number | bigint>;
  outcome: "synced" | "failed";
  reason: string | null;
  started_at: Timestamp | null;
  finished_at: Generated<Date>;
  duration_ms: number | null;
  bytes_copied: ColumnType<string, string | number | bigint, string | number | bigint>;
  blobs_copied: number;
  blobs_mounted: number;
  /** Push on the primary (the row's newest event) to available here, when the sync covered an event. */
  lag_ms: number | null;
  error: string | null;
}

/** The site's single control row (id 1): replication paused or not. */
export interface SiteControlTable {
  id: number;
  paused: boolean;
  paused_at: Timestamp | null;
  paused_by: string | null;
  updated_at: Generated<Date>;
}

export interface TrackingDatabase {
  repository_sync: RepositorySyncTable;
  blob_location: BlobLocationTable;
  blob_copy: BlobCopyTable;
  sync_history: SyncHistoryTable;
  site_control: SiteControlTable;
}

/** Migrations of the tracking tables; run with `migrate(db, TRACKING_MIGRATIONS, { lockId: TRACKING_MIGRATION_LOCK_ID, migrationTableName: "tracking_migration" })`. */
export const TRACKING_MIGRATIONS: Readonly<Record<string, Migration>> = {
  "0001_repository_sync": {
    async up(db: Kysely<unknown>) {
      await sql`
        create table repository_sync (
          repository text primary key,
          state text not null default 'pending' check (state in ('pending', 'started', 'synced', 'failed')),
          priority smallint not null default 8,
          pending_generation bigint not null default 1,
          synced_generation bigint not null default 0,
          dispatched_generation bigint not null default 0,
          retry_count integer not null default 0,
          retry_at timestamptz,
          last_sync_failure text,
          last_synced_at timestamptz,
          last_event_at timestamptz,
          lease_owner text,
          lease_expires_at timestamptz,
          started_at timestamptz,
          verification_checksum text,
          verified_at timestamptz,
          bytes_copied bigint not null default 0,
          blobs_copied integer not null default 0,
          blobs_mounted integer not null default 0,
          last_duration_ms integer,
          unremovable_tags jsonb not null default '[]',
          missing_on_primary boolean not null default false,
          created_at timestamptz not null default now(),
          updated_at timestamptz not null default now()
        )`.execute(db);
      await sql`create index repository_sync_dispatch on repository_sync (priority, updated_at) where state in ('pending', 'failed')`.execute(db);
      await sql`create index repository_sync_lease on repository_sync (lease_expires_at) where state = 'started'`.execute(db);
      await sql`
        create table blob_location (
          digest text not null,
          repository text not null,
          seen_at timestamptz not null default now(),
          primary key (digest, repository)
        )`.execute(db);
    },
  },
  "0002_incremental_sync": {
    async up(db: Kysely<unknown>) {
      await sql`
        alter table repository_sync
          add column verified_tags jsonb not null default '{}',
          add column event_tags jsonb not null default '[]',
          add column needs_full_sync boolean not null default true`.execute(db);
    },
  },
  "0003_history_and_control": {
    async up(db: Kysely<unknown>) {
      await sql`
        create table sync_history (
          id bigserial primary key,
          repository text not null,
          generation bigint not null,
          outcome text not null check (outcome in ('synced', 'failed')),
          reason text,
          started_at timestamptz,
          finished_at timestamptz not null default now(),
          duration_ms integer,
          bytes_copied bigint not null default 0,
          blobs_copied integer not null default 0,
          blobs_mounted integer not null default 0,
          lag_ms integer,
          error text
        )`.execute(db);
      await sql`create index sync_history_repository on sync_history (repository, finished_at desc)`.execute(db);
      await sql`create index sync_history_finished on sync_history (finished_at)`.execute(db);
      await sql`
        create table site_control (
          id integer primary key check (id = 1),
          paused boolean not null default false,
          paused_at timestamptz,
          paused_by text,
          updated_at timestamptz not null default now()
        )`.execute(db);
      await sql`insert into site_control (id) values (1)`.execute(db);
    },
  },
  "0004_event_digests": {
    async up(db: Kysely<unknown>) {
      await sql`alter table repository_sync add column event_digests jsonb not null default '{}', add column last_trace jsonb, add column full_verified_at timestamptz`.execute(db);
    },
  },
  "0005_recent_blob_locations": {
    async up(db: Kysely<unknown>) {
      // A blob's most recent places without reading (and sorting) every repository that holds it:
      // a base layer shared by thousands of repositories is looked up at every sync of each.
      await sql`create index blob_location_recent on blob_location (digest, seen_at desc)`.execute(db);
      // The dispatcher counts in-flight rows every round: read the few in flight, not the table.
      await sql`
        create index repository_sync_in_flight on repository_sync (repository)
        where state = 'started' or (state = 'pending' and dispatched_generation = pending_generation and dispatched_generation > synced_generation)`.execute(db);
    },
  },
  "0006_blob_copies": {
    async up(db: Kysely<unknown>) {
      await sql`
        create table blob_copy (
          digest text not null,
          repository text not null,
          owner text not null,
          expires_at timestamptz not null,
          primary key (digest, repository)
        )`.execute(db);
    },
  },
};


/** Advisory lock key for the tracking migrations (dispatcher and transfer both run them). */
export const TRACKING_MIGRATION_LOCK_ID = 0x6765_7472; // "getr"
/** Migration table of the tracking tables (the services' own migrations use others). */
export const TRACKING_MIGRATION_TABLE = "tracking_migration";
export const TRACKING_MIGRATION_LOCK_TABLE = "tracking_migration_lock";

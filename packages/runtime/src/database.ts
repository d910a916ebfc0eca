/**
 * Postgres through kysely on a pg pool, and migrations under an advisory lock.
 */
import { Kysely, Migrator, PostgresDialect, sql } from "kysely";
import type { Migration, MigrationResultSet } from "kysely";
import pg from "pg";
import { MigrationError } from "./errors.js";
import { redactUrl } from "./logger.js";
import type { Logger } from "./logger.js";

/** Default number of pooled connections per process. */
export const DEFAULT_POOL_SIZE = 10;
/** Default time to wait for a connection from the pool or the server. */
export const DEFAULT_CONNECTION_TIMEOUT_MS = 10_000;
/** Default time an idle pooled connection is kept. */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;

/** Options of {@link createDatabase}. */
export interface DatabaseOptions {
  /** `postgres://user:password@host:port/database` (e.g. `config.DATABASE_URL`). */
  readonly url: string;
  /** Default {@link DEFAULT_POOL_SIZE}. */
  readonly poolSize?: number;
  readonly logger: Logger;
  /** Shown in `pg_stat_activity.application_name`. */
  readonly applicationName?: string;
  /** Default {@link DEFAULT_CONNECTION_TIMEOUT_MS}. */
  readonly connectionTimeoutMs?: number;
  /** Default {@link DEFAULT_IDLE_TIMEOUT_MS}. */
  readonly idleTimeoutMs?: number;
}

/** A kysely instance, the pg pool under it, and their lifecycle. */
export interface Database<DB> {
  readonly db: Kysely<DB>;
  /** The underlying pool, for `LISTEN`, `COPY` or libraries that want a `pg` pool. */
  readonly pool: pg.Pool;
  /** Runs `select 1`; throws when the database is unreachable (a readiness check). */
  ping(): Promise<void>;
  /** Destroys kysely and ends the pool; waits for checked-out clients to be released. Idempotent. */
  close(): Promise<void>;
}

/**
 * Creates a pg pool and a kysely instance on it. Connections are made
 * lazily; call `ping()` to fail fast at start-up. The service owns the
 * lifecycle: register `close()` as a shutdown hook.
 *
 * Errors of idle pooled clients (the server restarted, a network blip) are
 * logged instead of crashing the process; the pool replaces the client.
 */
export function createDatabase<DB>(options: DatabaseOptions): Database<DB> {
  const logger = options.logger.child({ component: "postgres" });
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? DEFAULT_POOL_SIZE,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? DEFAULT_CONNECTION_TIMEOUT_MS,
    idleTimeoutMillis: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    ...(options.applicationName === undefined ? {} : { application_name: options.applicationName }),
  });
  pool.on("error", (err) => {
    logger.warn({ err: withoutClient(err) }, "idle postgres client failed; it will be replaced");
  });
  // pg-pool listens only on idle clients: a checked-out client whose connection ends (Postgres
  // restarting) would emit 'error' with no listener and end the process. Its query fails on its
  // own, and the pool drops the broken client when it is released.
  pool.on("connect", (client) => {
    client.on("error", (err) => logger.debug({ err: withoutClient(err) }, "postgres connection lost; the client will be replaced"));
  });
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  logger.debug({ url: redactUrl(options.url), poolSize: options.poolSize ?? DEFAULT_POOL_SIZE }, "postgres pool created");

  let closing: Promise<void> | undefined;
  return {
    db,
    pool,
    async ping() {
      await sql`select 1`.execute(db);
    },
    close() {
      closing ??= db.destroy().then(() => {
        logger.debug("postgres pool closed");
      });
      return closing;
    },
  };
}

/**
 * The error without the pg client pg-pool attaches to it (`err.client`): logged as is, the
 * client's whole state (connection, parser, queued queries) went into one log line.
 */
function withoutClient(err: Error): Error | Record<string, unknown> {
  if (!("client" in err)) return err;
  const { client: _client, ...rest } = err;
  return { ...rest, type: err.name, message: err.message, stack: err.stack };
}

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /**
   * Key of the session-level advisory lock (`pg_advisory_lock(bigint)`) held
   * while migrating; every replica of a service must use the same one, and
   * services sharing a database different ones.
   */
  readonly lockId: number | bigint;
  readonly logger?: Logger;
  /** Default `kysely_migration` (kysely's). Services sharing a database use distinct tables. */
  readonly migrationTableName?: string;
  /** Default `kysely_migration_lock`. */
  readonly migrationLockTableName?: string;
}

/** A record of migrations by name; they run in name order (prefix names with a sortable number). */
export type Migrations = Readonly<Record<string, Migration>>;

/**
 * Runs every pending migration, in name order, while holding a Postgres
 * advisory lock on one dedicated connection, so N replicas starting
 * together migrate once: the first applies, the others wait and then find
 * nothing to do.
 *
 * @returns the names of the migrations this call applied (empty when up to date).
 * @throws {MigrationError} naming the failed migration (all pending
 * migrations run in one transaction, so none of this run is applied) or
 * describing what else failed, such as an applied migration missing from
 * `migrations`.
 */
export async function migrate<DB>(db: Kysely<DB>, migrations: Migrations, options: MigrateOptions): Promise<string[]> {
  const logger = options.logger?.child({ component: "migrate" });
  const lockId = String(options.lockId);
  if (!/^-?\d+$/.test(lockId)) throw new MigrationError(`invalid advisory lock id ${lockId}`, {});

  return db.connection().execute(async (conn) => {
    const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_lock(${lockId}::bigint) as locked`.execute(conn);
    if (rows[0]?.locked !== true) {
      logger?.info({ lockId }, "another process is migrating; waiting for the migration lock");
      await sql`select pg_advisory_lock(${lockId}::bigint)`.execute(conn);
    }
    try {
      const migrator = new Migrator({
        db: conn,
        provider: { getMigrations: async () => ({ ...migrations }) },
        ...(options.migrationTableName === undefined ? {} : { migrationTableName: options.migrationTableName }),
        ...(options.migrationLockTableName === undefined ? {} : { migrationLockTableName: options.migrationLockTableName }),
      });
      const result: MigrationResultSet = await migrator.migrateToLatest();
      const applied = (result.results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
      if (result.error !== undefined) {
        const failed = result.results?.find((r) => r.status === "Error")?.migrationName;
        const cause = result.error;
        const reason = cause instanceof Error ? cause.message : JSON.stringify(cause);
        // Postgres has transactional DDL, so kysely runs the whole batch in
        // one transaction: nothing of this call is applied.
        throw new MigrationError(
          failed === undefined
            ? `migrations failed: ${reason}`
            : `migration ${failed} failed (nothing of this run was applied): ${reason}`,
          { ...(failed === undefined ? {} : { migration: failed }), cause },
        );
      }
      for (const name of applied) logger?.info({ migration: name }, "migration applied");
      return applied;
    } finally {
      await sql`select pg_advisory_unlock(${lockId}::bigint)`.execute(conn).catch((err: unknown) => {
        logger?.warn({ err }, "cannot release the migration lock; it is released when the connection closes");
      });
    }
  });
}

import { randomUUID } from "node:crypto";
import { startPostgres } from "@georep/testing";
import Fastify from "fastify";
import { sql } from "kysely";
import type { Generated, Kysely, Migration } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MigrationError, createDatabase, createHealth, createLogger, healthPlugin, migrate } from "../../src/index.js";
import type { Database } from "../../src/index.js";

const logger = createLogger({ name: "test", level: "silent" });

let server: Awaited<ReturnType<typeof startPostgres>>;
const opened: Database<unknown>[] = [];

function open<DB>(): Database<DB> {
  const database = createDatabase<DB>({ url: server.url, poolSize: 3, logger, applicationName: "runtime-test" });
  opened.push(database as Database<unknown>);
  return database;
}

beforeAll(async () => {
  server = await startPostgres();
});

afterAll(async () => {
  await Promise.all(opened.map((d) => d.close()));
  await server?.stop();
});

const unique = (prefix: string): string => `${prefix}_${randomUUID().replaceAll("-", "").slice(0, 10)}`;

describe("createDatabase + migrate (real Postgres)", () => {
  it("applies a migration, runs a query, and is a no-op the second time", async () => {
    interface DB {
      items: { id: Generated<number>; name: string };
    }
    const database = open<DB>();
    await database.ping();
    const migrations: Record<string, Migration> = {
      "001_items": {
        async up(db: Kysely<unknown>) {
          await db.schema
            .createTable("items")
            .addColumn("id", "serial", (c) => c.primaryKey())
            .addColumn("name", "text", (c) => c.notNull())
            .execute();
        },
      },
    };
    const opts = { lockId: 1001, migrationTableName: unique("mig"), migrationLockTableName: unique("miglock") };
    expect(await migrate(database.db, migrations, opts)).toEqual(["001_items"]);
    expect(await migrate(database.db, migrations, opts)).toEqual([]);

    const { db } = database;
    await db.insertInto("items").values([{ name: "alpine" }, { name: "busybox" }]).execute();
    const rows = await db.selectFrom("items").select(["name"]).orderBy("name").execute();
    expect(rows).toEqual([{ name: "alpine" }, { name: "busybox" }]);
  });

  it("two concurrent migrate() calls from two pools apply each migration exactly once", async () => {
    const a = open();
    const b = open();
    const audit = unique("audit");
    const created = unique("created");
    await sql`create table ${sql.table(audit)} (migration text not null)`.execute(a.db);

    // Each migration records that it ran and is slow enough for the two
    // callers to overlap.
    const step = (name: string, ddl?: string): Migration => ({
      async up(db: Kysely<unknown>) {
        await sql`select pg_sleep(0.2)`.execute(db);
        if (ddl !== undefined) await sql.raw(ddl).execute(db);
        await sql`insert into ${sql.table(audit)} (migration) values (${name})`.execute(db);
      },
    });
    const migrations = {
      "001_create": step("001_create", `create table ${created} (id int)`),
      "002_alter": step("002_alter", `alter table ${created} add column v text`),
      "003_noop": step("003_noop"),
    };
    const opts = { lockId: 2002, migrationTableName: unique("mig"), migrationLockTableName: unique("miglock") };
    const [ra, rb] = await Promise.all([migrate(a.db, migrations, opts), migrate(b.db, migrations, opts)]);

    // One caller applied everything, the other found nothing to do.
    expect([...ra, ...rb].sort()).toEqual(["001_create", "002_alter", "003_noop"]);
    expect([ra.length, rb.length].sort()).toEqual([0, 3]);
    const { rows } = await sql<{ migration: string; n: string }>`
      select migration, count(*)::text as n from ${sql.table(audit)} group by migration order by migration`.execute(a.db);
    expect(rows).toEqual([
      { migration: "001_create", n: "1" },
      { migration: "002_alter", n: "1" },
      { migration: "003_noop", n: "1" },
    ]);
  });

  it("waits for the advisory lock held by another session before migrating", async () => {
    const database = open();
    const lockId = 3003;
    const table = unique("locked");
    const holder = new pg.Client({ connectionString: server.url });
    await holder.connect();
    try {
      await holder.query("select pg_advisory_lock($1::bigint)", [lockId]);
      const pending = migrate(
        database.db,
        { "001": { up: async (db: Kysely<unknown>) => void (await sql.raw(`create table ${table} (id int)`).execute(db)) } },
        { lockId, migrationTableName: unique("mig"), migrationLockTableName: unique("miglock") },
      );
      await new Promise((r) => setTimeout(r, 500));
      const before = await holder.query("select to_regclass($1) as t", [table]);
      expect(before.rows[0]).toEqual({ t: null }); // blocked by our lock, nothing ran
      await holder.query("select pg_advisory_unlock($1::bigint)", [lockId]);
      expect(await pending).toEqual(["001"]);
      const after = await holder.query<{ t: string | null }>("select to_regclass($1)::text as t", [table]);
      expect(after.rows[0]?.t).toBe(table);
    } finally {
      await holder.end();
    }
  });

  it("a failing migration throws a MigrationError naming it, and nothing of the run is applied", async () => {
    const database = open();
    const table = unique("partial");
    const opts = { lockId: 4004, migrationTableName: unique("mig"), migrationLockTableName: unique("miglock") };
    const migrations = {
      "001_ok": { up: async (db: Kysely<unknown>) => void (await sql.raw(`create table ${table} (id int)`).execute(db)) },
      "002_bad": { up: async (db: Kysely<unknown>) => void (await sql.raw("select * from no_such_table").execute(db)) },
    };
    const error = await migrate(database.db, migrations, opts).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as MigrationError).code).toBe("RUNTIME_ERR_MIGRATION");
    expect((error as MigrationError).migration).toBe("002_bad");
    expect((error as MigrationError).message).toMatch(/002_bad.*no_such_table/);
    const { rows } = await sql<{ t: string | null }>`select to_regclass(${table})::text as t`.execute(database.db);
    expect(rows[0]?.t).toBeNull();
    // The lock was released: the fixed set migrates afterwards.
    expect(await migrate(database.db, { "001_ok": migrations["001_ok"] }, opts)).toEqual(["001_ok"]);
  });

  it("survives Postgres restarting under queries in flight, and queries again afterwards", async () => {
    const database = open<unknown>();
    await database.ping();
    // every client of the pool checked out, mid-query, when the server goes away
    // one client checked out between two statements (as in a transaction), two mid-query
    let restarted!: () => void;
    const serverBack = new Promise<void>((resolve) => (restarted = resolve));
    const held = database.db
      .connection()
      .execute(async (connection) => {
        await sql`select 1`.execute(connection);
        await serverBack; // the connection is checked out and idle while the server restarts
        await sql`select 1`.execute(connection);
      })
      .then(() => "finished", (error: unknown) => error);
    const inFlight = [1, 2].map(() => sql`select pg_sleep(30)`.execute(database.db).then(() => "finished", (error: unknown) => error));
    await new Promise((r) => setTimeout(r, 300));
    await server.restart();
    restarted();
    const outcomes = await Promise.all([held, ...inFlight]);
    expect(outcomes.every((o) => o instanceof Error)).toBe(true); // the queries fail; the process does not
    let answered = false;
    for (let i = 0; i < 20 && !answered; i++) {
      answered = await database.ping().then(() => true, () => false);
      if (!answered) await new Promise((r) => setTimeout(r, 200));
    }
    expect(answered).toBe(true);
  });

  it("an idle client whose connection ends is logged as the error alone, without the pg client", async () => {
    const lines: Record<string, unknown>[] = [];
    const destination = { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) };
    const database = createDatabase<unknown>({ url: server.url, poolSize: 1, logger: createLogger({ name: "test", level: "debug", destination }), applicationName: "runtime-idle" });
    opened.push(database);
    await database.ping(); // one idle client in the pool now
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query("select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'runtime-idle'");
    await admin.end();
    for (let i = 0; i < 50 && !lines.some((l) => l.msg === "idle postgres client failed; it will be replaced"); i++) await new Promise((r) => setTimeout(r, 50));
    const line = lines.find((l) => l.msg === "idle postgres client failed; it will be replaced");
    expect(line).toBeDefined();
    const err = line!.err as Record<string, unknown>;
    expect(err.message).toMatch(/terminat/i);
    expect(err).not.toHaveProperty("client");
    expect(JSON.stringify(line).length).toBeLessThan(4_000);
    await database.ping(); // the pool replaced the client
  });

  it("close() ends the pool and is idempotent; ping then fails and readiness reports it", async () => {
    const database = open();
    const health = createHealth();
    health.register("postgres", () => database.ping());
    const app = Fastify();
    await app.register(healthPlugin, { health });
    expect((await app.inject({ url: "/health/ready" })).statusCode).toBe(200);
    await Promise.all([database.close(), database.close()]);
    expect(database.pool.ended).toBe(true);
    const res = await app.inject({ url: "/health/ready" });
    expect(res.statusCode).toBe(503);
    expect(res.json<{ failing: string[] }>().failing).toEqual(["postgres"]);
    await app.close();
  });
});

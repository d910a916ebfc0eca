import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres } from "../../src/index.js";
import type { RunningPostgres } from "../../src/index.js";

async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

describe("startPostgres: own cluster", () => {
  let server: RunningPostgres;
  beforeAll(async () => {
    server = await startPostgres({ existingUrl: undefined });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("runs a migration and a query on a fresh database", async () => {
    expect(server.url).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/georep_test_[0-9a-f]+$/);
    await query(server.url, "CREATE TABLE geo_events (id bigserial PRIMARY KEY, repository text NOT NULL)");
    await query(server.url, "INSERT INTO geo_events (repository) VALUES ($1), ($2)", ["team/app", "team/db"]);
    const rows = await query<{ repository: string }>(server.url, "SELECT repository FROM geo_events ORDER BY id");
    expect(rows.map((r) => r.repository)).toEqual(["team/app", "team/db"]);
  });

  it("runs as the postgres user, not root", async () => {
    const [row] = await query<{ user: string }>(server.url, "SELECT current_user AS user");
    expect(row?.user).toBe("postgres");
    const { readFileSync } = await import("node:fs");
    const uid = readFileSync(`/proc/${server.pid}/status`, "utf8").match(/^Uid:\s+(\d+)/m)?.[1];
    if (process.getuid?.() === 0) expect(uid).not.toBe("0");
  });

  it("creates more databases on the same server", async () => {
    const url = await server.createDatabase("georep_second");
    expect(url).toMatch(/\/georep_second$/);
    const [row] = await query<{ db: string }>(url, "SELECT current_database() AS db");
    expect(row?.db).toBe("georep_second");
    await expect(server.createDatabase("Bad-Name")).rejects.toThrow(/invalid database name/);
  });

  it("restart keeps data and port", async () => {
    await query(server.url, "CREATE TABLE kept (v int)");
    await query(server.url, "INSERT INTO kept VALUES (42)");
    await server.restart();
    const rows = await query<{ v: number }>(server.url, "SELECT v FROM kept");
    expect(rows).toEqual([{ v: 42 }]);
  });
});

describe("startPostgres: a fresh database on an existing server (GEOREP_TEST_DATABASE_URL)", () => {
  let host: RunningPostgres;
  beforeAll(async () => {
    host = await startPostgres({ existingUrl: undefined });
  });
  afterAll(async () => {
    await host?.stop();
  });

  it("creates a database on that server and drops it on stop", async () => {
    const serverUrl = host.url.replace(/\/[^/]+$/, "/postgres");
    const borrowed = await startPostgres({ existingUrl: serverUrl });
    expect(borrowed.port).toBe(host.port);
    expect(borrowed.dir).toBeUndefined();
    await query(borrowed.url, "CREATE TABLE t (v int)");
    const exists = async () => (await query(serverUrl, "SELECT 1 FROM pg_database WHERE datname = $1", [borrowed.database])).length;
    expect(await exists()).toBe(1);
    await expect(borrowed.restart()).rejects.toThrow(/not possible on a borrowed server/);
    await borrowed.stop();
    expect(await exists()).toBe(0);
  });
});

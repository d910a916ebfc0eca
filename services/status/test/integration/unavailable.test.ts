/**
 * Dependencies that are down or not ready: Postgres not listening, tables
 * not migrated, the NATS connection closed, registries not listening. The
 * API answers 503 `unavailable` (or says so in `tags_error`), never crashes.
 */
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase } from "@georep/runtime";
import { createRegistryClient } from "@georep/registry-client";
import { migrateTracking } from "@georep/tracking";
import type { TrackingDatabase } from "@georep/tracking";
import { freePort, startNats, startPostgres } from "@georep/testing";
import type { RunningNats, RunningPostgres } from "@georep/testing";
import { ADMIN, createGeoEventsTable, logger, startApp, syncedRow } from "../helpers.js";
import type { TestApp } from "../helpers.js";

let nats: RunningNats;
let postgres: RunningPostgres;
const apps: TestApp[] = [];

function expectUnavailable(res: LightMyRequestResponse): string {
  expect({ status: res.statusCode, body: res.json<unknown>() }).toMatchObject({ status: 503, body: { code: "unavailable" } });
  return res.json<{ message: string }>().message;
}

async function app(...args: Parameters<typeof startApp>): Promise<TestApp> {
  const a = await startApp(...args);
  apps.push(a);
  return a;
}

beforeAll(async () => {
  [nats, postgres] = await Promise.all([startNats({}), startPostgres()]);
});

afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await Promise.all([nats?.stop(), postgres?.stop()]);
});

describe("Postgres down", () => {
  it("answers 503 on every endpoint that reads it, fails readiness, and keeps serving the rest", async () => {
    const down = `postgres://postgres@127.0.0.1:${await freePort()}/nothing`;
    const { app: status } = await app(nats.url, down);
    expect(expectUnavailable(await status.inject("/api/v1/site"))).toMatch(/unreachable|Postgres/);
    expectUnavailable(await status.inject("/api/v1/repositories"));
    expectUnavailable(await status.inject("/api/v1/repositories/team/app"));
    expectUnavailable(await status.inject({ method: "POST", url: "/api/v1/pause", headers: ADMIN }));
    const ready = await status.inject("/health/ready");
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ status: "fail", failing: ["postgres"] });
    expect((await status.inject("/health/live")).statusCode).toBe(200);
    expect((await status.inject("/api/v1/sites")).statusCode).toBe(200);
    expect((await status.inject("/metrics")).body).toMatch(/^georep_status_reports_published_total\{outcome="error"\} [1-9]/m);
  });

  it("answers 503 while the tables are not there yet (not migrated)", async () => {
    const url = await postgres.createDatabase("unmigrated");
    const secondary = await app(nats.url, url);
    expect(expectUnavailable(await secondary.app.inject("/api/v1/site"))).toContain("not ready");
    expectUnavailable(await secondary.app.inject("/api/v1/repositories"));
    const primary = await app(nats.url, url, { options: { site: "primary1", role: "primary" } });
    expect(expectUnavailable(await primary.app.inject("/api/v1/events"))).toContain("geo_events");
  });
});

describe("NATS down", () => {
  it("answers actions with 503, fails readiness, and still reads Postgres", async () => {
    const url = await postgres.createDatabase("nats_down");
    const db = createDatabase<TrackingDatabase>({ url, poolSize: 1, logger });
    try {
      await migrateTracking(db.db);
      await syncedRow(db.db, "team/app");
    } finally {
      await db.close();
    }
    const status = await app(nats.url, url);
    expect((await status.app.inject("/api/v1/site")).statusCode).toBe(200);
    await status.nc.close();
    expect(expectUnavailable(await status.app.inject({ method: "POST", url: "/api/v1/resync", headers: ADMIN, payload: { scope: "all" } }))).toContain("NATS");
    expectUnavailable(await status.app.inject({ method: "POST", url: "/api/v1/repositories/team/app/resync", headers: ADMIN }));
    const ready = await status.app.inject("/health/ready");
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ failing: ["nats"] });
    expect((await status.app.inject("/api/v1/site")).json()).toMatchObject({ counts: { synced: 1 } });
  });

  it("keeps the primary's summary, with dead_letters unknown", async () => {
    const url = await postgres.createDatabase("nats_down_primary");
    const db = createDatabase<unknown>({ url, poolSize: 1, logger });
    try {
      await createGeoEventsTable(db.db);
    } finally {
      await db.close();
    }
    const status = await app(nats.url, url, { options: { site: "primary1", role: "primary" } });
    await status.app.ready();
    await status.nc.close();
    const res = await status.app.inject("/api/v1/site");
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ role: "primary", events: { total: 0, last_id: null, dead_letters: null } });
  });
});

describe("registries down", () => {
  let status: TestApp;

  beforeAll(async () => {
    const url = await postgres.createDatabase("registries_down");
    const db = createDatabase<TrackingDatabase>({ url, poolSize: 1, logger });
    try {
      await migrateTracking(db.db);
      await syncedRow(db.db, "team/app");
    } finally {
      await db.close();
    }
    const [p, s] = await Promise.all([freePort(), freePort()]);
    const registries = {
      primary: createRegistryClient({ url: `http://127.0.0.1:${p}`, retry: { retries: 0 } }),
      secondary: createRegistryClient({ url: `http://127.0.0.1:${s}`, retry: { retries: 0 } }),
    };
    status = await app(nats.url, url, { registries });
  });

  it("shows the repository with tags_error naming the unreachable side", async () => {
    const res = await status.app.inject("/api/v1/repositories/team/app");
    expect(res.statusCode).toBe(200);
    const detail = res.json<{ repository: { repository: string }; tags: unknown[]; tags_error: string; recent_syncs: unknown[] }>();
    expect(detail.repository.repository).toBe("team/app");
    expect(detail.tags).toEqual([]);
    expect(detail.tags_error).toMatch(/^primary unreachable: .*; secondary unreachable: /);
    expect(detail.recent_syncs).toHaveLength(1);
  });

  it("answers a replication wait with 503 at its timeout when the registries never answered", async () => {
    const started = Date.now();
    expect(expectUnavailable(await status.app.inject("/api/v1/replication/wait?repository=team/app&tag=v1&timeout=1"))).toContain("cannot read the registries");
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect((await status.app.inject("/metrics")).body).toMatch(/^georep_status_replication_waits_total\{outcome="unavailable"\} 1$/m);
  });

  it("answers a wait in progress at once when the app closes", async () => {
    const waiting = status.app.inject("/api/v1/replication/wait?repository=team/app&tag=v1&timeout=60");
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = Date.now();
    await status.close();
    const res = await waiting;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(expectUnavailable(res)).toContain("shutting down");
  });
});

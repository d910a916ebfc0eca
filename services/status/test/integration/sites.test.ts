/**
 * The sites view: status apps publishing their SiteStatusReport on core
 * NATS and each keeping the newest report per site, on one nats-server and
 * across a leafnode (a secondary's NATS joined to the primary's).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNats, createDatabase } from "@georep/runtime";
import type { Database } from "@georep/runtime";
import { SiteStatusReport, encodeJson, siteStatusSubject } from "@georep/schema";
import { migrateTracking } from "@georep/tracking";
import type { TrackingDatabase } from "@georep/tracking";
import { startNats, startPostgres, waitForLeafnodes } from "@georep/testing";
import type { RunningNats, RunningPostgres } from "@georep/testing";
import { ADMIN, createGeoEventsTable, failedRow, logger, startApp, syncedRow, waitUntil } from "../helpers.js";
import type { TestApp } from "../helpers.js";

interface SiteItem {
  site: string;
  role: string;
  last_seen_at: string;
  stale: boolean;
  health: string;
  report: SiteStatusReport;
}

const INTERVAL_MS = 150;
const STALE_AFTER_MS = 600;

let hub: RunningNats;
let leaf: RunningNats;
let postgres: RunningPostgres;
let primaryUrl: string;
let secondaryUrl: string;
const pools: Database<unknown>[] = [];
const apps: TestApp[] = [];

async function sites(app: TestApp): Promise<SiteItem[]> {
  const res = await app.app.inject("/api/v1/sites");
  expect(res.statusCode).toBe(200);
  return res.json<{ items: SiteItem[] }>().items;
}

async function start(natsUrl: string, databaseUrl: string, site: string, role: "primary" | "secondary"): Promise<TestApp> {
  const app = await startApp(natsUrl, databaseUrl, { options: { site, role, reportIntervalMs: INTERVAL_MS, staleAfterMs: STALE_AFTER_MS } });
  apps.push(app);
  await app.app.ready();
  return app;
}

beforeAll(async () => {
  [hub, postgres] = await Promise.all([startNats({ domain: "primary", leafnodeListen: true }), startPostgres()]);
  leaf = await startNats({ domain: "secondary1", leafnodeRemotes: [hub.leafnodeUrl!] });
  await waitForLeafnodes(hub);
  primaryUrl = await postgres.createDatabase("sites_primary");
  secondaryUrl = await postgres.createDatabase("sites_secondary");
  const primaryDb = createDatabase<unknown>({ url: primaryUrl, poolSize: 2, logger });
  const secondaryDb = createDatabase<TrackingDatabase>({ url: secondaryUrl, poolSize: 2, logger });
  pools.push(primaryDb, secondaryDb as unknown as Database<unknown>);
  await createGeoEventsTable(primaryDb.db);
  await migrateTracking(secondaryDb.db);
  await syncedRow(secondaryDb.db, "team/ok");
  await syncedRow(secondaryDb.db, "team/ok2");
  await failedRow(secondaryDb.db, "team/broken", "tag v1: boom");
});

afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await Promise.all(pools.map((p) => p.close()));
  await Promise.all([leaf?.stop(), hub?.stop(), postgres?.stop()]);
});

describe("sites view on one NATS", () => {
  it("lists both sites from their reports, sorted, then shows the one that stopped reporting as stale", async () => {
    const primary = await start(hub.url, primaryUrl, "primary1", "primary");
    const secondary = await start(hub.url, secondaryUrl, "secondary1", "secondary");

    await waitUntil("both apps to know both sites", async () => (await sites(primary)).length === 2 && (await sites(secondary)).length === 2);
    const seen = await sites(primary);
    expect(seen.map((s) => s.site)).toEqual(["primary1", "secondary1"]);
    const [p, s] = seen;
    expect(p).toMatchObject({ site: "primary1", role: "primary", stale: false, health: "ok", report: { site: "primary1", role: "primary", paused: false } });
    expect(s).toMatchObject({
      site: "secondary1",
      role: "secondary",
      stale: false,
      health: "failing",
      report: { counts: { pending: 0, started: 0, synced: 2, failed: 1 }, paused: false },
    });
    expect(Date.now() - Date.parse(s!.last_seen_at)).toBeLessThan(STALE_AFTER_MS);

    // Reports keep coming every interval.
    const firstSeen = Date.parse(s!.last_seen_at);
    await waitUntil("a newer report of secondary1", async () => Date.parse((await sites(primary))[1]!.last_seen_at) > firstSeen);

    // Pausing shows up in the next report, which the action sends at once.
    const paused = await secondary.app.inject({ method: "POST", url: "/api/v1/pause", headers: ADMIN });
    expect(paused.statusCode).toBe(200);
    await waitUntil("the primary to see secondary1 paused", async () => (await sites(primary))[1]!.report.paused === true);
    await secondary.app.inject({ method: "POST", url: "/api/v1/resume", headers: ADMIN });
    await waitUntil("the primary to see secondary1 resumed", async () => (await sites(primary))[1]!.report.paused === false);

    await secondary.close();
    const closedAt = Date.now();
    await waitUntil("secondary1 to go stale", async () => (await sites(primary))[1]!.stale, 5_000);
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(STALE_AFTER_MS - INTERVAL_MS - 50);
    const after = await sites(primary);
    expect(after[1]).toMatchObject({ site: "secondary1", stale: true, health: "stale" });
    expect(after[0]).toMatchObject({ site: "primary1", stale: false, health: "ok" });

    const metrics = (await primary.app.inject("/metrics")).body;
    expect(metrics).toMatch(/^georep_status_sites\{health="stale"\} 1$/m);
    expect(metrics).toMatch(/^georep_status_reports_received_total\{outcome="valid"\} [1-9]\d*$/m);
    await primary.close();
  });

  it("ignores invalid reports and reports whose site does not match the subject", async () => {
    const primary = await start(hub.url, primaryUrl, "primary1", "primary");
    const nc: NatsConnection = await connectNats({ servers: hub.url, name: "status-test-publisher", logger });
    try {
      const report: SiteStatusReport = {
        site: "intruder",
        role: "secondary",
        counts: { pending: 0, started: 0, synced: 0, failed: 0 },
        lag_seconds: { p50: null, p99: null },
        bytes_copied: 0,
        last_event_at: null,
        reported_at: new Date().toISOString(),
      };
      nc.publish(siteStatusSubject("other"), encodeJson(SiteStatusReport, report));
      nc.publish(siteStatusSubject("broken"), "{not json");
      nc.publish(siteStatusSubject("partial"), JSON.stringify({ site: "partial", role: "secondary" }));
      // A valid report of a site that never sent `paused` (an older status service).
      nc.publish(siteStatusSubject("older"), encodeJson(SiteStatusReport, { ...report, site: "older" }));
      await nc.flush();
      await waitUntil("the valid report", async () => (await sites(primary)).some((s) => s.site === "older"));
      expect((await sites(primary)).map((s) => s.site)).toEqual(["older", "primary1"]);
      expect((await primary.app.inject("/metrics")).body).toMatch(/^georep_status_reports_received_total\{outcome="invalid"\} 3$/m);
    } finally {
      await nc.close();
      await primary.close();
    }
  });
});

describe("sites view across a leafnode", () => {
  it("carries a secondary's report to the primary and the primary's to the secondary", async () => {
    const primary = await start(hub.url, primaryUrl, "primary1", "primary");
    const secondary = await start(leaf.url, secondaryUrl, "secondary1", "secondary");
    await waitUntil("the primary to see secondary1", async () => (await sites(primary)).some((s) => s.site === "secondary1" && !s.stale));
    await waitUntil("secondary1 to see the primary", async () => (await sites(secondary)).some((s) => s.site === "primary1" && !s.stale));
    const entry = (await sites(primary)).find((s) => s.site === "secondary1")!;
    expect(entry).toMatchObject({ role: "secondary", health: "failing", report: { counts: { failed: 1, synced: 2 } } });
  });
});

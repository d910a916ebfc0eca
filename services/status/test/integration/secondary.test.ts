/**
 * The status API of a secondary site on real servers: nats-server,
 * Postgres with the tracking tables, and two Distribution registries (the
 * primary's and the site's own). Every `describe` has its own database.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { LightMyRequestResponse } from "fastify";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNats, createDatabase } from "@georep/runtime";
import type { Database } from "@georep/runtime";
import { createRegistryClient } from "@georep/registry-client";
import type { RegistryClient } from "@georep/registry-client";
import { resyncSubject } from "@georep/schema";
import { migrateTracking, pauseState } from "@georep/tracking";
import type { TrackingDatabase } from "@georep/tracking";
import { startNats, startPostgres, startRegistry } from "@georep/testing";
import type { RunningNats, RunningPostgres, RunningRegistry } from "@georep/testing";
import { encodeCursor } from "../../src/cursor.js";
import type { RepositorySort, SortOrder } from "../../src/cursor.js";
import { ADMIN, failedRow, logger, pendingRow, pushImage, startApp, syncedRow, waitUntil } from "../helpers.js";
import type { TestApp } from "../helpers.js";

const SITE = "secondary1";

let nats: RunningNats;
let postgres: RunningPostgres;
let primaryRegistry: RunningRegistry;
let secondaryRegistry: RunningRegistry;
let primary: RegistryClient;
let secondary: RegistryClient;
let nc: NatsConnection;
const apps: TestApp[] = [];
const databases: Database<TrackingDatabase>[] = [];
let dbCounter = 0;

/** A fresh, migrated database: its URL and a pool on it. */
async function freshDatabase(): Promise<{ url: string; db: Database<TrackingDatabase> }> {
  const url = await postgres.createDatabase(`status_secondary_${++dbCounter}_${process.pid}`);
  const db = createDatabase<TrackingDatabase>({ url, poolSize: 2, logger });
  databases.push(db);
  await migrateTracking(db.db);
  return { url, db };
}

async function app(databaseUrl: string, overrides: Parameters<typeof startApp>[2] = {}): Promise<TestApp> {
  const a = await startApp(nats.url, databaseUrl, { registries: { primary, secondary }, ...overrides, options: { site: SITE, ...overrides.options } });
  apps.push(a);
  return a;
}

const json = <T = Record<string, unknown>>(res: LightMyRequestResponse): T => res.json<T>();

/** Checks the contract's error shape and returns the body. */
function expectError(res: LightMyRequestResponse, status: number, code: string): { code: string; message: string } {
  expect({ status: res.statusCode, body: res.json<unknown>() }).toMatchObject({ status, body: { code } });
  const body = res.json<{ code: string; message: string }>();
  expect(typeof body.message).toBe("string");
  expect(body.message.length).toBeGreaterThan(0);
  expect(res.headers["content-type"]).toMatch(/^application\/json/);
  return body;
}

beforeAll(async () => {
  [nats, postgres, primaryRegistry, secondaryRegistry] = await Promise.all([startNats({ domain: SITE }), startPostgres(), startRegistry(), startRegistry()]);
  primary = createRegistryClient({ url: primaryRegistry.url });
  secondary = createRegistryClient({ url: secondaryRegistry.url });
  nc = await connectNats({ servers: nats.url, name: "status-test-responder", logger });
});

afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await Promise.all(databases.map((d) => d.close()));
  await nc?.close();
  await Promise.all([nats?.stop(), postgres?.stop(), primaryRegistry?.stop(), secondaryRegistry?.stop()]);
});

describe("site summary", () => {
  it("counts states and derives progress, lag and totals from real tracking rows", async () => {
    const { url, db } = await freshDatabase();
    const { app: status } = await app(url);

    const empty = json(await status.inject("/api/v1/site"));
    expect(empty).toMatchObject({ site: SITE, role: "secondary", paused: false, total: 0, progress: 1, lag_seconds: { p50: null, p99: null }, events: null });
    expect(empty.last_synced_at).toBeNull();

    await syncedRow(db.db, "team/a", { eventAt: new Date(Date.now() - 2_000), bytes: 100 });
    await syncedRow(db.db, "team/b", { eventAt: new Date(Date.now() - 4_000), bytes: 50 });
    await failedRow(db.db, "team/c", "tag v1: primary answered 500");
    await pendingRow(db.db, "team/d");

    const res = await status.inject("/api/v1/site");
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(res.headers["cache-control"]).toBe("no-store");
    const summary = json<{
      counts: Record<string, number>;
      total: number;
      progress: number;
      lag_seconds: { p50: number; p99: number };
      bytes_copied: number;
      blobs_copied: number;
      last_event_at: string;
      last_synced_at: string;
      generated_at: string;
    }>(res);
    expect(summary.counts).toEqual({ pending: 1, started: 0, synced: 2, failed: 1 });
    expect(summary.total).toBe(4);
    expect(summary.progress).toBe(0.5);
    // Two lag samples, about 2 s and 4 s.
    expect(summary.lag_seconds.p50).toBeGreaterThanOrEqual(2.9);
    expect(summary.lag_seconds.p50).toBeLessThan(4);
    expect(summary.lag_seconds.p99).toBeGreaterThanOrEqual(3.9);
    expect(summary.lag_seconds.p99).toBeLessThan(5);
    expect(summary.bytes_copied).toBe(150);
    expect(summary.blobs_copied).toBe(2);
    expect(Date.parse(summary.last_synced_at)).toBeGreaterThan(Date.now() - 60_000);
    expect(Date.parse(summary.last_event_at)).toBeGreaterThan(Date.now() - 60_000);
    expect(Date.parse(summary.generated_at)).toBeGreaterThan(Date.now() - 60_000);
  });

  it("rounds progress down so an unfinished site never shows 1", async () => {
    const { url, db } = await freshDatabase();
    const { app: status } = await app(url);
    for (let i = 0; i < 12; i++) await syncedRow(db.db, `many/r${i}`);
    await pendingRow(db.db, "many/last");
    expect(json(await status.inject("/api/v1/site"))).toMatchObject({ total: 13, progress: 0.923 });
  });
});

describe("repositories list", () => {
  interface Seed {
    repository: string;
    state: "pending" | "started" | "synced" | "failed";
    retry_count: number;
    updated_at: string;
    last_synced_at: string | null;
  }
  const seeds: Seed[] = [];
  let status: TestApp["app"];

  beforeAll(async () => {
    const { url, db } = await freshDatabase();
    ({ app: status } = await app(url));
    const states = ["pending", "synced", "failed", "started"] as const;
    for (let i = 0; i < 23; i++) {
      // Ties in every sort key (the repository breaks them), microseconds that a JS Date would lose,
      // and never-synced rows.
      const micro = String(i % 5).padStart(6, "0");
      seeds.push({
        repository: `${i % 3 === 0 ? "team" : "other"}/app-${String((i * 7) % 23).padStart(2, "0")}`,
        state: states[i % 4]!,
        retry_count: i % 4,
        updated_at: `2026-01-01 00:00:0${i % 3}.${micro}+00`,
        last_synced_at: i % 5 === 0 ? null : `2026-02-0${(i % 4) + 1} 12:00:00.00000${i % 2}+00`,
      });
    }
    for (const s of seeds) {
      await sql`
        insert into repository_sync (repository, state, retry_count, updated_at, last_synced_at)
        values (${s.repository}, ${s.state}, ${s.retry_count}, ${s.updated_at}::timestamptz, ${s.last_synced_at}::timestamptz)`.execute(db.db);
    }
  });

  const micros = (ts: string | null): bigint => {
    if (ts === null) return -1n;
    const [whole, fraction] = ts.replace("+00", "").split(".");
    return BigInt(Date.parse(`${whole!.replace(" ", "T")}Z`)) * 1000n + BigInt(fraction ?? "0");
  };
  const keyOf = (s: Seed, sort: RepositorySort): bigint | string =>
    sort === "repository" ? s.repository : sort === "retry_count" ? BigInt(s.retry_count) : micros(sort === "updated_at" ? s.updated_at : s.last_synced_at);
  const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));
  function expected(sort: RepositorySort, order: SortOrder, filter: (s: Seed) => boolean = () => true): string[] {
    const sign = order === "asc" ? 1 : -1;
    return seeds
      .filter(filter)
      .sort((a, b) => {
        const ka = keyOf(a, sort);
        const kb = keyOf(b, sort);
        const c = typeof ka === "string" ? byteOrder(ka, kb as string) : ka < (kb as bigint) ? -1 : ka > (kb as bigint) ? 1 : 0;
        return sign * (c !== 0 ? c : byteOrder(a.repository, b.repository));
      })
      .map((s) => s.repository);
  }

  async function walk(query: string, limit: number): Promise<{ names: string[]; pages: number }> {
    const names: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: LightMyRequestResponse = await status.inject(`/api/v1/repositories?${query}&limit=${limit}${cursor === null ? "" : `&cursor=${cursor}`}`);
      expect(res.statusCode, res.body).toBe(200);
      const page: { items: { repository: string }[]; next_cursor: string | null } = json(res);
      expect(page.items.length).toBeLessThanOrEqual(limit);
      names.push(...page.items.map((r) => r.repository));
      cursor = page.next_cursor;
      pages++;
      expect(pages).toBeLessThan(30);
    } while (cursor !== null);
    return { names, pages };
  }

  for (const sort of ["repository", "updated_at", "last_synced_at", "retry_count"] as const) {
    for (const order of ["asc", "desc"] as const) {
      it(`pages through every row sorted by ${sort} ${order}`, async () => {
        const { names, pages } = await walk(`sort=${sort}&order=${order}`, 4);
        expect(names).toEqual(expected(sort, order));
        expect(pages).toBe(6);
      });
    }
  }

  it("sorts by repository ascending with limit 50 by default, in one page", async () => {
    const page = json<{ items: { repository: string }[]; next_cursor: string | null }>(await status.inject("/api/v1/repositories"));
    expect(page.items.map((r) => r.repository)).toEqual(expected("repository", "asc"));
    expect(page.next_cursor).toBeNull();
  });

  it("filters by state and by a case-sensitive substring of the name, across pages", async () => {
    const { names } = await walk("state=failed&name=team/&sort=updated_at&order=desc", 2);
    expect(names).toEqual(expected("updated_at", "desc", (s) => s.state === "failed" && s.repository.includes("team/")));
    expect(names.length).toBeGreaterThan(0);
    const upper = json<{ items: unknown[] }>(await status.inject("/api/v1/repositories?name=TEAM"));
    expect(upper.items).toEqual([]);
  });

  it("returns rows with every field of RepositoryRow", async () => {
    const page = json<{ items: Record<string, unknown>[] }>(await status.inject("/api/v1/repositories?limit=1"));
    expect(Object.keys(page.items[0]!).sort()).toEqual(
      [
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
      ].sort(),
    );
    expect(page.items[0]).toMatchObject({ repository: expected("repository", "asc")[0], unremovable_tags: [], missing_on_primary: false });
  });

  it("refuses a cursor that does not decode, was tampered with, or was made for another sort or order", async () => {
    const first = json<{ next_cursor: string }>(await status.inject("/api/v1/repositories?sort=retry_count&limit=2"));
    expect(first.next_cursor).toEqual(expect.any(String));
    const cases: [string, RegExp][] = [
      ["/api/v1/repositories?cursor=not*base64", /cursor/],
      [`/api/v1/repositories?cursor=${Buffer.from("{}").toString("base64url")}`, /cursor/],
      [`/api/v1/repositories?sort=updated_at&cursor=${encodeCursor({ sort: "updated_at", order: "asc", key: "yesterday", repository: "x" })}`, /cursor/],
      [`/api/v1/repositories?cursor=${first.next_cursor}`, /cursor.*sort=repository&order=asc/],
      [`/api/v1/repositories?sort=retry_count&order=desc&cursor=${first.next_cursor}`, /cursor/],
    ];
    for (const [url, message] of cases) {
      const body = expectError(await status.inject(url), 400, "invalid_request");
      expect(body.message, url).toMatch(message);
    }
    // The same cursor with its own sort and order works.
    expect((await status.inject(`/api/v1/repositories?sort=retry_count&limit=2&cursor=${first.next_cursor}`)).statusCode).toBe(200);
  });

  it("refuses bad query values with 400 naming the field", async () => {
    const cases: [string, string][] = [
      ["limit=0", "limit"],
      ["limit=501", "limit"],
      ["limit=ten", "limit"],
      ["sort=size", "sort"],
      ["order=up", "order"],
      ["state=lost", "state"],
      ["name=a..b", "name"],
      ["name=a%01b", "name"],
      [`name=${"a".repeat(256)}`, "name"],
    ];
    for (const [query, field] of cases) {
      const body = expectError(await status.inject(`/api/v1/repositories?${query}`), 400, "invalid_request");
      expect(body.message, query).toContain(`"${field}"`);
    }
  });
});

describe("repository detail", () => {
  let status: TestApp["app"];
  const digests: Record<string, string> = {};

  beforeAll(async () => {
    const { url, db } = await freshDatabase();
    ({ app: status } = await app(url));
    digests.v1 = await pushImage(primary, "detail/web", "v1", "one");
    digests.v2p = await pushImage(primary, "detail/web", "v2", "two");
    digests.v3 = await pushImage(primary, "detail/web", "v3", "three");
    expect(await pushImage(secondary, "detail/web", "v1", "one")).toBe(digests.v1);
    digests.v2s = await pushImage(secondary, "detail/web", "v2", "two-old");
    digests.old = await pushImage(secondary, "detail/web", "old", "gone");
    await syncedRow(db.db, "detail/web", { bytes: 42 });
    await failedRow(db.db, "detail/fresh", "tag latest: secondary answered 500");
    await pushImage(primary, "detail/fresh", "latest", "fresh");
  });

  it("shows the tracking row, both sides' tags and the recent syncs", async () => {
    const res = await status.inject("/api/v1/repositories/detail/web");
    expect(res.statusCode, res.body).toBe(200);
    const detail = json<{ repository: Record<string, unknown>; tags: unknown[]; tags_error: unknown; recent_syncs: Record<string, unknown>[] }>(res);
    expect(detail.repository).toMatchObject({ repository: "detail/web", state: "synced", bytes_copied: 42, synced_generation: 1, pending_generation: 1 });
    expect(detail.tags_error).toBeNull();
    expect(digests.v2p).not.toBe(digests.v2s);
    expect(detail.tags).toEqual([
      { tag: "old", primary_digest: null, secondary_digest: digests.old, in_sync: false },
      { tag: "v1", primary_digest: digests.v1, secondary_digest: digests.v1, in_sync: true },
      { tag: "v2", primary_digest: digests.v2p, secondary_digest: digests.v2s, in_sync: false },
      { tag: "v3", primary_digest: digests.v3, secondary_digest: null, in_sync: false },
    ]);
    expect(detail.recent_syncs).toHaveLength(1);
    expect(detail.recent_syncs[0]).toMatchObject({ outcome: "synced", generation: 1, reason: "event", bytes_copied: 42, error: null, duration_ms: 5 });
  });

  it("shows a repository the secondary registry does not have yet, and its failed sync", async () => {
    const detail = json<{ repository: Record<string, unknown>; tags: unknown[]; tags_error: unknown; recent_syncs: Record<string, unknown>[] }>(
      await status.inject("/api/v1/repositories/detail/fresh"),
    );
    expect(detail.repository).toMatchObject({ state: "failed", retry_count: 1, last_sync_failure: "tag latest: secondary answered 500" });
    expect(detail.tags).toEqual([{ tag: "latest", primary_digest: expect.stringMatching(/^sha256:/) as unknown, secondary_digest: null, in_sync: false }]);
    expect(detail.tags_error).toBeNull();
    expect(detail.recent_syncs[0]).toMatchObject({ outcome: "failed", error: "tag latest: secondary answered 500", reason: "backfill" });
  });

  it("answers 404 for an untracked repository and 400 for a name that is not one", async () => {
    expect(expectError(await status.inject("/api/v1/repositories/detail/nothing"), 404, "not_found").message).toContain("detail/nothing");
    for (const path of ["detail/..%2Fweb", "Detail/Web", "detail/%00x", `a/${"b".repeat(260)}`, "detail/web/"]) {
      const body = expectError(await status.inject(`/api/v1/repositories/${path}`), 400, "invalid_request");
      expect(body.message, path).toContain('"repository"');
    }
  });
});

describe("actions", () => {
  let status: TestApp["app"];
  let db: Database<TrackingDatabase>;
  let responder: Subscription | undefined;
  const received: Record<string, unknown>[] = [];

  /** Answers resync requests like the dispatcher does. */
  async function respond(answer: (request: Record<string, unknown>) => unknown): Promise<void> {
    responder?.unsubscribe();
    const sub = nc.subscribe(resyncSubject(SITE), { queue: "dispatcher" });
    responder = sub;
    void (async () => {
      for await (const message of sub) {
        const request = message.json<Record<string, unknown>>();
        received.push(request);
        message.respond(JSON.stringify(answer(request)));
      }
    })();
    await nc.flush();
  }

  beforeAll(async () => {
    const fresh = await freshDatabase();
    db = fresh.db;
    ({ app: status } = await app(fresh.url));
    await syncedRow(db.db, "act/one");
    await failedRow(db.db, "act/two", "tag v1: boom");
  });

  afterAll(() => responder?.unsubscribe());

  it("sends a repository resync to the dispatcher and answers 202 with its count", async () => {
    await respond((r) => ({ accepted: r.repository === undefined ? 0 : 1 }));
    received.length = 0;
    const res = await status.inject({ method: "POST", url: "/api/v1/repositories/act/one/resync", headers: ADMIN });
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json()).toEqual({ accepted: 1 });
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ repository: "act/one", requested_by: expect.stringContaining("status") as unknown });
    expect(received[0]!.only_failed).toBeUndefined();
  });

  it("sends resync all and resync failed", async () => {
    await respond((r) => ({ accepted: r.only_failed === true ? 1 : 2 }));
    received.length = 0;
    const failed = await status.inject({ method: "POST", url: "/api/v1/resync", headers: ADMIN, payload: { scope: "failed" } });
    expect([failed.statusCode, failed.json()]).toEqual([202, { accepted: 1 }]);
    const all = await status.inject({ method: "POST", url: "/api/v1/resync", headers: ADMIN, payload: { scope: "all" } });
    expect([all.statusCode, all.json()]).toEqual([202, { accepted: 2 }]);
    expect(received.map((r) => [r.repository, r.only_failed])).toEqual([
      [undefined, true],
      [undefined, undefined],
    ]);
  });

  it("needs the admin token: 401 without one, 403 when wrong, in constant time", async () => {
    await respond(() => ({ accepted: 1 }));
    received.length = 0;
    const routes = [
      { method: "POST" as const, url: "/api/v1/repositories/act/one/resync" },
      { method: "POST" as const, url: "/api/v1/resync", payload: { scope: "all" } },
      { method: "POST" as const, url: "/api/v1/pause" },
      { method: "POST" as const, url: "/api/v1/resume" },
    ];
    for (const route of routes) {
      const none = await status.inject(route);
      expectError(none, 401, "unauthorized");
      expect(none.headers["www-authenticate"]).toMatch(/^Bearer /);
      expectError(await status.inject({ ...route, headers: { authorization: "Basic YWRtaW46YWRtaW4=" } }), 401, "unauthorized");
      expectError(await status.inject({ ...route, headers: { authorization: "Bearer wrong-token" } }), 403, "forbidden");
      expectError(await status.inject({ ...route, headers: { authorization: `Bearer ${ADMIN.authorization.slice(7)}x` } }), 403, "forbidden");
    }
    expect(received).toEqual([]);
    expect((await pauseState(db.db)).paused).toBe(false);
  });

  it("answers 503 when no dispatcher answers or the dispatcher cannot record the request", async () => {
    await respond(() => ({ error: "cannot record the resync request now; try again" }));
    expect(expectError(await status.inject({ method: "POST", url: "/api/v1/resync", headers: ADMIN, payload: { scope: "all" } }), 503, "unavailable").message).toContain(
      "cannot record",
    );
    responder?.unsubscribe();
    responder = undefined;
    await nc.flush();
    const body = expectError(await status.inject({ method: "POST", url: "/api/v1/repositories/act/two/resync", headers: ADMIN }), 503, "unavailable");
    expect(body.message).toContain(resyncSubject(SITE));
  });

  it("refuses bad bodies, unknown repositories and paths that are not actions", async () => {
    await respond(() => ({ accepted: 1 }));
    received.length = 0;
    const bad: [unknown, string][] = [
      [{ scope: "some" }, '"scope"'],
      [{ scope: "all", extra: 1 }, '"extra"'],
      [{}, '"scope"'],
      [undefined, "body"],
    ];
    for (const [payload, field] of bad) {
      const res = await status.inject({ method: "POST", url: "/api/v1/resync", headers: { ...ADMIN, "content-type": "application/json" }, payload: payload === undefined ? "" : JSON.stringify(payload) });
      expect(expectError(res, 400, "invalid_request").message, JSON.stringify(payload)).toContain(field);
    }
    expectError(await status.inject({ method: "POST", url: "/api/v1/resync", headers: { ...ADMIN, "content-type": "application/json" }, payload: "{scope" }), 400, "invalid_request");
    expectError(await status.inject({ method: "POST", url: "/api/v1/repositories/act/nothing/resync", headers: ADMIN }), 404, "not_found");
    expectError(await status.inject({ method: "POST", url: "/api/v1/repositories/act/one", headers: ADMIN }), 404, "not_found");
    expect(expectError(await status.inject({ method: "POST", url: "/api/v1/repositories/act/..%2Fone/resync", headers: ADMIN }), 400, "invalid_request").message).toContain(
      '"repository"',
    );
    expect(received).toEqual([]);
  });

  it("pauses and resumes: site_control, the summary and this site's report follow", async () => {
    const paused = await status.inject({ method: "POST", url: "/api/v1/pause", headers: ADMIN });
    expect([paused.statusCode, paused.json()]).toEqual([200, { paused: true }]);
    expect(await pauseState(db.db)).toMatchObject({ paused: true, pausedBy: expect.stringContaining("status") as unknown });
    expect(json(await status.inject("/api/v1/site")).paused).toBe(true);
    await waitUntil("the site report to say paused", async () => {
      const sites = json<{ items: { site: string; report: { paused?: boolean } }[] }>(await status.inject("/api/v1/sites"));
      return sites.items.find((s) => s.site === SITE)?.report.paused === true;
    });

    const resumed = await status.inject({ method: "POST", url: "/api/v1/resume", headers: { ...ADMIN, "content-type": "application/json" }, payload: "" });
    expect([resumed.statusCode, resumed.json()]).toEqual([200, { paused: false }]);
    expect((await pauseState(db.db)).paused).toBe(false);
    expect(json(await status.inject("/api/v1/site")).paused).toBe(false);
  });

  it("counts actions by kind and outcome in /metrics", async () => {
    const text = (await status.inject("/metrics")).body;
    expect(text).toMatch(/^georep_status_actions_total\{kind="resync_repository",outcome="accepted"\} 1$/m);
    expect(text).toMatch(/^georep_status_actions_total\{kind="resync_all",outcome="accepted"\} 1$/m);
    expect(text).toMatch(/^georep_status_actions_total\{kind="resync_failed",outcome="accepted"\} 1$/m);
    expect(text).toMatch(/^georep_status_actions_total\{kind="resync_all",outcome="error"\} 1$/m);
    expect(text).toMatch(/^georep_status_actions_total\{kind="resync_repository",outcome="rejected"\} 1$/m);
    expect(text).toMatch(/^georep_status_actions_total\{kind="pause",outcome="accepted"\} 1$/m);
    expect(text).toMatch(/^georep_status_actions_total\{kind="resume",outcome="accepted"\} 1$/m);
  });
});

describe("replication wait", () => {
  let status: TestApp["app"];

  beforeAll(async () => {
    const { url } = await freshDatabase();
    ({ app: status } = await app(url));
  });

  it("answers 200 once the tag appears on the secondary with the primary's digest", async () => {
    const digest = await pushImage(primary, "wait/app", "v1", "w1");
    // The secondary has the tag, but pointing elsewhere, until the "sync".
    await pushImage(secondary, "wait/app", "v1", "w0");
    const started = Date.now();
    const waiting = status.inject("/api/v1/replication/wait?repository=wait/app&tag=v1&timeout=20");
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(await pushImage(secondary, "wait/app", "v1", "w1")).toBe(digest);
    const res = await waiting;
    expect(res.statusCode, res.body).toBe(200);
    const body = json<{ repository: string; tag: string; digest: string; waited_ms: number }>(res);
    expect(body).toMatchObject({ repository: "wait/app", tag: "v1", digest });
    expect(body.waited_ms).toBeGreaterThanOrEqual(700);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("answers at once for a digest the secondary already has", async () => {
    const digest = await pushImage(secondary, "wait/digest", "x", "d1");
    const res = await status.inject(`/api/v1/replication/wait?repository=wait/digest&digest=${digest}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ repository: "wait/digest", tag: null, digest });
    expect(json<{ waited_ms: number }>(res).waited_ms).toBeLessThan(1_000);
  });

  it("answers 408 timeout when the content does not arrive in time", async () => {
    await pushImage(primary, "wait/late", "v1", "late");
    const started = Date.now();
    const body = expectError(await status.inject("/api/v1/replication/wait?repository=wait/late&tag=v1&timeout=1"), 408, "timeout");
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(elapsed).toBeLessThan(3_000);
    expect(body.message).toContain("not on the secondary");
  });

  it("refuses bad queries with 400 naming the field", async () => {
    const digest = `sha256:${"a".repeat(64)}`;
    const cases: [string, string][] = [
      ["tag=v1", "repository"],
      ["repository=wait/app", "tag"],
      [`repository=wait/app&tag=v1&digest=${digest}`, "digest"],
      ["repository=wait/app&tag=v1&timeout=0", "timeout"],
      ["repository=wait/app&tag=v1&timeout=601", "timeout"],
      ["repository=wait/app&tag=-bad", "tag"],
      ["repository=wait/app&digest=sha256", "digest"],
      ["repository=WAIT&tag=v1", "repository"],
    ];
    for (const [query, field] of cases) {
      expect(expectError(await status.inject(`/api/v1/replication/wait?${query}`), 400, "invalid_request").message, query).toContain(`"${field}"`);
    }
  });

  it("counts waits by outcome in /metrics", async () => {
    const text = (await status.inject("/metrics")).body;
    expect(text).toMatch(/^georep_status_replication_waits_total\{outcome="ok"\} 2$/m);
    expect(text).toMatch(/^georep_status_replication_waits_total\{outcome="timeout"\} 1$/m);
  });
});

describe("service endpoints", () => {
  let status: TestApp["app"];

  beforeAll(async () => {
    const { url } = await freshDatabase();
    // Its own site name: the other apps' reports of secondary1 must not change its own site's health.
    ({ app: status } = await app(url, { options: { site: "svc-site" } }));
  });

  it("serves /metrics in the Prometheus text format, with requests by route and status", async () => {
    await status.inject("/api/v1/site");
    await status.inject("/api/v1/repositories?limit=0");
    const res = await status.inject("/metrics");
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(res.body).toMatch(/^# TYPE georep_status_http_requests_total counter$/m);
    expect(res.body).toMatch(/^georep_status_http_requests_total\{route="\/api\/v1\/site",status="200"\} 1$/m);
    expect(res.body).toMatch(/^georep_status_http_requests_total\{route="\/api\/v1\/repositories",status="400"\} 1$/m);
    expect(res.body).toMatch(/^georep_status_reports_published_total\{outcome="ok"\} [1-9]/m);
    expect(res.body).toMatch(/^georep_status_sites\{health="ok"\} [1-9]$/m);
  });

  it("publishes an OpenAPI document listing the routes, and Swagger UI at /docs", async () => {
    const res = await status.inject("/docs/json");
    expect(res.statusCode).toBe(200);
    const doc = json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>(res);
    expect(doc.openapi).toMatch(/^3\./);
    const paths = Object.keys(doc.paths);
    for (const path of ["/api/v1/site", "/api/v1/repositories", "/api/v1/resync", "/api/v1/pause", "/api/v1/resume", "/api/v1/events", "/api/v1/replication/wait", "/api/v1/sites"]) {
      expect(paths, path).toContain(path);
    }
    expect(paths.some((p) => p.startsWith("/api/v1/repositories/{"))).toBe(true);
    expect(paths).toContain("/api/v1/sites/{site}/resync");
    expect(Object.keys(doc.paths["/api/v1/repositories"]!)).toEqual(["get"]);
    expect(JSON.stringify(doc.paths["/api/v1/resync"])).toContain("admin");
    const ui = await status.inject("/docs/");
    expect(ui.statusCode).toBe(200);
    expect(ui.headers["content-type"]).toMatch(/text\/html/);
  });

  it("serves the dashboard at / and answers unknown routes with 404 not_found", async () => {
    const page = await status.inject("/");
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toMatch(/^text\/html/);
    expectError(await status.inject("/api/v1/nothing"), 404, "not_found");
    expectError(await status.inject({ method: "DELETE", url: "/api/v1/site" }), 404, "not_found");
    expectError(await status.inject("/no-such-file.txt"), 404, "not_found");
  });

  it("answers primary-only endpoints with 409 wrong_role", async () => {
    expect(expectError(await status.inject("/api/v1/events"), 409, "wrong_role").message).toContain("primary");
    expectError(await status.inject({ method: "POST", url: "/api/v1/sites/secondary2/resync", headers: ADMIN, payload: { scope: "all" } }), 409, "wrong_role");
  });

  it("is ready when Postgres and NATS are", async () => {
    const res = await status.inject("/health/ready");
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: "ok", failing: [] });
  });
});

/**
 * The status API of the primary site on real servers: nats-server with
 * JetStream and Postgres with event-log's `geo_events` table (created as
 * event-log's migration creates it; the status service only reads it).
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNats, createDatabase } from "@georep/runtime";
import type { Database } from "@georep/runtime";
import { STREAMS, SiteStatusReport, encodeJson, resyncSubject, siteStatusSubject } from "@georep/schema";
import { startNats, startPostgres } from "@georep/testing";
import type { RunningNats, RunningPostgres } from "@georep/testing";
import { ADMIN, createGeoEventsTable, insertGeoEvent, logger, startApp, waitUntil } from "../helpers.js";
import type { TestApp } from "../helpers.js";

const SITE = "primary1";

let nats: RunningNats;
let postgres: RunningPostgres;
let nc: NatsConnection;
let database: Database<unknown>;
let status: TestApp;
const ids: string[] = [];

function expectError(res: LightMyRequestResponse, status: number, code: string): { code: string; message: string } {
  expect({ status: res.statusCode, body: res.json<unknown>() }).toMatchObject({ status, body: { code } });
  return res.json<{ code: string; message: string }>();
}

interface EventsPage {
  items: { id: string; event_id: string; repository: string; action: string; tag: string | null; digest: string | null; media_type: string | null; received_at: string; published_at: string | null }[];
  next_cursor: string | null;
}

beforeAll(async () => {
  [nats, postgres] = await Promise.all([startNats({ domain: "primary" }), startPostgres()]);
  nc = await connectNats({ servers: nats.url, name: "status-test-primary", logger });
  database = createDatabase<unknown>({ url: postgres.url, poolSize: 2, logger });
  await createGeoEventsTable(database.db);
  const repos = ["team/app", "team/db", "team/app", "team/app", "team/db", "team/app", "team/app"];
  for (const [i, repository] of repos.entries()) {
    ids.push(
      await insertGeoEvent(database.db, {
        id: `evt-${i + 1}`,
        repository,
        type: i === 4 ? "delete" : "push",
        tag: i === 4 ? undefined : `v${i + 1}`,
        digest: `sha256:${String(i + 1).repeat(64).slice(0, 64)}`,
        published: i !== 6,
      }),
    );
  }
  status = await startApp(nats.url, postgres.url, { options: { site: SITE, role: "primary" } });
});

afterAll(async () => {
  await status?.close();
  await database?.close();
  await nc?.close();
  await Promise.all([nats?.stop(), postgres?.stop()]);
});

describe("event log", () => {
  it("pages newest first by default, next_cursor being the `after` of the next page", async () => {
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const res: LightMyRequestResponse = await status.app.inject(`/api/v1/events?limit=3${after === null ? "" : `&after=${after}`}`);
      expect(res.statusCode, res.body).toBe(200);
      const page: EventsPage = res.json();
      seen.push(...page.items.map((e) => e.id));
      after = page.next_cursor;
      pages++;
    } while (after !== null && pages < 10);
    expect(seen).toEqual([...ids].reverse());
    expect(pages).toBe(3);
  });

  it("maps the geo_events columns to the contract's fields", async () => {
    const page = (await status.app.inject("/api/v1/events?limit=1")).json<EventsPage>();
    expect(page.next_cursor).toBe(ids[6]);
    expect(page.items).toEqual([
      {
        id: ids[6],
        event_id: "evt-7",
        repository: "team/app",
        action: "push",
        tag: "v7",
        digest: `sha256:${"7".repeat(64)}`,
        media_type: "application/vnd.oci.image.manifest.v1+json",
        received_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T.*Z$/) as unknown,
        published_at: null,
      },
    ]);
    const deletion = (await status.app.inject(`/api/v1/events?after=${ids[5]}&limit=1`)).json<EventsPage>().items[0]!;
    expect(deletion).toMatchObject({ id: ids[4], action: "delete", tag: null, repository: "team/db" });
    expect(deletion.published_at).toEqual(expect.any(String));
  });

  it("pages oldest first with order=asc and filters one repository exactly", async () => {
    const asc = (await status.app.inject(`/api/v1/events?order=asc&after=${ids[1]}&limit=2`)).json<EventsPage>();
    expect(asc.items.map((e) => e.id)).toEqual([ids[2], ids[3]]);
    expect(asc.next_cursor).toBe(ids[3]);
    const db = (await status.app.inject("/api/v1/events?repository=team/db")).json<EventsPage>();
    expect(db.items.map((e) => e.id)).toEqual([ids[4], ids[1]]);
    expect(db.next_cursor).toBeNull();
    expect((await status.app.inject("/api/v1/events?repository=team")).json<EventsPage>().items).toEqual([]);
  });

  it("refuses bad queries with 400 naming the field", async () => {
    for (const [query, field] of [
      ["after=abc", "after"],
      ["after=-1", "after"],
      ["limit=0", "limit"],
      ["limit=501", "limit"],
      ["order=newest", "order"],
      ["repository=team/..", "repository"],
      ["repository=Team/App", "repository"],
    ] as const) {
      expect(expectError(await status.app.inject(`/api/v1/events?${query}`), 400, "invalid_request").message, query).toContain(`"${field}"`);
    }
  });
});

describe("site summary on the primary", () => {
  it("fills events and leaves the secondary's fields at zero", async () => {
    const summary = (await status.app.inject("/api/v1/site")).json<Record<string, unknown>>();
    expect(summary).toMatchObject({
      site: SITE,
      role: "primary",
      paused: false,
      counts: { pending: 0, started: 0, synced: 0, failed: 0 },
      total: 0,
      progress: 1,
      lag_seconds: { p50: null, p99: null },
      bytes_copied: 0,
      last_synced_at: null,
      events: { total: 7, last_id: ids[6], dead_letters: 0 },
    });
    expect(summary.last_event_at).toEqual(expect.any(String));
  });

  it("counts the messages of the dead-letter stream", async () => {
    // The stream as event-log creates it, through JetStream's API over core NATS.
    const created = await nc.request(
      `$JS.API.STREAM.CREATE.${STREAMS.REGISTRY_EVENTS_DLQ.name}`,
      JSON.stringify({ name: STREAMS.REGISTRY_EVENTS_DLQ.name, subjects: STREAMS.REGISTRY_EVENTS_DLQ.subjects, retention: "limits", storage: "file" }),
      { timeout: 5_000 },
    );
    expect(created.json<{ error?: unknown }>().error).toBeUndefined();
    for (const n of [1, 2]) {
      const ack = await nc.request(`georep.dlq.registry.events.push.poison${n}`, "{}", { timeout: 5_000 });
      expect(ack.json<{ error?: unknown }>().error).toBeUndefined();
    }
    const summary = (await status.app.inject("/api/v1/site")).json<{ events: { dead_letters: number } }>();
    expect(summary.events.dead_letters).toBe(2);
  });
});

describe("actions on the primary", () => {
  let responder: Subscription | undefined;
  const received: Record<string, unknown>[] = [];

  /** Plays secondary1's dispatcher (across the leafnode in production; the hub routes the request). */
  async function respondAs(site: string, accepted: number): Promise<void> {
    responder?.unsubscribe();
    const sub = nc.subscribe(resyncSubject(site));
    responder = sub;
    void (async () => {
      for await (const message of sub) {
        received.push(message.json<Record<string, unknown>>());
        message.respond(JSON.stringify({ accepted }));
      }
    })();
    await nc.flush();
  }

  afterAll(() => responder?.unsubscribe());

  it("forwards a site resync to that secondary's dispatcher", async () => {
    await respondAs("secondary1", 5);
    received.length = 0;
    const all = await status.app.inject({ method: "POST", url: "/api/v1/sites/secondary1/resync", headers: ADMIN, payload: { scope: "all" } });
    expect([all.statusCode, all.json()]).toEqual([202, { accepted: 5 }]);
    const failed = await status.app.inject({ method: "POST", url: "/api/v1/sites/secondary1/resync", headers: ADMIN, payload: { scope: "failed" } });
    expect(failed.statusCode).toBe(202);
    const one = await status.app.inject({ method: "POST", url: "/api/v1/sites/secondary1/resync", headers: ADMIN, payload: { repository: "team/app" } });
    expect(one.statusCode).toBe(202);
    expect(received.map((r) => [r.repository, r.only_failed])).toEqual([
      [undefined, undefined],
      [undefined, true],
      ["team/app", undefined],
    ]);
  });

  it("refuses bad bodies, this site itself, and answers 404 for an unknown site, 503 for a known one without a dispatcher", async () => {
    await respondAs("secondary1", 5);
    received.length = 0;
    for (const payload of [{}, { scope: "all", repository: "team/app" }, { scope: "most" }, { repository: "Team" }]) {
      expectError(await status.app.inject({ method: "POST", url: "/api/v1/sites/secondary1/resync", headers: ADMIN, payload }), 400, "invalid_request");
    }
    expectError(await status.app.inject({ method: "POST", url: "/api/v1/sites/Bad.Site/resync", headers: ADMIN, payload: { scope: "all" } }), 400, "invalid_request");
    expect(expectError(await status.app.inject({ method: "POST", url: `/api/v1/sites/${SITE}/resync`, headers: ADMIN, payload: { scope: "all" } }), 400, "invalid_request").message).toContain(
      "site",
    );
    expect(received).toEqual([]);

    expect(expectError(await status.app.inject({ method: "POST", url: "/api/v1/sites/nowhere/resync", headers: ADMIN, payload: { scope: "all" } }), 404, "not_found").message).toContain(
      "nowhere",
    );

    // secondary2 reported its status, but its dispatcher does not answer.
    const report: SiteStatusReport = {
      site: "secondary2",
      role: "secondary",
      counts: { pending: 0, started: 0, synced: 3, failed: 0 },
      lag_seconds: { p50: null, p99: null },
      bytes_copied: 0,
      last_event_at: null,
      paused: false,
      reported_at: new Date().toISOString(),
    };
    nc.publish(siteStatusSubject("secondary2"), encodeJson(SiteStatusReport, report));
    await waitUntil("secondary2 to be known", async () =>
      (await status.app.inject("/api/v1/sites")).json<{ items: { site: string }[] }>().items.some((s) => s.site === "secondary2"),
    );
    const body = expectError(await status.app.inject({ method: "POST", url: "/api/v1/sites/secondary2/resync", headers: ADMIN, payload: { scope: "all" } }), 503, "unavailable");
    expect(body.message).toContain("georep.secondary2.resync");
  });

  it("needs the admin token", async () => {
    expectError(await status.app.inject({ method: "POST", url: "/api/v1/sites/secondary1/resync", payload: { scope: "all" } }), 401, "unauthorized");
    expectError(await status.app.inject({ method: "POST", url: "/api/v1/sites/secondary1/resync", headers: { authorization: "Bearer nope" }, payload: { scope: "all" } }), 403, "forbidden");
  });

  it("answers secondary-only endpoints with 409 wrong_role", async () => {
    const cases = [
      { method: "GET" as const, url: "/api/v1/repositories" },
      { method: "GET" as const, url: "/api/v1/repositories/team/app" },
      { method: "GET" as const, url: "/api/v1/replication/wait?repository=team/app&tag=v1" },
      { method: "POST" as const, url: "/api/v1/pause", headers: ADMIN },
      { method: "POST" as const, url: "/api/v1/resume", headers: ADMIN },
      { method: "POST" as const, url: "/api/v1/resync", headers: ADMIN, payload: { scope: "all" } },
      { method: "POST" as const, url: "/api/v1/repositories/team/app/resync", headers: ADMIN },
    ];
    for (const c of cases) expect(expectError(await status.app.inject(c), 409, "wrong_role").message, c.url).toContain("secondary");
  });
});

/**
 * Replicas and outages: two event-log instances on one stream and one
 * database, and a Postgres restart in the middle of a stream of events.
 */
import { jetstream } from "@nats-io/jetstream";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STREAM_NAMES, SUBJECTS, encodeSubjectToken } from "@georep/schema";
import type { GeoEvent, RegistryEvent } from "@georep/schema";
import { connectNats } from "@georep/runtime";
import { startNats, startPostgres } from "@georep/testing";
import type { RunningNats, RunningPostgres } from "@georep/testing";
import { consumerIdle, logger, publishRegistryEvent, readStream, registryEvent, startInstance, waitUntil } from "../helpers.js";
import type { Instance } from "../helpers.js";

let nats: RunningNats;
let postgres: RunningPostgres;
let nc: NatsConnection;
let js: JetStreamClient;
const instances: Instance[] = [];

beforeAll(async () => {
  [nats, postgres] = await Promise.all([startNats({ domain: "primary" }), startPostgres()]);
  nc = await connectNats({ servers: nats.url, name: "test-client", logger });
  js = jetstream(nc);
});

afterAll(async () => {
  await Promise.all(instances.map((i) => i.close()));
  await nc?.close();
  await Promise.all([nats?.stop(), postgres?.stop()]);
});

async function start(): Promise<Instance> {
  const instance = await startInstance(nats.url, postgres.url);
  instances.push(instance);
  return instance;
}

/** Counts of one repository's rows and GEO_EVENTS messages. */
async function tally(instance: Instance, repository: string) {
  const rows = await instance.database.db
    .selectFrom("geo_events")
    .select(["id", "registry_event_id", "published_at"])
    .where("repository", "=", repository)
    .orderBy("id")
    .execute();
  const messages = await readStream(nc, STREAM_NAMES.GEO_EVENTS, `${SUBJECTS.GEO_EVENTS}.*.${encodeSubjectToken(repository)}`);
  return { rows, messages };
}

async function publishedCount(instance: Instance, repository: string): Promise<number> {
  const { rows } = await sql<{ n: string }>`select count(*) as n from geo_events where repository = ${repository} and published_at is not null`.execute(
    instance.database.db,
  );
  return Number(rows[0]?.n ?? 0);
}

describe("event-log replicas and outages", () => {
  it("two instances on one stream and one database never duplicate rows or events", async () => {
    const [a, b] = await Promise.all([start(), start()]);
    const repo = "replicas/app";
    const events: RegistryEvent[] = Array.from({ length: 200 }, (_, i) => registryEvent({ repository: repo, tag: `r${i}` }));
    // Every event twice, with different Nats-Msg-Ids, so the replicas race on the same registry ids.
    await Promise.all(events.map((e) => publishRegistryEvent(js, e, `${e.id}#1`)));
    await Promise.all(events.map((e) => publishRegistryEvent(js, e, `${e.id}#2`)));

    await waitUntil("200 published rows", async () => (await publishedCount(a, repo)) === 200, 30_000);
    await waitUntil("the consumer idle", () => consumerIdle(nc));
    const { rows, messages } = await tally(a, repo);
    expect(rows).toHaveLength(200);
    expect(new Set(rows.map((r) => r.registry_event_id))).toEqual(new Set(events.map((e) => e.id)));
    expect(messages).toHaveLength(200);
    expect(new Set(messages.map((m) => m.msgId))).toEqual(new Set(rows.map((r) => r.id)));
    // Each message is the row its id names.
    const byId = new Map(rows.map((r) => [r.id, r.registry_event_id]));
    expect(messages.every((m) => byId.get(m.msgId ?? "") === (m.json as GeoEvent).source_event_id)).toBe(true);

    // Both replicas took part, and together they saw every delivery.
    const consumed = [a, b].map((i) => i.eventLog.metrics.get("eventsConsumed"));
    expect(consumed.every((n) => n > 0)).toBe(true);
    expect(consumed[0]! + consumed[1]!).toBeGreaterThanOrEqual(400);
    const inserted = [a, b].map((i) => i.eventLog.metrics.get("rowsInserted"));
    expect(inserted[0]! + inserted[1]!).toBe(200);

    await Promise.all([a.close(), b.close()]);
  });

  it("loses nothing when Postgres restarts in the middle of the stream", async () => {
    const instance = await start();
    const repo = "restart/app";
    const events: RegistryEvent[] = Array.from({ length: 120 }, (_, i) => registryEvent({ repository: repo, tag: `p${i}` }));
    const publishing = (async () => {
      for (const e of events) {
        await publishRegistryEvent(js, e);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await waitUntil("some rows before the restart", async () => (await publishedCount(instance, repo)) >= 20);
    await postgres.restart();
    await publishing;

    await waitUntil("all 120 rows published", async () => (await publishedCount(instance, repo)) === 120, 30_000);
    await waitUntil("the consumer idle", () => consumerIdle(nc));
    const { rows, messages } = await tally(instance, repo);
    expect(rows.map((r) => r.registry_event_id).sort()).toEqual(events.map((e) => e.id).sort());
    expect(messages).toHaveLength(120);
    expect(new Set(messages.map((m) => m.msgId))).toEqual(new Set(rows.map((r) => r.id)));
    // The outage was seen and ridden out with naks, not by luck.
    expect(instance.eventLog.metrics.get("retries")).toBeGreaterThan(0);
  });
});

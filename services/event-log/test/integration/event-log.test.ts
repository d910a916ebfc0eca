/**
 * One event-log instance on a real nats-server and Postgres: ordering,
 * duplicates, the DLQ, outbox repair and a GEO_EVENTS outage. Each test uses
 * its own repositories, so the tests share the servers and the streams.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  GeoEvent,
  STREAMS,
  STREAM_NAMES,
  SUBJECTS,
  encodeSubjectToken,
  registryEventSubject,
  validate,
} from "@georep/schema";
import { connectNats, ensureStream } from "@georep/runtime";
import { startNats, startPostgres } from "@georep/testing";
import type { RunningNats, RunningPostgres } from "@georep/testing";
import { DEAD_LETTER_HEADERS } from "../../src/consumer.js";
import {
  TEST_OPTIONS,
  consumerIdle,
  logger,
  publishRaw,
  publishRegistryEvent,
  readStream,
  registryEvent,
  startInstance,
  waitUntil,
} from "../helpers.js";
import type { Instance } from "../helpers.js";

let nats: RunningNats;
let postgres: RunningPostgres;
let instance: Instance;
let nc: NatsConnection;
let js: JetStreamClient;

beforeAll(async () => {
  [nats, postgres] = await Promise.all([startNats({ domain: "primary" }), startPostgres()]);
  instance = await startInstance(nats.url, postgres.url);
  nc = await connectNats({ servers: nats.url, name: "test-client", logger });
  js = jetstream(nc);
});

afterAll(async () => {
  await instance?.close();
  await nc?.close();
  await Promise.all([nats?.stop(), postgres?.stop()]);
});

const db = () => instance.database.db;
const rowsOf = (repository: string) =>
  db().selectFrom("geo_events").selectAll().where("repository", "=", repository).orderBy("id").execute();
const geoMessagesOf = (repository: string) =>
  readStream(nc, STREAM_NAMES.GEO_EVENTS, `${SUBJECTS.GEO_EVENTS}.*.${encodeSubjectToken(repository)}`);

async function allPublished(repository: string, count: number): Promise<boolean> {
  const rows = await rowsOf(repository);
  return rows.length === count && rows.every((r) => r.published_at !== null);
}

describe("event-log (real nats-server and Postgres)", () => {
  it("creates the three streams with the configured limits and the shared durable consumer", async () => {
    const jsm = await jetstreamManager(nc);
    for (const name of [STREAM_NAMES.REGISTRY_EVENTS, STREAM_NAMES.REGISTRY_EVENTS_DLQ, STREAM_NAMES.GEO_EVENTS]) {
      const { config } = await jsm.streams.info(name);
      expect(config.storage).toBe("file");
      expect(config.max_age).toBe(TEST_OPTIONS.streamMaxAgeMs * 1_000_000);
      expect(config.duplicate_window).toBe(TEST_OPTIONS.duplicateWindowMs * 1_000_000);
      expect(config.num_replicas).toBe(1);
    }
    const consumer = await jsm.consumers.info(STREAM_NAMES.REGISTRY_EVENTS, "event-log");
    expect(consumer.config.durable_name).toBe("event-log");
    expect(consumer.config.ack_policy).toBe("explicit");
    expect(consumer.config.filter_subject).toBe(SUBJECTS.REGISTRY_EVENTS_ALL);
  });

  it("turns registry events into geo_events rows and GEO_EVENTS messages, in order", async () => {
    const repo = "order/app";
    const events = [
      registryEvent({ repository: repo, action: "push", tag: "v1", occurred_at: "2025-01-02T03:04:05.123456789Z" }),
      registryEvent({ repository: repo, action: "mount", tag: undefined, from_repository: "base/alpine" }),
      registryEvent({ repository: repo, action: "delete", tag: undefined, media_type: undefined, size: undefined }),
      registryEvent({ repository: repo, action: "delete", digest: undefined, media_type: undefined, size: undefined, tag: "old" }),
      registryEvent({ repository: repo, action: "delete", digest: undefined, tag: undefined, media_type: undefined, size: undefined }),
    ];
    for (let i = 0; i < 15; i++) events.push(registryEvent({ repository: repo, tag: `t${i}` }));
    for (const e of events) await publishRegistryEvent(js, e);

    await waitUntil("20 published rows", () => allPublished(repo, events.length));
    const rows = await rowsOf(repo);
    expect(rows.map((r) => r.registry_event_id)).toEqual(events.map((e) => e.id));
    expect(rows.slice(0, 5).map((r) => r.event_type)).toEqual(["push", "mount", "delete", "delete", "repository_delete"]);
    expect(rows[0]?.occurred_at?.toISOString()).toBe("2025-01-02T03:04:05.123Z");
    expect(rows[0]?.received_at.toISOString()).toBe(new Date(events[0]!.received_at).toISOString());
    expect(rows[0]?.size).toBe("1234");
    expect(rows[1]?.from_repository).toBe("base/alpine");

    const messages = await geoMessagesOf(repo);
    expect(messages).toHaveLength(events.length);
    // Stream order is row-id order, and each message is its row.
    expect(messages.map((m) => m.msgId)).toEqual(rows.map((r) => r.id));
    const payloads = messages.map((m) => {
      const v = validate(GeoEvent, m.json);
      if (!v.ok) throw new Error(`not a GeoEvent: ${JSON.stringify(v.problems)}`);
      return v.value;
    });
    expect(payloads.map((p) => p.id)).toEqual(rows.map((r) => Number(r.id)));
    expect(payloads.map((p) => p.source_event_id)).toEqual(events.map((e) => e.id));
    expect(payloads[0]).toMatchObject({ event_type: "push", repository: repo, tag: "v1", digest: events[0]!.digest });
    expect(messages[4]?.subject).toBe(`${SUBJECTS.GEO_EVENTS}.repository_delete.order/app`);
    expect(payloads[4]).not.toHaveProperty("digest");
    expect(payloads[4]).not.toHaveProperty("tag");
  });

  it("never stores or publishes a registry event twice, whatever its Nats-Msg-Id", async () => {
    const repo = "dup/app";
    const before = instance.eventLog.metrics.get("duplicatesSkipped");
    const event = registryEvent({ repository: repo, trace: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" } });
    await publishRegistryEvent(js, event, "first-delivery");
    await publishRegistryEvent(js, event, "second-delivery");
    await publishRegistryEvent(js, event, "third-delivery");
    const sentinel = registryEvent({ repository: repo });
    await publishRegistryEvent(js, sentinel);

    await waitUntil("both rows published and the consumer idle", async () => (await allPublished(repo, 2)) && consumerIdle(nc));
    const rows = await rowsOf(repo);
    expect(rows.map((r) => r.registry_event_id)).toEqual([event.id, sentinel.id]);
    expect(instance.eventLog.metrics.get("duplicatesSkipped") - before).toBe(2);
    const messages = await geoMessagesOf(repo);
    expect(messages.map((m) => m.msgId)).toEqual(rows.map((r) => r.id));
    // The trace context travels from the registry event to GEO_EVENTS.
    expect(messages[0]?.headers.traceparent).toBe(event.trace?.traceparent);
  });

  it("publishes a row left unpublished when its registry event is redelivered", async () => {
    const repo = "redelivered/app";
    const event = registryEvent({ repository: repo });
    // A crash after the insert: the row exists, unpublished, and the message comes back.
    const inserted = await db()
      .insertInto("geo_events")
      .values({ registry_event_id: event.id, event_type: "push", repository: repo, digest: event.digest ?? null, received_at: event.received_at })
      .returning("id")
      .executeTakeFirstOrThrow();
    await publishRegistryEvent(js, event);

    await waitUntil("the row published", () => allPublished(repo, 1));
    await waitUntil("the consumer idle", () => consumerIdle(nc));
    const messages = await geoMessagesOf(repo);
    expect(messages.map((m) => m.msgId)).toEqual([inserted.id]);
    expect(await rowsOf(repo)).toHaveLength(1);
  });

  it("dead-letters invalid payloads with the reason and processes the valid ones beside them", async () => {
    const repo = "dlq/app";
    const subject = registryEventSubject("push", repo);
    const before = instance.eventLog.metrics.get("deadLettered");
    const first = registryEvent({ repository: repo });
    const last = registryEvent({ repository: repo });
    const { received_at: _omitted, ...missingReceivedAt } = registryEvent({ repository: repo });
    // Matches the RFC 3339 pattern, but there is no 13th month: Postgres refuses it.
    const impossibleDate = registryEvent({ repository: repo, occurred_at: "2025-13-45T00:00:00Z" });

    await publishRegistryEvent(js, first);
    await publishRaw(js, subject, "{not json", "poison-1");
    await publishRaw(js, subject, JSON.stringify(missingReceivedAt), "poison-2");
    await publishRegistryEvent(js, impossibleDate);
    await publishRegistryEvent(js, last);

    await waitUntil("the valid rows published and the consumer idle", async () => (await allPublished(repo, 2)) && consumerIdle(nc));
    expect((await rowsOf(repo)).map((r) => r.registry_event_id)).toEqual([first.id, last.id]);
    expect((await geoMessagesOf(repo)).map((m) => (m.json as GeoEvent).source_event_id)).toEqual([first.id, last.id]);

    const dead = await readStream(nc, STREAM_NAMES.REGISTRY_EVENTS_DLQ, `${SUBJECTS.REGISTRY_EVENTS_DLQ}.push.${encodeSubjectToken(repo)}`);
    expect(dead).toHaveLength(3);
    const reasons = dead.map((m) => m.headers[DEAD_LETTER_HEADERS.REASON] ?? "");
    expect(reasons[0]).toMatch(/^invalid RegistryEvent: \(root\): not JSON/);
    expect(reasons[1]).toMatch(/\/received_at: required/);
    expect(reasons[2]).toMatch(/^rejected by postgres: /);
    expect(dead[0]?.text).toBe("{not json");
    expect(dead.every((m) => m.headers[DEAD_LETTER_HEADERS.STREAM] === STREAM_NAMES.REGISTRY_EVENTS)).toBe(true);
    expect(dead[0]?.headers[DEAD_LETTER_HEADERS.MSG_ID]).toBe("poison-1");
    expect(dead.every((m) => m.subject === `${SUBJECTS.REGISTRY_EVENTS_DLQ}.push.${repo}`)).toBe(true);
    expect(instance.eventLog.metrics.get("deadLettered") - before).toBe(3);
  });

  it("the outbox publishes a row that was inserted but never published (crash after insert)", async () => {
    const repo = "outbox/app";
    const before = instance.eventLog.metrics.get("outboxRepublished");
    const inserted = await db()
      .insertInto("geo_events")
      .values({ registry_event_id: "crashed-before-publish", event_type: "delete", repository: repo, tag: "gone", received_at: new Date().toISOString() })
      .returning("id")
      .executeTakeFirstOrThrow();

    await waitUntil("the outbox to publish the row", () => allPublished(repo, 1), 10_000);
    const messages = await geoMessagesOf(repo);
    expect(messages).toHaveLength(1);
    expect(messages[0]?.msgId).toBe(inserted.id);
    expect(messages[0]?.json).toMatchObject({ id: Number(inserted.id), event_type: "delete", tag: "gone", source_event_id: "crashed-before-publish" });
    expect(instance.eventLog.metrics.get("outboxRepublished") - before).toBeGreaterThanOrEqual(1);

    // Republishing the same row (a second drain) is a JetStream duplicate, not a second event.
    await db().updateTable("geo_events").set({ published_at: null }).where("id", "=", inserted.id).execute();
    await waitUntil("the outbox to publish it again", () => allPublished(repo, 1), 10_000);
    expect(await geoMessagesOf(repo)).toHaveLength(1);
  });

  it("acks when GEO_EVENTS is down, keeps the row, and the outbox publishes in id order once it is back", async () => {
    const repo = "outage/app";
    const jsm = await jetstreamManager(nc);
    const failuresBefore = instance.eventLog.metrics.get("publishFailures");
    await jsm.streams.delete(STREAM_NAMES.GEO_EVENTS);

    const during = [registryEvent({ repository: repo }), registryEvent({ repository: repo })];
    for (const e of during) await publishRegistryEvent(js, e);
    await waitUntil("rows stored and their messages acked", async () => (await rowsOf(repo)).length === 2 && consumerIdle(nc));
    expect((await rowsOf(repo)).every((r) => r.published_at === null)).toBe(true);
    expect(instance.eventLog.metrics.get("publishFailures")).toBeGreaterThan(failuresBefore);
    expect(instance.eventLog.outbox.catchingUp).toBe(true);

    await ensureStream(jsm, {
      ...STREAMS.GEO_EVENTS,
      storage: "file",
      max_age: TEST_OPTIONS.streamMaxAgeMs * 1_000_000,
      duplicate_window: TEST_OPTIONS.duplicateWindowMs * 1_000_000,
      num_replicas: 1,
    });
    const after = registryEvent({ repository: repo });
    await publishRegistryEvent(js, after);
    await waitUntil("all three rows published", () => allPublished(repo, 3), 15_000);
    const rows = await rowsOf(repo);
    expect(rows.map((r) => r.registry_event_id)).toEqual([...during, after].map((e) => e.id));
    const messages = await geoMessagesOf(repo);
    expect(messages.map((m) => m.msgId)).toEqual(rows.map((r) => r.id));
    expect(instance.eventLog.outbox.catchingUp).toBe(false);
  });

  it("serves health and Prometheus metrics", async () => {
    const ready = await instance.eventLog.http.inject({ method: "GET", url: "/health/ready" });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: "ok", failing: [] });
    const metrics = await instance.eventLog.http.inject({ method: "GET", url: "/metrics" });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    const consumed = /^georep_event_log_events_consumed_total (\d+)$/m.exec(metrics.body);
    expect(Number(consumed?.[1])).toBe(instance.eventLog.metrics.get("eventsConsumed"));
    expect(Number(consumed?.[1])).toBeGreaterThan(20);
    for (const name of [
      "rows_inserted",
      "duplicates_skipped",
      "geo_events_published",
      "outbox_republished",
      "dead_lettered",
    ]) {
      expect(metrics.body).toMatch(new RegExp(`^# TYPE georep_event_log_${name}_total counter$`, "m"));
    }
  });
});

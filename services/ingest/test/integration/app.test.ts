/** The ingest routes with real NATS JetStream behind them (buildApp + inject). */
import { jetstream } from "@nats-io/jetstream";
import type { JetStreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { createHealth, createLogger } from "@georep/runtime";
import { STREAM_NAMES, SUBJECTS } from "@georep/schema";
import { startNats } from "@georep/testing";
import type { RunningNats } from "@georep/testing";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DEAD_LETTER_REASON_HEADER, buildApp } from "../../src/app.js";
import { createIngestMetrics } from "../../src/metrics.js";
import type { IngestMetrics } from "../../src/metrics.js";
import { createStreams, jetstreamManager, readStream } from "../helpers.js";

const SECRET = "Bearer test-secret-0123456789";
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const DIGEST = `sha256:${"a".repeat(64)}`;

let server: RunningNats;
let nc: NatsConnection;
let jsm: JetStreamManager;
let app: Awaited<ReturnType<typeof buildApp>>;
let metrics: IngestMetrics;
let counter = 0;

const event = (overrides: Record<string, unknown> = {}, target: Record<string, unknown> = {}) => ({
  id: `ev-${++counter}-${Date.now()}`,
  timestamp: "2026-11-26T10:00:00.123456789Z",
  action: "push",
  target: { mediaType: MANIFEST, digest: DIGEST, size: 500, repository: "team/app", tag: "v1", ...target },
  request: { method: "PUT" },
  ...overrides,
});

const post = (body: unknown, headers: Record<string, string> = {}) =>
  app.inject({
    method: "POST",
    url: "/api/v4/container_registry_event/events",
    headers: { authorization: SECRET, "content-type": "application/vnd.docker.distribution.events.v1+json", ...headers },
    payload: typeof body === "string" ? body : JSON.stringify(body),
  });

beforeAll(async () => {
  server = await startNats({ domain: "primary" });
  nc = await connect({ servers: server.url });
  jsm = await jetstreamManager(nc);
  await createStreams(jsm);
  metrics = createIngestMetrics();
  app = await buildApp({ js: jetstream(nc), secret: SECRET, logger: createLogger({ name: "ingest-test", level: "silent" }), metrics, health: createHealth(), publishTimeoutMs: 3000 });
});

afterAll(async () => {
  await app?.close();
  await nc?.close();
  await server?.stop();
});

beforeEach(async () => {
  await jsm.streams.purge(STREAM_NAMES.REGISTRY_EVENTS);
  await jsm.streams.purge(STREAM_NAMES.REGISTRY_EVENTS_DLQ);
});

describe("refused requests: clear 4xx JSON, nothing published", () => {
  it.each([
    ["no Authorization", { authorization: "" }, 401, "INGEST_ERR_UNAUTHORIZED"],
    ["a wrong secret", { authorization: "Bearer test-secret-0123456780" }, 401, "INGEST_ERR_UNAUTHORIZED"],
    ["a wrong content type", { "content-type": "text/plain" }, 415, "FST_ERR_CTP_INVALID_MEDIA_TYPE"],
  ])("%s", async (_what, headers, status, code) => {
    const res = await post({ events: [event()] }, headers);
    expect(res.statusCode).toBe(status);
    expect(res.json()).toMatchObject({ statusCode: status, code });
    expect((await jsm.streams.info(STREAM_NAMES.REGISTRY_EVENTS)).state.messages).toBe(0);
  });

  it("invalid JSON and a body that is not an envelope are 400", async () => {
    const bad = await post("{not json");
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: "INGEST_ERR_INVALID_JSON" });
    for (const body of [{}, [], { events: "x" }, "null"]) {
      const res = await post(body);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ code: "INGEST_ERR_NOT_AN_ENVELOPE" });
    }
  });

  it("a 2 MiB body is 413", async () => {
    const res = await post({ events: [event({ padding: "x".repeat(2 * 1024 * 1024) })] });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ statusCode: 413, code: "FST_ERR_CTP_BODY_TOO_LARGE" });
  });
});

describe("accepted envelopes", () => {
  it("publishes manifest events with Nats-Msg-Id, ignores pulls and blobs, dead-letters bad events beside them", async () => {
    const push = event();
    const del = event({ action: "delete" }, { mediaType: undefined, size: undefined, tag: undefined });
    const body = {
      events: [
        push,
        del,
        event({ action: "pull" }),
        event({}, { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", tag: undefined }),
        event({ action: "mount" }, { mediaType: "application/octet-stream", fromRepository: "team/other" }),
        { id: "no-target", timestamp: "2026-11-26T10:00:00Z", action: "push" },
        event({ action: "frobnicate" }),
        event({}, { repository: "team/../etc" }),
        event({}, { repository: "team/app\u0007bell" }),
      ],
    };
    const res = await post(body);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ received: 9, published: 2, duplicates: 0, ignored: 3, dead_lettered: 4 });

    const published = await readStream(jsm, STREAM_NAMES.REGISTRY_EVENTS);
    expect(published.map((m) => m.subject).sort()).toEqual(["georep.registry.events.delete.team/app", "georep.registry.events.push.team/app"]);
    const pushed = published.find((m) => m.subject.includes(".push."))!;
    expect(pushed.headers["Nats-Msg-Id"]).toBe(push.id);
    expect(pushed.data).toMatchObject({ id: push.id, action: "push", repository: "team/app", digest: DIGEST, tag: "v1", media_type: MANIFEST, size: 500, occurred_at: push.timestamp });
    expect(published.find((m) => m.subject.includes(".delete."))!.data).toMatchObject({ id: del.id, action: "delete", digest: DIGEST });

    const dead = await readStream(jsm, STREAM_NAMES.REGISTRY_EVENTS_DLQ);
    expect(dead).toHaveLength(4);
    const reasons = dead.map((m) => m.headers[DEAD_LETTER_REASON_HEADER] ?? "");
    expect(reasons.filter((r) => r.startsWith("invalid_event"))).toHaveLength(1);
    expect(reasons.filter((r) => r.startsWith("unknown_action: unknown action \"frobnicate\""))).toHaveLength(1);
    expect(reasons.filter((r) => r.startsWith("invalid_fields: /repository"))).toHaveLength(2);
    expect(dead.find((m) => m.data.id === "no-target")?.subject).toBe("georep.dlq.registry.events.push.-");

    expect(metrics.ignored.get({ reason: "pull" })).toBeGreaterThanOrEqual(1);
    expect(metrics.rejected.get({ reason: "unknown_action" })).toBeGreaterThanOrEqual(1);
    const text = (await app.inject({ method: "GET", url: "/metrics" })).body;
    expect(text).toMatch(/georep_ingest_events_published_total\{action="push"\} \d+/);
  });

  it("announces blob pushes of at least minBytes on georep.blobs.pushed, and stores none", async () => {
    const hinting = await buildApp({ js: jetstream(nc), secret: SECRET, logger: createLogger({ name: "ingest-test", level: "silent" }), metrics: createIngestMetrics(), health: createHealth(), blobHints: { nc, minBytes: 1000 } });
    const received: unknown[] = [];
    const subscription = nc.subscribe(SUBJECTS.BLOB_PUSHED, { callback: (_err, m) => void received.push(m.json()) });
    await nc.flush();
    try {
      const layer = "application/vnd.oci.image.layer.v1.tar+gzip";
      const big = event({}, { mediaType: layer, digest: `sha256:${"b".repeat(64)}`, size: 5000, tag: undefined });
      const res = await hinting.inject({
        method: "POST",
        url: "/events",
        headers: { authorization: SECRET, "content-type": "application/json" },
        payload: JSON.stringify({
          events: [
            big,
            event({}, { mediaType: layer, digest: `sha256:${"c".repeat(64)}`, size: 999, tag: undefined }), // too small
            event({}, { mediaType: "application/octet-stream", digest: `sha256:${"d".repeat(64)}`, size: undefined, tag: undefined }), // no size
            event({ action: "mount" }, { mediaType: "application/octet-stream", digest: `sha256:${"e".repeat(64)}`, size: 9000, fromRepository: "team/other" }),
          ],
        }),
      });
      expect(res.json()).toEqual({ received: 4, published: 0, duplicates: 0, ignored: 4, dead_lettered: 0 });
      await nc.flush();
      await new Promise((r) => setTimeout(r, 100));
      expect(received).toEqual([{ repository: "team/app", digest: `sha256:${"b".repeat(64)}`, size: 5000, media_type: layer, received_at: expect.any(String) as unknown }]);
      expect((await jsm.streams.info(STREAM_NAMES.REGISTRY_EVENTS)).state.messages).toBe(0);
      // The blob endpoint's path: the blob push is announced, the manifest push (sent there by a
      // misconfigured registry) is neither stored nor announced.
      const viaBlobPath = await hinting.inject({
        method: "POST",
        url: "/api/v4/container_registry_event/blob-events",
        headers: { authorization: SECRET, "content-type": "application/json" },
        payload: JSON.stringify({ events: [event(), event({}, { mediaType: layer, digest: `sha256:${"f".repeat(64)}`, size: 4000, tag: undefined })] }),
      });
      expect(viaBlobPath.json()).toEqual({ received: 2, published: 0, duplicates: 0, ignored: 2, dead_lettered: 0 });
      expect((await hinting.inject({ method: "POST", url: "/blob-events", headers: { "content-type": "application/json" }, payload: "{}" })).statusCode).toBe(401);
      await nc.flush();
      await new Promise((r) => setTimeout(r, 100));
      expect(received.map((h) => (h as { digest: string }).digest)).toEqual([`sha256:${"b".repeat(64)}`, `sha256:${"f".repeat(64)}`]);
      expect((await jsm.streams.info(STREAM_NAMES.REGISTRY_EVENTS)).state.messages).toBe(0);
      // Without blobHints (the default of buildApp), nothing is announced.
      expect((await post({ events: [big] })).json()).toMatchObject({ ignored: 1 });
      await nc.flush();
      await new Promise((r) => setTimeout(r, 100));
      expect(received).toHaveLength(2);
    } finally {
      subscription.unsubscribe();
      await hinting.close();
    }
  });

  it("dedupes a redelivered envelope by event id", async () => {
    const body = { events: [event()] };
    expect((await post(body)).json()).toMatchObject({ published: 1, duplicates: 0 });
    expect((await post(body, { "content-type": "application/json; charset=utf-8" })).json()).toMatchObject({ published: 0, duplicates: 1 });
    expect((await jsm.streams.info(STREAM_NAMES.REGISTRY_EVENTS)).state.messages).toBe(1);
  });

  it("answers 503 while JetStream does not acknowledge, and the retry lands once", async () => {
    const body = { events: [event(), event({ action: "delete" })] };
    process.kill(server.pid, "SIGSTOP"); // the server hangs: no acks
    try {
      const res = await post(body);
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ code: "INGEST_ERR_NATS_UNAVAILABLE" });
    } finally {
      process.kill(server.pid, "SIGCONT");
    }
    let res = await post(body);
    for (let i = 0; i < 20 && res.statusCode !== 200; i++) res = await post(body);
    expect(res.statusCode).toBe(200);
    const ids = (await readStream(jsm, STREAM_NAMES.REGISTRY_EVENTS)).map((m) => m.data.id);
    expect(ids.sort()).toEqual(body.events.map((e) => e.id).sort());
  });

  it("serves /events too, and health", async () => {
    const res = await app.inject({ method: "POST", url: "/events", headers: { authorization: SECRET, "content-type": "application/json" }, payload: JSON.stringify({ events: [] }) });
    expect(res.json()).toEqual({ received: 0, published: 0, duplicates: 0, ignored: 0, dead_lettered: 0 });
    expect((await app.inject({ method: "GET", url: "/health/ready" })).statusCode).toBe(200);
  });
});

/**
 * A real Distribution notifying the real ingest, configured as shipped: the
 * events replication needs arrive in REGISTRY_EVENTS exactly once, through
 * the registry's own retries when NATS is unavailable for a while; blob
 * pushes are announced on georep.blobs.pushed.
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { jetstream } from "@nats-io/jetstream";
import type { JetStreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { createRegistryClient } from "@georep/registry-client";
import type { RegistryClient } from "@georep/registry-client";
import { createHealth, createLogger } from "@georep/runtime";
import { ingestBlobNotificationEndpoint, ingestNotificationEndpoint } from "@georep/deploy-templates";
import { BlobPushedHint, STREAM_NAMES, SUBJECTS, decodeJson } from "@georep/schema";
import { startNats, startRegistry } from "@georep/testing";
import type { RunningNats, RunningRegistry } from "@georep/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/app.js";
import { createIngestMetrics } from "../../src/metrics.js";
import { createStreams, jetstreamManager, readStream, until } from "../helpers.js";

const run = promisify(execFile);
const SECRET = "Bearer registry-to-ingest-secret";
const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

let nats: RunningNats;
let nc: NatsConnection;
let jsm: JetStreamManager;
let app: Awaited<ReturnType<typeof buildApp>>;
let registry: RunningRegistry;
let client: RegistryClient;
let dir: string;
const metrics = createIngestMetrics();
/** What arrived on georep.blobs.pushed. */
const hints: BlobPushedHint[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "georep-ingest-it-"));
  nats = await startNats({ domain: "primary" });
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  await createStreams(jsm);
  const subscription = nc.subscribe(SUBJECTS.BLOB_PUSHED);
  void (async () => {
    for await (const m of subscription) {
      const decoded = decodeJson(BlobPushedHint, m.data);
      if (decoded.ok) hints.push(decoded.value);
    }
  })();
  await nc.flush();
  app = await buildApp({ js: jetstream(nc), secret: SECRET, logger: createLogger({ name: "ingest", level: "silent" }), metrics, health: createHealth(), publishTimeoutMs: 1500, blobHints: { nc, minBytes: 0 } });
  const address = await app.listen({ host: "127.0.0.1", port: 0 });
  registry = await startRegistry({
    // The shipped endpoints (manifest events; blob pushes on their own), but a timeout longer than
    // ingest's publish timeout, so ingest always answers before the registry gives up (a registry
    // timeout would resend the envelope; dedup makes that harmless but it counts again).
    notifications: [ingestNotificationEndpoint(address, SECRET), ingestBlobNotificationEndpoint(address, SECRET)].map((e) => ({ ...e, backoffMs: 200, timeoutMs: 6000 })),
  });
  client = createRegistryClient({ url: registry.url });
});

afterAll(async () => {
  await registry?.stop();
  await app?.close();
  await nc?.close();
  await nats?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

function image(seed: string) {
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", seed }));
  const layer = randomBytes(2048);
  const raw = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(layer), size: layer.length }],
    }),
  );
  return { config, layer, raw, digest: sha256(raw), mediaType: "application/vnd.oci.image.manifest.v1+json" };
}

async function push(repository: string, img: ReturnType<typeof image>, tag: string) {
  for (const b of [img.config, img.layer]) await client.uploadBlob(repository, { digest: sha256(b), size: b.length }, b);
  await client.putManifest(repository, tag, img);
}

async function events(repository: string) {
  return (await readStream(jsm, STREAM_NAMES.REGISTRY_EVENTS)).map((m) => m.data).filter((d) => d.repository === repository);
}

describe("Distribution → ingest → REGISTRY_EVENTS", () => {
  it("push, tag move, delete: one event each; blob pushes announced, not stored; no pulls", async () => {
    const a = image("a");
    const b = image("b");
    await push("team/app", a, "v1");
    await client.getManifest("team/app", "v1"); // a pull: not forwarded
    await push("team/app", b, "v1"); // the tag moves to b
    await client.deleteManifest("team/app", a.digest);

    await until("three events", async () => (await events("team/app")).length >= 3);
    await new Promise((r) => setTimeout(r, 500)); // nothing more may arrive
    const got = await events("team/app");
    expect(got.map((e) => [e.action, e.digest, e.tag ?? null])).toEqual([
      ["push", a.digest, "v1"],
      ["push", b.digest, "v1"],
      ["delete", a.digest, null],
    ]);
    expect(new Set(got.map((e) => e.id)).size).toBe(3);
    // The four blob uploads reached ingest on the blob endpoint (its own queue), were stored
    // nowhere and announced each; the registry itself dropped the pull (ignore.actions).
    await until("four blob hints", () => Promise.resolve(new Set(hints.map((h) => h.digest)).size >= 4));
    const blobs = [a.config, a.layer, b.config, b.layer].map((blob) => ({ repository: "team/app", digest: sha256(blob), size: blob.length }));
    expect(hints.map((h) => ({ repository: h.repository, digest: h.digest, size: h.size })).sort((x, y) => x.digest.localeCompare(y.digest))).toEqual(
      [...new Map(blobs.map((x) => [x.digest, x])).values()].sort((x, y) => x.digest.localeCompare(y.digest)),
    );
    expect(metrics.ignored.get({ reason: "pull" })).toBe(0);
    expect(metrics.ignored.get({ reason: "blob" })).toBe(4);
    expect(metrics.ignored.get({ reason: "not_a_blob_push" })).toBe(0);
    // Every event received is one of these seven (an envelope answered 503 on a slow machine is sent again).
    expect(metrics.received.get()).toBe(7 + metrics.requests.get({ status: "503" }));
    expect(metrics.blobHints.get({ result: "published" })).toBe(hints.length);
  });

  it("skopeo pushes land as one manifest push", async () => {
    const img = image("skopeo");
    const layout = join(dir, "layout");
    await mkdir(join(layout, "blobs", "sha256"), { recursive: true });
    for (const blob of [img.config, img.layer, img.raw]) await writeFile(join(layout, "blobs", "sha256", sha256(blob).slice(7)), blob);
    await writeFile(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    await writeFile(join(layout, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: img.mediaType, digest: img.digest, size: img.raw.length, annotations: { "org.opencontainers.image.ref.name": "v1" } }] }));
    await run("skopeo", ["--insecure-policy", "copy", "--preserve-digests", "--dest-tls-verify=false", `oci:${layout}:v1`, `docker://${registry.host}/team/skopeo:v1`]);
    await until("the skopeo push", async () => (await events("team/skopeo")).length >= 1);
    const got = await events("team/skopeo");
    expect(got.map((e) => [e.action, e.digest, e.tag])).toEqual([["push", img.digest, "v1"]]);
  });

  it("NATS unavailable for a while: the registry retries and the event lands once", async () => {
    const img = image("outage");
    process.kill(nats.pid, "SIGSTOP");
    try {
      await push("team/outage", img, "v1");
      await new Promise((r) => setTimeout(r, 2500)); // ingest answers 503 meanwhile; the registry backs off and retries
    } finally {
      process.kill(nats.pid, "SIGCONT");
    }
    await until("the retried event", async () => (await events("team/outage")).length >= 1, 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    const got = await events("team/outage");
    expect(got.map((e) => [e.action, e.digest])).toEqual([["push", img.digest]]);
  });
});

/**
 * Benchmark: registry notifications per second that ingest sustains with
 * durable acks (each answered 200 only after JetStream stored it), next to
 * the raw JetStream publish rate of the same server in the same run, with
 * the same number of requests in flight. ingest runs as its own process, as
 * deployed. BENCH_EVENTS (default 20000) and BENCH_CONCURRENCY (default 32).
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { STREAMS, STREAM_NAMES } from "@georep/schema";
import { freePort, startNats } from "@georep/testing";
import { Pool } from "undici";

const EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const SECRET = "Bearer bench-secret-0123456789";

const envelope = (id: string) =>
  JSON.stringify({
    events: [
      {
        id,
        timestamp: new Date().toISOString(),
        action: "push",
        target: { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: `sha256:${"b".repeat(64)}`, size: 1234, repository: "bench/app", tag: "v1" },
        request: { method: "PUT", useragent: "bench" },
      },
    ],
  });

/** Runs `count` tasks with `concurrency` in flight; returns events per second. */
async function rate(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await task(next++);
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

const nats = await startNats({ domain: "primary" });
// The baseline publishes with the client settings ingest uses (no per-request stack capture).
const nc = await connect({ servers: nats.url, noAsyncTraces: true });
const jsm = await jetstreamManager(nc);
for (const def of [STREAMS.REGISTRY_EVENTS, STREAMS.REGISTRY_EVENTS_DLQ]) {
  await jsm.streams.add({ name: def.name, subjects: [...def.subjects], retention: def.retention, duplicate_window: 2 * 3600 * 1_000_000_000 });
}
const port = await freePort();
const ingest = spawn(process.execPath, [fileURLToPath(new URL("../dist/main.js", import.meta.url))], {
  env: { ...process.env, NATS_URL: nats.url, INGEST_SECRET: SECRET, HTTP_HOST: "127.0.0.1", HTTP_PORT: String(port), LOG_LEVEL: "warn" },
  stdio: ["ignore", "inherit", "inherit"],
});
const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONCURRENCY, pipelining: 1 });
try {
  for (let i = 0; ; i++) {
    try {
      const res = await pool.request({ method: "GET", path: "/health/ready" });
      await res.body.dump();
      if (res.statusCode === 200) break;
    } catch {
      // not listening yet
    }
    if (i > 200) throw new Error("ingest did not become ready");
    await new Promise((r) => setTimeout(r, 50));
  }
  const post = async (id: string) => {
    const res = await pool.request({ method: "POST", path: "/api/v4/container_registry_event/events", headers: { authorization: SECRET, "content-type": "application/vnd.docker.distribution.events.v1+json" }, body: envelope(id) });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`ingest answered ${res.statusCode}`);
  };
  const js = jetstream(nc);
  const publish = async (id: string) => {
    await js.publish("georep.registry.events.push.bench/app", envelope(id), { msgID: id });
  };
  // Warm both paths, then measure raw JetStream and ingest alternately.
  await rate(500, CONCURRENCY, () => post(randomUUID()));
  await rate(500, CONCURRENCY, () => publish(randomUUID()));
  const raw: number[] = [];
  const through: number[] = [];
  for (let round = 0; round < 2; round++) {
    raw.push(await rate(EVENTS / 2, CONCURRENCY, () => publish(randomUUID())));
    through.push(await rate(EVENTS / 2, CONCURRENCY, () => post(randomUUID())));
  }
  const stored = (await jsm.streams.info(STREAM_NAMES.REGISTRY_EVENTS)).state.messages;
  if (stored < 2 * EVENTS + 1000) throw new Error(`only ${stored} messages stored`);
  const value = through.reduce((a, b) => a + b) / through.length;
  const baseline = raw.reduce((a, b) => a + b) / raw.length;
  const round3 = (v: number) => Math.round(v * 1000) / 1000;
  console.log(JSON.stringify({ bench: "ingest.notifications-per-second", value: Math.round(value), baseline: Math.round(baseline), ratio: round3(value / baseline), unit: "events/s", target: "ratio >= 0.5", events: EVENTS, concurrency: CONCURRENCY }));
} finally {
  await pool.close();
  ingest.kill("SIGTERM");
  await new Promise((r) => ingest.once("exit", r));
  await nc.close();
  await nats.stop();
}

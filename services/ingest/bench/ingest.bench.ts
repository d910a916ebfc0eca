/**
 * Benchmark: registry notifications per second that ingest sustains with
 * durable acks (each answered 200 only after JetStream stored it), next to
 * the raw JetStream publish rate of the same server in the same run, with
 * the same number of requests in flight. ingest runs as its own process, as
 * deployed. One line per concurrency in BENCH_CONCURRENCY (default "1,32"):
 * 1 is one Distribution instance, whose notification queue sends one
 * envelope at a time; 32 stands for many registry replicas at once.
 * BENCH_EVENTS (default 20000) events per concurrency and path.
 *
 * Measured beside them, with the same client: a bare fastify server that
 * answers at once (`http-echo.ts`). No HTTP endpoint can beat it, so it bounds
 * the ratio: one request at a time pays the HTTP round trip and the
 * JetStream round trip in series (1 / (1 + raw / http)); with many in flight
 * the slower of the two rates caps the throughput (min(http, raw) / raw).
 * And the machine's CPU (/proc/stat) per event of each path bounds it too:
 * an event through ingest costs at least an HTTP request and a JetStream
 * publish, on the same cores (cores / (cpu_http + cpu_raw) / raw).
 * `ceiling_ratio` is the lower bound; all assume ingest's own work is free.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { STREAMS, STREAM_NAMES } from "@georep/schema";
import { freePort, machineBusySeconds, startNats } from "@georep/testing";
import { Pool } from "undici";

const EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000);
const CONCURRENCIES = (process.env.BENCH_CONCURRENCY ?? "1,32").split(",").map(Number);
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
const pool = new Pool(`http://127.0.0.1:${port}`, { connections: Math.max(...CONCURRENCIES), pipelining: 1 });
const echo = spawn(process.execPath, [fileURLToPath(new URL("./http-echo.ts", import.meta.url))], { stdio: ["ignore", "pipe", "inherit"] });
const echoUrl = await new Promise<string>((resolve, reject) => {
  echo.stdout.setEncoding("utf8").once("data", (line: string) => resolve(line.trim()));
  echo.once("exit", (code) => reject(new Error(`http-echo exited (${code})`)));
});
const echoPool = new Pool(echoUrl, { connections: Math.max(...CONCURRENCIES), pipelining: 1 });
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
  const postEcho = async (id: string) => {
    const res = await echoPool.request({ method: "POST", path: "/events", headers: { authorization: SECRET, "content-type": "application/json" }, body: envelope(id) });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`http-echo answered ${res.statusCode}`);
  };
  const js = jetstream(nc);
  const publish = async (id: string) => {
    await js.publish("georep.registry.events.push.bench/app", envelope(id), { msgID: id });
  };
  const round3 = (v: number) => Math.round(v * 1000) / 1000;
  for (const concurrency of CONCURRENCIES) {
    // Warm both paths, then measure raw JetStream and ingest alternately.
    await rate(500, concurrency, () => post(randomUUID()));
    await rate(500, concurrency, () => publish(randomUUID()));
    await rate(500, concurrency, () => postEcho(randomUUID()));
    const before = (await jsm.streams.info(STREAM_NAMES.REGISTRY_EVENTS)).state.messages;
    const raw: number[] = [];
    const through: number[] = [];
    const http: number[] = [];
    /** Machine CPU seconds per event of each path (load generator and servers together). */
    const cpu = { raw: 0, through: 0, http: 0 };
    const measured = async (path: keyof typeof cpu, task: (i: number) => Promise<void>) => {
      const busy = machineBusySeconds();
      const value = await rate(EVENTS / 2, concurrency, task);
      cpu[path] += (machineBusySeconds() - busy) / EVENTS;
      return value;
    };
    for (let round = 0; round < 2; round++) {
      raw.push(await measured("raw", () => publish(randomUUID())));
      through.push(await measured("through", () => post(randomUUID())));
      http.push(await measured("http", () => postEcho(randomUUID())));
    }
    const stored = (await jsm.streams.info(STREAM_NAMES.REGISTRY_EVENTS)).state.messages - before;
    if (stored !== 2 * EVENTS) throw new Error(`${stored} messages stored, expected ${2 * EVENTS}`);
    const value = through.reduce((a, b) => a + b) / through.length;
    const baseline = raw.reduce((a, b) => a + b) / raw.length;
    const httpOnly = http.reduce((a, b) => a + b) / http.length;
    // Two bounds, the lower one holds: the round trips (in series at concurrency 1, overlapped
    // beyond it), and the machine's cores, which the HTTP half and the JetStream half share.
    const roundTrips = concurrency === 1 ? 1 / (1 + baseline / httpOnly) : Math.min(httpOnly, baseline) / baseline;
    const cores = availableParallelism() / (cpu.http + cpu.raw) / baseline;
    const ceiling = Math.min(roundTrips, cores);
    const us = (seconds: number) => Math.round(seconds * 1e6);
    console.log(
      JSON.stringify({
        bench: `ingest.notifications-per-second.concurrency-${concurrency}`,
        value: Math.round(value),
        baseline: Math.round(baseline),
        ratio: round3(value / baseline),
        unit: "events/s",
        target: "ratio >= 0.5",
        events: EVENTS,
        concurrency,
        http_echo: Math.round(httpOnly),
        ceiling_ratio: round3(ceiling),
        ceiling_round_trips: round3(roundTrips),
        ceiling_cores: round3(cores),
        cpu_us_per_event: { ingest_path: us(cpu.through), raw_jetstream: us(cpu.raw), http_echo: us(cpu.http) },
      }),
    );
  }
} finally {
  await pool.close();
  await echoPool.close();
  echo.kill("SIGTERM");
  ingest.kill("SIGTERM");
  await new Promise((r) => ingest.once("exit", r));
  await nc.close();
  await nats.stop();
}

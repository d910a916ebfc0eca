/**
 * Replication lag on a fresh local stack (primary + 1 secondary, token auth,
 * every georep service running as deployed): push to tag available on the
 * secondary, for small images pushed at BENCH_LAG_RATE per second (default
 * 20) for BENCH_LAG_SECONDS (default 60) over 20 repositories: p50 and p99.
 * Its own stack, so the gigabytes of the copy benchmarks are not still being
 * written back while it runs. The secondary registry notifies this process
 * of every manifest it stores; a tag counts as available when a HEAD of it
 * (sent at the notification, repeated every 5 ms until it answers) returns
 * the pushed digest. So the measurement costs the registry one request per
 * push instead of a poll of every repository several times a second, which
 * on Distribution 2.8 (about 2 ms of CPU per request here) loaded the two
 * cores as much as the replication under test. Before the clock starts, one
 * image per repository is pushed and replicated (warm-up, not measured). BENCH_SERVICE_ENV (a JSON object) adds
 * settings for every service, e.g. '{"TRANSFER_CONCURRENCY":"10"}'.
 */
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { createRegistryClient } from "@georep/registry-client";
import { cpuDelta, groupCpuSeconds } from "@georep/testing";
import { startStack, stopStack } from "../dist/index.js";

const LAG_RATE = Number(process.env.BENCH_LAG_RATE ?? 20);
const LAG_SECONDS = Number(process.env.BENCH_LAG_SECONDS ?? 60);
const round3 = (v: number) => Math.round(v * 1000) / 1000;
const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

const percentile = (values: readonly number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

/** Tags the secondary registry announced, as repository:tag (the notifications' receiver below). */
const announced: { repository: string; tag: string }[] = [];
let onAnnounce = (): void => undefined;
const receiver = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on("data", (c: Buffer) => chunks.push(c));
  request.on("end", () => {
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { events?: { action?: string; target?: { repository?: string; tag?: string } }[] };
      for (const e of body.events ?? []) if (e.action === "push" && e.target?.tag !== undefined && e.target.repository !== undefined) announced.push({ repository: e.target.repository, tag: e.target.tag });
      onAnnounce();
    } catch {
      // not an envelope: ignored
    }
    response.writeHead(200).end();
  });
});
await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`;

const dir = await mkdtemp(join(tmpdir(), "georep-bench-"));
try {
  const secondaryRegistryNotifications = [{ name: "lag-bench", url: receiverUrl, timeoutMs: 2000, backoffMs: 100, threshold: 1, ignoredMediaTypes: ["application/octet-stream"], ignoredActions: ["pull"] }];
  const { stack } = await startStack({ stateDir: dir, secondaries: 1, persistent: false, secondaryRegistryNotifications, serviceEnv: { LOG_LEVEL: "warn", ...(process.env.BENCH_SERVICE_ENV === undefined ? {} : (JSON.parse(process.env.BENCH_SERVICE_ENV) as Record<string, string>)) } });
  const credentials = { type: "basic" as const, ...stack.credentials };
  const secondarySite = stack.sites[1]!;
  const primary = createRegistryClient({ url: stack.sites[0]!.registry, credentials });
  const secondary = createRegistryClient({ url: secondarySite.registry, credentials });

  // Lag at a steady push rate: small images, each a new tag, spread over 20 repositories.
  const REPOS = 20;
  const layer = randomBytes(4096);
  const layerDesc = { mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(layer), size: layer.length };
  for (let r = 0; r < REPOS; r++) await primary.uploadBlob(`bench/lag-${r}`, layerDesc, layer);
  /** A small image, unique by `n`: its config, and its manifest sharing the one layer. */
  const smallImage = (n: number | string) => {
    const configBytes = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", n }));
    const config = { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(configBytes), size: configBytes.length };
    const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config, layers: [layerDesc] }));
    return { configBytes, config, raw, digest: sha256(raw) };
  };
  const pushSmall = async (repository: string, tag: string, img: ReturnType<typeof smallImage>) => {
    await primary.uploadBlob(repository, img.config, img.configBytes);
    await primary.putManifest(repository, tag, { raw: img.raw, mediaType: "application/vnd.oci.image.manifest.v1+json" });
  };
  // Warm-up, not measured: one image in each repository, replicated before the clock starts. The
  // first sync of a repository is a full one and the services start cold (connections, tokens,
  // JIT); the figure is the lag of a running site, the steady state at the push rate.
  await Promise.all(Array.from({ length: REPOS }, (_, r) => pushSmall(`bench/lag-${r}`, "warmup", smallImage(`warmup-${r}`))));
  for (let r = 0; r < REPOS; r++) {
    const want = smallImage(`warmup-${r}`).digest;
    for (let i = 0; (await secondary.headManifest(`bench/lag-${r}`, "warmup").catch(() => undefined))?.digest !== want; i++) {
      if (i > 600) throw new Error(`warm-up: bench/lag-${r}:warmup never reached the secondary`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }
  // What earlier benchmarks of `pnpm bench` wrote (gigabytes) goes to disk now, not during the clock.
  spawnSync("sync");
  await new Promise((res) => setTimeout(res, 2000));
  const pids = JSON.parse(await readFile(join(dir, "pids.json"), "utf8")) as { processes: { name: string; pid: number }[] };
  const groups = Object.fromEntries(pids.processes.map((p) => [p.name, p.pid] as const));
  const cpuBefore = groupCpuSeconds(groups);
  /** BENCH_DEBUG: CPU seconds of each process per 5 s window of the run. */
  const cpuWindows: Record<string, number>[] = [];
  let cpuLast = cpuBefore;
  const cpuSampler = process.env.BENCH_DEBUG === undefined ? undefined : setInterval(() => {
    const now = groupCpuSeconds(groups);
    cpuWindows.push(cpuDelta(cpuLast, now));
    cpuLast = now;
  }, 5000);
  const total = LAG_RATE * LAG_SECONDS;
  const pushedAt = new Map<string, number>();
  const seenAt = new Map<string, number>();
  const expected = new Map<string, string>();
  let pushing = true;
  let lastPush = performance.now();
  /** Confirms an announced tag with HEADs until the secondary serves the pushed digest. */
  const confirm = async (repository: string, tag: string): Promise<void> => {
    const key = `${repository.slice("bench/lag-".length)}:${tag}`;
    const want = expected.get(key);
    if (want === undefined || seenAt.has(key)) return;
    for (let attempt = 0; attempt < 400; attempt++) {
      const head = await secondary.headManifest(repository, tag).catch(() => undefined);
      if (head?.digest === want) {
        if (!seenAt.has(key)) seenAt.set(key, performance.now());
        return;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const confirming = (async () => {
    const running = new Set<Promise<void>>();
    while (pushing || seenAt.size < total) {
      while (announced.length > 0) {
        const { repository, tag } = announced.shift()!;
        const p = confirm(repository, tag).finally(() => running.delete(p));
        running.add(p);
      }
      if (!pushing && performance.now() - lastPush > 60_000) throw new Error(`${total - seenAt.size} tags never appeared on the secondary: ${[...expected.keys()].filter((k) => !seenAt.has(k)).join(", ")}`);
      await new Promise<void>((r) => {
        onAnnounce = r;
        setTimeout(r, 200);
      });
    }
    await Promise.all(running);
  })();
  const pushes: Promise<void>[] = [];
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / LAG_RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const repo = i % REPOS;
    const img = smallImage(i);
    const key = `${repo}:t${i}`;
    expected.set(key, img.digest);
    pushes.push(
      (async () => {
        await pushSmall(`bench/lag-${repo}`, `t${i}`, img);
        pushedAt.set(key, performance.now());
        lastPush = performance.now();
      })(),
    );
  }
  await Promise.all(pushes);
  pushing = false;
  await confirming;
  const lags = [...pushedAt].map(([key, at]) => Math.max(0, seenAt.get(key)! - at));
  for (const [key, digest] of expected) {
    const [repo, tag] = key.split(":") as [string, string];
    const head = await secondary.headManifest(`bench/lag-${repo}`, tag);
    if (head?.digest !== digest) throw new Error(`bench/lag-${repo}:${tag} has ${head?.digest} on the secondary, expected ${digest}`);
  }
  if (cpuSampler !== undefined) clearInterval(cpuSampler);
  if (process.env.BENCH_DEBUG !== undefined) {
    for (const [i, w] of cpuWindows.entries()) {
      const top = Object.entries(w).filter(([, v]) => v >= 0.3).sort((a, b) => b[1] - a[1]);
      console.error(`[lag] CPU s ${i * 5}-${i * 5 + 5} s: ${top.map(([k, v]) => `${k} ${v}`).join(", ")}`);
    }
    const used = Object.entries(cpuDelta(cpuBefore, groupCpuSeconds(groups))).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
    console.error(`[lag] CPU seconds per process while measured: ${JSON.stringify(Object.fromEntries(used))}`);
    // Lag by 5 s window of the push time: where the tail comes from.
    const windows = new Map<number, number[]>();
    for (const [key, at] of pushedAt) {
      const w = Math.floor((at - started) / 5000);
      windows.set(w, [...(windows.get(w) ?? []), Math.max(0, seenAt.get(key)! - at)]);
    }
    for (const [w, values] of [...windows].sort((x, y) => x[0] - y[0])) console.error(`[lag] ${w * 5}-${w * 5 + 5} s: p50 ${Math.round(percentile(values, 50))} ms, max ${Math.round(Math.max(...values))} ms`);
    // Where the lag goes, by 5 s window of the syncs' end: the sync itself, and what came before
    // it (the event path from the primary, the dispatcher's queue, the transfer's fetch).
    const db = new pg.Client({ connectionString: secondarySite.database });
    await db.connect();
    const { rows } = await db.query<{ w: number; syncs: number; duration: number; before: number }>(
      `select floor(extract(epoch from finished_at - $1::timestamptz) / 5)::int as w, count(*)::int as syncs,
         round(avg(duration_ms))::int as duration, round(avg(lag_ms - duration_ms))::int as before
       from sync_history where lag_ms is not null and finished_at >= $1 group by 1 order by 1`,
      [new Date(Date.now() - (performance.now() - started))],
    );
    await db.end();
    // The primary's side: its registry's notification to ingest, and ingest to the geo event.
    const primaryDb = new pg.Client({ connectionString: stack.sites[0]!.database });
    await primaryDb.connect();
    const events = await primaryDb.query<{ w: number; events: number; notified: number; logged: number }>(
      `select floor(extract(epoch from received_at - $1::timestamptz) / 5)::int as w, count(*)::int as events,
         round(avg(extract(epoch from received_at - occurred_at) * 1000))::int as notified,
         round(avg(extract(epoch from created_at - received_at) * 1000))::int as logged
       from geo_events where received_at >= $1 group by 1 order by 1`,
      [new Date(Date.now() - (performance.now() - started))],
    );
    await primaryDb.end();
    for (const r of events.rows) console.error(`[lag] events received ${r.w * 5}-${r.w * 5 + 5} s: ${r.events}, registry to ingest ${r.notified} ms, ingest to geo event ${r.logged} ms (means)`);
    for (const r of rows) console.error(`[lag] syncs ending ${r.w * 5}-${r.w * 5 + 5} s: ${r.syncs}, sync ${r.duration} ms, before the sync ${r.before} ms (means)`);
    for (const url of [secondarySite.transfer, secondarySite.dispatcher]) {
      const text = await (await fetch(`${url}/metrics`)).text();
      console.error(text.split("\n").filter((l) => !l.startsWith("#") && /duration|syncs_total|jobs_total|dispatched/.test(l)).join("\n"));
    }
  }
  const p50 = percentile(lags, 50) / 1000;
  const p99 = percentile(lags, 99) / 1000;
  console.log(JSON.stringify({ bench: `replication.lag-${LAG_RATE}-pushes-per-s-p50`, value: round3(p50), baseline: null, ratio: null, unit: "s", target: "informative", pushes: total }));
  console.log(JSON.stringify({ bench: `replication.lag-${LAG_RATE}-pushes-per-s-p99`, value: round3(p99), baseline: null, ratio: null, unit: "s", target: "value <= 1", pushes: total, repositories: REPOS }));
} finally {
  receiver.close();
  if (process.env.BENCH_KEEP === undefined) {
    await stopStack(dir);
    await rm(dir, { recursive: true, force: true });
  } else console.error(`kept the stack in ${dir}`);
}

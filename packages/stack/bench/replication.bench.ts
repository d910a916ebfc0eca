/**
 * Replication benchmarks on the local stack (primary + 1 secondary, token
 * auth, every georep service running as deployed), baselines measured in the
 * same run:
 *
 * - push-to-available time on the secondary for an image of 4 random layers
 *   (BENCH_IMAGE_MB in total, default 1024), vs `skopeo copy` of the same
 *   image from the primary into a fresh registry of the same kind;
 * - the peak RSS of the secondary's transfer process after that copy;
 * - replication lag, push to tag available on the secondary, for small
 *   images pushed at BENCH_LAG_RATE per second (default 20) for
 *   BENCH_LAG_SECONDS (default 60): p50 and p99.
 */
import { spawn } from "node:child_process";
import { createCipheriv, createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { createGzip } from "node:zlib";
import { createRegistryClient } from "@georep/registry-client";
import type { RegistryClient } from "@georep/registry-client";
import { startRegistry } from "@georep/testing";
import { startStack, stopStack } from "../dist/index.js";

const MB = 1024 * 1024;
const IMAGE_BYTES = Number(process.env.BENCH_IMAGE_MB ?? 1024) * MB;
const LAG_RATE = Number(process.env.BENCH_LAG_RATE ?? 20);
const LAG_SECONDS = Number(process.env.BENCH_LAG_SECONDS ?? 60);
const POLL_MS = Number(process.env.BENCH_POLL_MS ?? 100);
const round3 = (v: number) => Math.round(v * 1000) / 1000;
const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** Random bytes (AES-CTR keystream) in a gzip stream of stored blocks: a compressed layer nobody recompresses. */
function layerStream(size: number, key: Buffer, iv: Buffer): Readable {
  const cipher = createCipheriv("aes-128-ctr", key, iv);
  const zeros = Buffer.alloc(MB);
  let left = size;
  return new Readable({
    read() {
      if (left === 0) return void this.push(null);
      const n = Math.min(left, MB);
      left -= n;
      this.push(cipher.update(zeros.subarray(0, n)));
    },
  }).pipe(createGzip({ level: 0 }));
}

async function pushBigImage(client: RegistryClient, repository: string, tag: string): Promise<{ digest: string; pushedAt: number }> {
  const layers = [];
  for (let i = 0; i < 4; i++) {
    const key = randomBytes(16);
    const iv = randomBytes(16);
    const hash = createHash("sha256");
    let size = 0;
    for await (const chunk of layerStream(IMAGE_BYTES / 4, key, iv)) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    const layer = { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: `sha256:${hash.digest("hex")}`, size };
    await client.uploadBlob(repository, layer, layerStream(IMAGE_BYTES / 4, key, iv));
    layers.push(layer);
  }
  const configBytes = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux" }));
  const config = { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(configBytes), size: configBytes.length };
  await client.uploadBlob(repository, config, configBytes);
  const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config, layers }));
  await client.putManifest(repository, tag, { raw, mediaType: "application/vnd.oci.image.manifest.v1+json" });
  return { digest: sha256(raw), pushedAt: performance.now() };
}

async function waitForTag(client: RegistryClient, repository: string, tag: string, digest: string, timeoutMs: number, pollMs = 20): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const head = await client.headManifest(repository, tag).catch(() => undefined);
    if (head?.digest === digest) return performance.now();
    if (performance.now() > deadline) throw new Error(`${repository}:${tag} not available on the secondary after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

function run(command: string, args: readonly string[]): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(performance.now() - started) : reject(new Error(`${command} exited ${code}: ${stderr.slice(-1500)}`))));
  });
}

async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmHWM for pid ${pid}`);
  return Number(kb) / 1024;
}

const percentile = (values: readonly number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

const dir = await mkdtemp(join(tmpdir(), "georep-bench-"));
const baselineRegistry = await startRegistry();
try {
  const { stack } = await startStack({ stateDir: dir, secondaries: 1, persistent: false, serviceEnv: { LOG_LEVEL: "warn" } });
  const credentials = { type: "basic" as const, ...stack.credentials };
  const [primarySite, secondarySite] = [stack.sites[0]!, stack.sites[1]!];
  const primary = createRegistryClient({ url: primarySite.registry, credentials });
  const secondary = createRegistryClient({ url: secondarySite.registry, credentials });
  const pids = JSON.parse(await readFile(join(dir, "pids.json"), "utf8")) as { processes: { name: string; pid: number }[] };
  const transferPid = pids.processes.find((p) => p.name === `${secondarySite.name}/transfer`)!.pid;

  // 1. A large image: push to available on the secondary, vs skopeo copy of the same image.
  const big = await pushBigImage(primary, "bench/big", "v1");
  const availableAt = await waitForTag(secondary, "bench/big", "v1", big.digest, 30 * 60_000, 50);
  const georepSeconds = (availableAt - big.pushedAt) / 1000;
  await run("sync", []);
  const skopeoMs = await run("skopeo", [
    "--insecure-policy",
    "copy",
    "--preserve-digests",
    "--src-tls-verify=false",
    "--dest-tls-verify=false",
    "--src-creds",
    `${stack.credentials.username}:${stack.credentials.password}`,
    `docker://${primarySite.registry.replace(/^https?:\/\//, "")}/bench/big:v1`,
    `docker://${baselineRegistry.host}/bench/big:v1`,
  ]);
  const label = `${IMAGE_BYTES / MB}MiB-4-layers`;
  console.log(JSON.stringify({ bench: `replication.push-to-available-${label}`, value: round3(georepSeconds), baseline: round3(skopeoMs / 1000), ratio: round3(georepSeconds / (skopeoMs / 1000)), unit: "s", target: "ratio <= 0.8" }));
  const rss = await peakRssMb(transferPid);
  console.log(JSON.stringify({ bench: `replication.transfer-peak-rss-${label}`, value: round3(rss), baseline: null, ratio: null, unit: "MB", target: "value <= 150" }));

  // Let the gigabytes just written reach the disk first, so their writeback does not slow this phase.
  await run("sync", []);

  // 2. Lag at a steady push rate: small images, each a new tag, spread over 20
  // repositories. One poller lists the secondary's tags (one request per
  // repository) every BENCH_POLL_MS (default 100; polling itself loads the two cores) and records when each tag first appears; digests
  // are checked at the end, so the measurement adds little load of its own.
  const REPOS = 20;
  const layer = randomBytes(4096);
  const layerDesc = { mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(layer), size: layer.length };
  for (let r = 0; r < REPOS; r++) await primary.uploadBlob(`bench/lag-${r}`, layerDesc, layer);
  const total = LAG_RATE * LAG_SECONDS;
  const pushedAt = new Map<string, number>();
  const seenAt = new Map<string, number>();
  const expected = new Map<string, string>();
  let pushing = true;
  let lastPush = performance.now();
  const poller = (async () => {
    while (pushing || seenAt.size < total) {
      for (let r = 0; r < REPOS; r++) {
        const tags = await secondary.listTags(`bench/lag-${r}`).catch(() => [] as string[]);
        const now = performance.now();
        for (const tag of tags) if (!seenAt.has(`${r}:${tag}`)) seenAt.set(`${r}:${tag}`, now);
      }
      if (!pushing && performance.now() - lastPush > 120_000) throw new Error(`${total - seenAt.size} tags never appeared on the secondary`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  })();
  const pushes: Promise<void>[] = [];
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / LAG_RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const repo = i % REPOS;
    const configBytes = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", n: i }));
    const config = { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(configBytes), size: configBytes.length };
    const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config, layers: [layerDesc] }));
    const key = `${repo}:t${i}`;
    expected.set(key, sha256(raw));
    pushes.push(
      (async () => {
        await primary.uploadBlob(`bench/lag-${repo}`, config, configBytes);
        await primary.putManifest(`bench/lag-${repo}`, `t${i}`, { raw, mediaType: "application/vnd.oci.image.manifest.v1+json" });
        pushedAt.set(key, performance.now());
        lastPush = performance.now();
      })(),
    );
  }
  await Promise.all(pushes);
  pushing = false;
  await poller;
  const lags = [...pushedAt].map(([key, at]) => Math.max(0, seenAt.get(key)! - at));
  for (const [key, digest] of expected) {
    const [repo, tag] = key.split(":") as [string, string];
    const head = await secondary.headManifest(`bench/lag-${repo}`, tag);
    if (head?.digest !== digest) throw new Error(`bench/lag-${repo}:${tag} has ${head?.digest} on the secondary, expected ${digest}`);
  }
  if (process.env.BENCH_DEBUG !== undefined) {
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
  await stopStack(dir);
  await baselineRegistry.stop();
  await rm(dir, { recursive: true, force: true });
}

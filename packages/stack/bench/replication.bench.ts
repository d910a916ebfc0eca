/**
 * Replication benchmarks on the local stack (primary + 1 secondary, token
 * auth, every georep service running as deployed), baselines measured in the
 * same run:
 *
 * - push-to-available time on the secondary for an image of 4 random layers
 *   (BENCH_IMAGE_MB in total, default 1024), vs `skopeo copy` from the
 *   primary into a fresh registry of the same kind of an image of the same
 *   size, started the moment its push returns (replication paused meanwhile,
 *   so the stack does not copy it too). Both copies start right after their
 *   push, with that push's writes still going to disk: the copy of a
 *   replicated push never gets a quiet disk, and a `sync` before skopeo only
 *   (as before) measured skopeo under easier conditions;
 * - the time the push itself took, against the same push with replication
 *   paused: the secondary copies large layers as the primary announces them
 *   (blob prefetch), while the rest of the image is still being pushed, and
 *   that work shares the machine with the push;
 * - the peak RSS of the secondary's transfer process after that copy.
 * BENCH_SERVICE_ENV (a JSON object) adds settings for every service, e.g.
 * '{"TRANSFER_BLOB_PREFETCH":"false"}' to measure without the prefetch.
 * The lag benchmark is lag.bench.ts (its own stack).
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
import { cpuDelta, groupCpuSeconds, startRegistry } from "@georep/testing";
import { startStack, stopStack } from "../dist/index.js";

const MB = 1024 * 1024;
const IMAGE_BYTES = Number(process.env.BENCH_IMAGE_MB ?? 1024) * MB;
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

async function pushBigImage(client: RegistryClient, repository: string, tag: string): Promise<{ digest: string; pushedAt: number; pushMs: number }> {
  const started = performance.now();
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
  const pushedAt = performance.now();
  return { digest: sha256(raw), pushedAt, pushMs: pushedAt - started };
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


const dir = await mkdtemp(join(tmpdir(), "georep-bench-"));
const baselineRegistry = await startRegistry();
try {
  const { stack } = await startStack({ stateDir: dir, secondaries: 1, persistent: false, serviceEnv: { LOG_LEVEL: "warn", ...(process.env.BENCH_SERVICE_ENV === undefined ? {} : (JSON.parse(process.env.BENCH_SERVICE_ENV) as Record<string, string>)) } });
  const credentials = { type: "basic" as const, ...stack.credentials };
  const [primarySite, secondarySite] = [stack.sites[0]!, stack.sites[1]!];
  const primary = createRegistryClient({ url: primarySite.registry, credentials });
  const secondary = createRegistryClient({ url: secondarySite.registry, credentials });
  const pids = JSON.parse(await readFile(join(dir, "pids.json"), "utf8")) as { processes: { name: string; pid: number }[] };
  const transferPid = pids.processes.find((p) => p.name === `${secondarySite.name}/transfer`)!.pid;
  const debug = process.env.BENCH_DEBUG !== undefined;
  const groups = Object.fromEntries([...pids.processes.map((p) => [p.name, p.pid] as const), ["baseline-registry", baselineRegistry.pid] as const]);
  /** BENCH_DEBUG: CPU seconds each process used during a step, the busiest first. */
  const cpuReport = (step: string, before: Record<string, number>, wallMs: number) => {
    const used = Object.entries(cpuDelta(before, groupCpuSeconds(groups))).filter(([, s]) => s > 0).sort((a, b) => b[1] - a[1]);
    console.error(`[replication] ${step}: ${round3(wallMs / 1000)} s wall; CPU s ${JSON.stringify(Object.fromEntries(used))}`);
  };

  // 1. A large image: push to available on the secondary, vs skopeo copy of the same image.
  await run("sync", []);
  let cpuBefore = groupCpuSeconds(groups);
  const big = await pushBigImage(primary, "bench/big", "v1");
  if (debug) cpuReport("georep's push (and what replication did meanwhile)", cpuBefore, 0);
  cpuBefore = groupCpuSeconds(groups);
  const availableAt = await waitForTag(secondary, "bench/big", "v1", big.digest, 30 * 60_000, 50);
  const georepSeconds = (availableAt - big.pushedAt) / 1000;
  if (debug) cpuReport("georep's copy", cpuBefore, availableAt - big.pushedAt);
  // skopeo's turn: replication paused, a fresh image of the same size pushed, copied at once.
  const pause = await fetch(`${secondarySite.status}/api/v1/pause`, { method: "POST", headers: { authorization: `Bearer ${stack.admin_token}` } });
  if (pause.status !== 200) throw new Error(`pausing the secondary answered ${pause.status}`);
  await run("sync", []);
  const quietPush = await pushBigImage(primary, "bench/big-skopeo", "v1");
  cpuBefore = groupCpuSeconds(groups);
  const skopeoMs = await run("skopeo", [
    "--insecure-policy",
    "copy",
    "--preserve-digests",
    "--src-tls-verify=false",
    "--dest-tls-verify=false",
    "--src-creds",
    `${stack.credentials.username}:${stack.credentials.password}`,
    `docker://${primarySite.registry.replace(/^https?:\/\//, "")}/bench/big-skopeo:v1`,
    `docker://${baselineRegistry.host}/bench/big-skopeo:v1`,
  ]);
  if (debug) cpuReport("skopeo's copy (skopeo itself not counted)", cpuBefore, skopeoMs);
  const label = `${IMAGE_BYTES / MB}MiB-4-layers`;
  console.log(JSON.stringify({ bench: `replication.push-to-available-${label}`, value: round3(georepSeconds), baseline: round3(skopeoMs / 1000), ratio: round3(georepSeconds / (skopeoMs / 1000)), unit: "s", target: "ratio <= 0.8" }));
  console.log(JSON.stringify({ bench: `replication.push-duration-${label}`, value: round3(big.pushMs / 1000), baseline: round3(quietPush.pushMs / 1000), ratio: round3(big.pushMs / quietPush.pushMs), unit: "s", target: "informative: the push with replication running vs paused" }));
  const rss = await peakRssMb(transferPid);
  console.log(JSON.stringify({ bench: `replication.transfer-peak-rss-${label}`, value: round3(rss), baseline: null, ratio: null, unit: "MB", target: "value <= 150" }));

} finally {
  await stopStack(dir);
  await baselineRegistry.stop();
  await rm(dir, { recursive: true, force: true });
}

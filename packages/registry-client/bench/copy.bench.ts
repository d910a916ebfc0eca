/**
 * Benchmark: copy an image whose single layer is a large random blob
 * (BENCH_BLOB_MB, default 1024) from one local Distribution to a fresh one,
 * with this client vs `skopeo copy`, in the same run; and the peak RSS of the
 * copying process. Prints JSON lines (see scripts/bench.mjs).
 */
import { spawn } from "node:child_process";
import { createCipheriv, createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { Readable } from "node:stream";
import { createGzip } from "node:zlib";
import { fileURLToPath } from "node:url";
import { startRegistry } from "@georep/testing";
import type { RunningRegistry } from "@georep/testing";
import { createRegistryClient } from "../dist/index.js";

const MB = 1024 * 1024;
const blobBytes = Number(process.env.BENCH_BLOB_MB ?? 1024) * MB;
const runs = Number(process.env.BENCH_RUNS ?? 5);
const REPOSITORY = "bench/big";
const TAG = "v1";

/** A reproducible pseudo-random stream (AES-CTR keystream), fast enough not to be the bottleneck. */
function randomStream(size: number, key: Buffer, iv: Buffer): Readable {
  const cipher = createCipheriv("aes-128-ctr", key, iv);
  const zeros = Buffer.alloc(MB);
  let left = size;
  return new Readable({
    read() {
      if (left === 0) {
        this.push(null);
        return;
      }
      const n = Math.min(left, zeros.length);
      left -= n;
      this.push(cipher.update(zeros.subarray(0, n)));
    },
  });
}

/**
 * The layer: random bytes in a gzip stream of stored (level 0) blocks. A
 * compressed layer is what registries hold, and it keeps skopeo from
 * compressing it on the way (which would measure gzip, not copying).
 */
function layerStream(key: Buffer, iv: Buffer): Readable {
  return randomStream(blobBytes, key, iv).pipe(createGzip({ level: 0 }));
}

async function seed(registry: RunningRegistry): Promise<void> {
  const key = randomBytes(16);
  const iv = randomBytes(16);
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of layerStream(key, iv)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  const layer = { digest: `sha256:${hash.digest("hex")}`, size, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" };
  const configBytes = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [layer.digest] } }));
  const config = { digest: `sha256:${createHash("sha256").update(configBytes).digest("hex")}`, size: configBytes.length, mediaType: "application/vnd.oci.image.config.v1+json" };
  const client = createRegistryClient({ url: registry.url });
  await client.uploadBlob(REPOSITORY, layer, layerStream(key, iv));
  await client.uploadBlob(REPOSITORY, config, configBytes);
  const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config, layers: [layer] }));
  await client.putManifest(REPOSITORY, TAG, { raw, mediaType: "application/vnd.oci.image.manifest.v1+json" });
}

interface Measured {
  readonly seconds: number;
  readonly maxRssBytes: number | undefined;
}

function run(command: string, args: readonly string[]): Promise<{ stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.once("error", reject);
    child.once("exit", (code) => {
      if (code === 0) resolve({ stdout, stderr, ms: performance.now() - started });
      else reject(new Error(`${command} exited with ${code}: ${stderr.slice(-2000)}`));
    });
  });
}

async function ours(source: RunningRegistry, target: RunningRegistry): Promise<Measured> {
  const worker = fileURLToPath(new URL("./copy-worker.mjs", import.meta.url));
  // The copier runs as the transfer service will: a small young generation
  // (--max-semi-space-size=1, in MB) so that streamed chunks are freed soon
  // instead of piling up between scavenges.
  const { stdout, ms } = await run(process.execPath, ["--max-semi-space-size=1", worker, source.url, target.url, REPOSITORY, TAG]);
  const line = JSON.parse(stdout.trim().split("\n").pop()!) as { maxRssBytes: number; bytes: number };
  if (line.bytes < blobBytes) throw new Error(`the client copied ${line.bytes} bytes, expected at least the layer's ${blobBytes}`);
  return { seconds: ms / 1000, maxRssBytes: line.maxRssBytes };
}

async function skopeo(source: RunningRegistry, target: RunningRegistry): Promise<Measured> {
  const args = ["--insecure-policy", "copy", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false", `docker://${source.host}/${REPOSITORY}:${TAG}`, `docker://${target.host}/${REPOSITORY}:${TAG}`];
  // GNU time reports the peak RSS of skopeo itself when it is installed.
  if (existsSync("/usr/bin/time")) {
    const { stderr, ms } = await run("/usr/bin/time", ["-f", "georep-maxrss-kb=%M", "skopeo", ...args]);
    const kb = /georep-maxrss-kb=(\d+)/.exec(stderr)?.[1];
    return { seconds: ms / 1000, maxRssBytes: kb === undefined ? undefined : Number(kb) * 1024 };
  }
  const { ms } = await run("skopeo", args);
  return { seconds: ms / 1000, maxRssBytes: undefined };
}

async function verify(target: RunningRegistry, expected: string): Promise<void> {
  const head = await createRegistryClient({ url: target.url }).headManifest(REPOSITORY, TAG);
  if (head?.digest !== expected) throw new Error(`target ${target.url} has ${head?.digest} for ${REPOSITORY}:${TAG}, expected ${expected}`);
}

const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const source = await startRegistry();
const targets: RunningRegistry[] = [];
try {
  await seed(source);
  const expected = (await createRegistryClient({ url: source.url }).headManifest(REPOSITORY, TAG))!.digest;
  const mine: Measured[] = [];
  const theirs: Measured[] = [];
  for (let i = 0; i < runs; i++) {
    // Alternate who goes first; each copy goes into a fresh registry.
    for (const who of i % 2 === 0 ? (["ours", "skopeo"] as const) : (["skopeo", "ours"] as const)) {
      const target = await startRegistry();
      targets.push(target);
      // Flush the previous copy's dirty pages so its writeback does not slow this one.
      await run("sync", []);
      (who === "ours" ? mine : theirs).push(who === "ours" ? await ours(source, target) : await skopeo(source, target));
      await verify(target, expected);
      await target.stop();
    }
  }
  const seconds = median(mine.map((m) => m.seconds));
  const baseline = median(theirs.map((m) => m.seconds));
  const label = `${blobBytes / MB}MiB`;
  console.log(JSON.stringify({ bench: `registry-client.copy-image-${label}`, value: round(seconds), baseline: round(baseline), ratio: round(seconds / baseline), unit: "s", target: "ratio <= 0.9", runs, samples: mine.map((m) => round(m.seconds)), baseline_samples: theirs.map((m) => round(m.seconds)) }));
  const rss = Math.max(...mine.map((m) => m.maxRssBytes ?? 0)) / MB;
  const skopeoRss = theirs.every((m) => m.maxRssBytes !== undefined) ? Math.max(...theirs.map((m) => m.maxRssBytes!)) / MB : null;
  console.log(JSON.stringify({ bench: `registry-client.copy-image-${label}.peak-rss`, value: round(rss), baseline: skopeoRss === null ? null : round(skopeoRss), ratio: skopeoRss === null ? null : round(rss / skopeoRss), unit: "MB", target: "value <= 150", runs }));
} finally {
  await Promise.all([source.stop(), ...targets.map((t) => t.stop())]);
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

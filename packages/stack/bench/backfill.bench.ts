/**
 * Backfill benchmark: BENCH_REPOS (default 1000) small repositories sharing
 * a base layer on the primary, replicated from an empty secondary by the
 * dispatcher's catalog walk and the transfer service (both run as their own
 * processes, as deployed), vs `skopeo sync --all` of the same set into a
 * fresh registry in the same run. Also: bytes the transfer service copied
 * divided by the unique blob bytes (a shared layer must be mounted, not
 * copied again).
 *
 * BENCH_DEBUG=1 also prints, to stderr: rows synced every 2 s, the CPU
 * seconds of each process during georep's run, the registries' requests by
 * kind, and Postgres' transaction and table counters.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { createRegistryClient } from "@georep/registry-client";
import { cpuDelta, freePort, groupCpuSeconds, startNats, startPostgres, startRegistry } from "@georep/testing";

const REPOS = Number(process.env.BENCH_REPOS ?? 1000);
const BASE_BYTES = Number(process.env.BENCH_BASE_KB ?? 1024) * 1024;
const round3 = (v: number) => Math.round(v * 1000) / 1000;
const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const resolve = (specifier: string) => createRequire(import.meta.url).resolve(specifier);

function run(command: string, args: readonly string[]): Promise<number> {
  const started = performance.now();
  return new Promise((ok, fail) => {
    const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.once("error", fail);
    child.once("exit", (code) => (code === 0 ? ok(performance.now() - started) : fail(new Error(`${command} exited ${code}: ${stderr.slice(-1500)}`))));
  });
}

async function waitReady(url: string, child: ChildProcess, name: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/health/ready`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} not ready`);
}

/** Requests in a Distribution access log from byte `from` on, by method, kind (manifests, blobs, uploads, tags…) and status. */
async function requestKinds(logFile: string, from: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const text = (await readFile(logFile)).subarray(from).toString("utf8");
  for (const m of text.matchAll(/"(\w+) (\/v2\/[^ "]*) HTTP\/[\d.]+" (\d+)/g)) {
    const path = m[2] ?? "";
    const kind = ["/manifests/", "/blobs/uploads/", "/blobs/", "/tags/", "/referrers/", "/_catalog"].find((k) => path.includes(k)) ?? "/v2/";
    const key = `${m[1]} ${kind} ${m[3]}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

const dir = await mkdtemp(join(tmpdir(), "georep-backfill-bench-"));
const [primaryRegistry, secondaryRegistry, skopeoRegistry, nats, postgres] = await Promise.all([
  startRegistry(),
  startRegistry(),
  startRegistry(),
  startNats({ domain: "secondary-1" }),
  startPostgres(),
]);
const children: ChildProcess[] = [];
try {
  // The primary: REPOS repositories, each a manifest over the shared base layer (mounted) and a small layer of its own.
  const primary = createRegistryClient({ url: primaryRegistry.url, maxConcurrentRequests: 16 });
  const base = randomBytes(BASE_BYTES);
  const baseDesc = { mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(base), size: base.length };
  await primary.uploadBlob("bench/r0", baseDesc, base);
  let uniqueBytes = base.length;
  const names = Array.from({ length: REPOS }, (_, i) => `bench/r${i}`);
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < names.length) {
        const repository = names[next++]!;
        if (repository !== "bench/r0") await primary.mountBlob(repository, baseDesc.digest, "bench/r0");
        const own = randomBytes(4096);
        const ownDesc = { mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(own), size: own.length };
        const configBytes = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", repository }));
        const config = { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(configBytes), size: configBytes.length };
        await primary.uploadBlob(repository, ownDesc, own);
        await primary.uploadBlob(repository, config, configBytes);
        uniqueBytes += own.length + configBytes.length;
        const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config, layers: [baseDesc, ownDesc] }));
        await primary.putManifest(repository, "v1", { raw, mediaType: "application/vnd.oci.image.manifest.v1+json" });
      }
    }),
  );

  // georep: dispatcher and transfer against an empty secondary.
  const env = {
    ...process.env,
    NATS_URL: nats.url,
    DATABASE_URL: postgres.url,
    SITE_NAME: "secondary-1",
    SITE_ROLE: "secondary",
    PRIMARY_REGISTRY_URL: primaryRegistry.url,
    SECONDARY_REGISTRY_URL: secondaryRegistry.url,
    LOG_LEVEL: "warn",
    HTTP_HOST: "127.0.0.1",
  };
  const started = performance.now();
  const debug = process.env.BENCH_DEBUG !== undefined;
  const groups: Record<string, number> = { primary: primaryRegistry.pid, secondary: secondaryRegistry.pid, nats: nats.pid, postgres: postgres.pid ?? -1 };
  const cpuBefore = groupCpuSeconds(groups);
  const logStart = { primary: (await stat(primaryRegistry.logFile)).size, secondary: (await stat(secondaryRegistry.logFile)).size };
  const dispatcherPort = await freePort();
  const transferPort = await freePort();
  const dispatcher = spawn(process.execPath, [resolve("@georep/dispatcher/dist/main.js")], { env: { ...env, HTTP_PORT: String(dispatcherPort), DISPATCHER_MAX_CONCURRENT_SYNCS: "16" }, stdio: ["ignore", "ignore", "inherit"] });
  children.push(dispatcher);
  await waitReady(`http://127.0.0.1:${dispatcherPort}`, dispatcher, "dispatcher");
  const transfer = spawn(process.execPath, ["--max-semi-space-size=1", resolve("@georep/transfer/dist/main.js")], { env: { ...env, HTTP_PORT: String(transferPort), TRANSFER_CONCURRENCY: "8" }, stdio: ["ignore", "ignore", "inherit"] });
  children.push(transfer);
  await waitReady(`http://127.0.0.1:${transferPort}`, transfer, "transfer");

  const db = new pg.Client({ connectionString: postgres.url });
  await db.connect();
  let lastReport = performance.now();
  for (;;) {
    const { rows } = await db.query<{ synced: string; failed: string }>("select count(*) filter (where state = 'synced') as synced, count(*) filter (where state = 'failed') as failed from repository_sync");
    if (debug && performance.now() - lastReport >= 2000) {
      lastReport = performance.now();
      console.error(`[backfill] ${round3((lastReport - started) / 1000)} s: ${rows[0]?.synced} synced, ${rows[0]?.failed} failed`);
    }
    if (Number(rows[0]?.synced) >= REPOS) break;
    if (performance.now() - started > 30 * 60_000) throw new Error(`backfill incomplete after 30 min: ${JSON.stringify(rows[0])}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const georepSeconds = (performance.now() - started) / 1000;
  if (debug) {
    const cpu = cpuDelta(cpuBefore, groupCpuSeconds({ ...groups, dispatcher: dispatcher.pid ?? -1, transfer: transfer.pid ?? -1 }));
    console.error(`[backfill] georep ${round3(georepSeconds)} s; CPU seconds per process group: ${JSON.stringify(cpu)}`);
    for (const [site, registry] of [["primary", primaryRegistry], ["secondary", secondaryRegistry]] as const) {
      console.error(`[backfill] ${site} registry requests: ${JSON.stringify(await requestKinds(registry.logFile, logStart[site]))}`);
    }
  }
  if (debug) {
    const { rows } = await db.query("select xact_commit, tup_inserted, tup_updated, tup_deleted, tup_returned, tup_fetched from pg_stat_database where datname = current_database()");
    console.error(`[backfill] postgres: ${JSON.stringify(rows[0])}`);
    const tables = await db.query("select relname, seq_scan, seq_tup_read, idx_scan, idx_tup_fetch, n_tup_ins, n_tup_upd from pg_stat_user_tables order by seq_tup_read desc");
    for (const t of tables.rows) console.error(`[backfill] postgres table: ${JSON.stringify(t)}`);
  }
  await db.end();
  const metrics = await (await fetch(`http://127.0.0.1:${transferPort}/metrics`)).text();
  const copied = Number(/^georep_transfer_bytes_copied_total (\d+)/m.exec(metrics)?.[1] ?? Number.NaN);

  // skopeo sync of the same set into a fresh registry.
  const yaml = join(dir, "sync.yaml");
  await writeFile(yaml, `${primaryRegistry.host}:\n  tls-verify: false\n  images:\n${names.map((n) => `    ${n}: []`).join("\n")}\n`);
  const skopeoMs = await run("skopeo", ["--insecure-policy", "sync", "--all", "--preserve-digests", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false", yaml, `${skopeoRegistry.host}/mirror`]);

  console.log(JSON.stringify({ bench: `backfill.${REPOS}-repositories`, value: round3(georepSeconds), baseline: round3(skopeoMs / 1000), ratio: round3(georepSeconds / (skopeoMs / 1000)), unit: "s", target: "ratio <= 0.5" }));
  console.log(JSON.stringify({ bench: `backfill.${REPOS}-repositories.bytes-over-unique`, value: copied, baseline: uniqueBytes, ratio: round3(copied / uniqueBytes), unit: "bytes", target: "ratio <= 1.01" }));
} finally {
  for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
  await Promise.all(children.filter((c) => c.exitCode === null).map((c) => new Promise((r) => c.once("exit", r))));
  await Promise.all([primaryRegistry.stop(), secondaryRegistry.stop(), skopeoRegistry.stop(), nats.stop(), postgres.stop()]);
  await rm(dir, { recursive: true, force: true });
}

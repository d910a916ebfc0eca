/**
 * The real process: `node dist/main.js` configured from the environment,
 * with tokens minted from the shared key for a token-auth primary registry,
 * backfilling, dispatching, answering resync requests, and shutting down
 * cleanly on SIGTERM.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTokenIssuer, createTokenProvider, generateKeyMaterial, loadSigningKey, writeKeyMaterial } from "@georep/jwt";
import { createRegistryClient } from "@georep/registry-client";
import { connectNats } from "@georep/runtime";
import { resyncSubject } from "@georep/schema";
import { freePort, startNats, startPostgres, startRegistry, serviceMain } from "@georep/testing";
import type { RunningNats, RunningPostgres, RunningRegistry, ServiceRun } from "@georep/testing";
import { SITE, logger, pushTinyRepositories, storedJobs, waitUntil } from "../helpers.js";

const main = serviceMain(new URL("../..", import.meta.url));
const SERVICE = "primary.test";
const ISSUER = "georep";


let nats: RunningNats;
let postgres: RunningPostgres;
let registry: RunningRegistry;
let nc: NatsConnection;
let keyDir: string;
let keyPath: string;
let certificatePath: string;

beforeAll(async () => {
  keyDir = await mkdtemp(join(tmpdir(), "georep-dispatcher-keys-"));
  ({ keyPath, certificatePath } = await writeKeyMaterial(generateKeyMaterial({ algorithm: "ES256", commonName: "georep test" }), keyDir));
  [nats, postgres, registry] = await Promise.all([
    startNats({ domain: SITE }),
    startPostgres(),
    // The realm is never called: the sites mint their tokens with the shared key.
    startRegistry({ auth: { token: { realm: "http://127.0.0.1:9/token", service: SERVICE, issuer: ISSUER, rootCertBundle: certificatePath } } }),
    main.ensureBuilt(),
  ]);
  nc = await connectNats({ servers: nats.url, name: "test-client", logger });
  const pusher = createTokenProvider({ issuer: createTokenIssuer({ issuer: ISSUER, key: await loadSigningKey({ keyPath }) }), subject: "test" });
  await pushTinyRepositories(createRegistryClient({ url: registry.url, credentials: { type: "provider", provider: pusher } }), "main/app", 2);
});

afterAll(async () => {
  main.killAll();
  await nc?.close();
  await Promise.all([nats?.stop(), postgres?.stop(), registry?.stop()]);
  if (keyDir !== undefined) await rm(keyDir, { recursive: true, force: true });
});

const run = (env: Record<string, string>): ServiceRun => main.run(env);

describe("dispatcher main", () => {
  it("starts from the environment, backfills through token auth, dispatches, and exits 0 on SIGTERM", async () => {
    const port = await freePort();
    const proc = run({
      NATS_URL: nats.url,
      DATABASE_URL: postgres.url,
      SITE_NAME: SITE,
      SITE_ROLE: "secondary",
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: String(port),
      LOG_LEVEL: "info",
      PRIMARY_REGISTRY_URL: registry.url,
      REGISTRY_TOKEN_KEY_FILE: keyPath,
      REGISTRY_TOKEN_CERT_FILE: certificatePath,
      DISPATCHER_TICK_MS: "100",
    });
    const base = `http://127.0.0.1:${port}`;
    await waitUntil("/health/ready to answer 200", async () => {
      if (proc.child.exitCode !== null) throw new Error(`exited early (${proc.child.exitCode}): ${proc.stderr()}${proc.stdout()}`);
      return (await fetch(`${base}/health/ready`).catch(() => undefined))?.status === 200;
    });

    // The backfill read the catalog with a minted token and both repositories were dispatched.
    await waitUntil("two backfill jobs", async () => (await storedJobs(nc)).length === 2);
    expect((await storedJobs(nc)).map((j) => [j.repository, j.reason]).sort()).toEqual([
      ["main/app-000", "backfill"],
      ["main/app-001", "backfill"],
    ]);
    const reply = await nc.request(resyncSubject(SITE), JSON.stringify({ repository: "main/app-000" }), { timeout: 5_000 });
    expect(reply.json()).toEqual({ accepted: 1 });

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^georep_dispatcher_backfill_repositories_added_total 2$/m);
    expect(metrics).toMatch(/^georep_dispatcher_backfill_runs_total\{outcome="ok"\} 1$/m);
    expect(metrics).toMatch(/^georep_dispatcher_jobs_dispatched_total\{reason="backfill"\} 2$/m);
    expect(metrics).toMatch(/^georep_dispatcher_resync_requests_total\{outcome="accepted"\} 1$/m);
    expect(metrics).toMatch(/^georep_dispatcher_repositories\{state="pending"\} 2$/m);
    // no transfer runs here: the two backfill jobs (at least) wait in TRANSFER_JOBS
    expect(Number(/^georep_queue_depth\{queue="transfer_jobs"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2);
    expect(metrics).toMatch(/^georep_queue_depth\{queue="geo_events"\} 0$/m);

    proc.child.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    const lines = proc.stdout().trim().split("\n").map((l) => JSON.parse(l) as { level: number | string; msg: string });
    expect(lines.some((l) => l.msg === "dispatcher stopped")).toBe(true);
    expect(lines.some((l) => l.msg === "shutdown complete")).toBe(true);
    expect(lines.filter((l) => l.level === "error" || l.level === "fatal" || l.level === 50 || l.level === 60)).toEqual([]);
    await expect(fetch(`${base}/health/live`)).rejects.toThrow();
  });

  it("refuses a bad environment with exit code 2, naming every problem", async () => {
    const proc = run({ SITE_NAME: SITE, SITE_ROLE: "primary", PRIMARY_REGISTRY_USERNAME: "alice", HTTP_PORT: "http" });
    expect(await proc.exited).toBe(2);
    const stderr = proc.stderr();
    expect(stderr).toContain("DATABASE_URL");
    expect(stderr).toContain("PRIMARY_REGISTRY_URL");
    expect(stderr).toContain("HTTP_PORT");
    expect(stderr).toMatch(/SITE_ROLE: the dispatcher runs on secondary sites only/);
    expect(stderr).toMatch(/PRIMARY_REGISTRY_PASSWORD/);
  });
});

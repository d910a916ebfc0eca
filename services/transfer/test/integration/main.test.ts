/**
 * The real process: `node dist/main.js` configured from the environment;
 * killed with SIGKILL mid-sync, its lease expires and another worker
 * completes the repository.
 */
import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNats } from "@georep/runtime";
import { createRegistryClient } from "@georep/registry-client";
import type { RegistryClient } from "@georep/registry-client";
import { getRow, migrateTracking } from "@georep/tracking";
import type { TrackingDatabase } from "@georep/tracking";
import { freePort, startNats, startPostgres, startRegistry, serviceMain } from "@georep/testing";
import type { RunningNats, RunningPostgres, RunningRegistry, ServiceRun } from "@georep/testing";
import { buildTransfer } from "../../src/app.js";
import type { Transfer } from "../../src/app.js";
import { blob, checksumOf, image, push, tagMap } from "../content.js";
import { createJobsStream, dispatch, logger, testOptions, waitUntil } from "../helpers.js";

const main = serviceMain(new URL("../..", import.meta.url));


let nats: RunningNats;
let postgres: RunningPostgres;
let primaryRegistry: RunningRegistry;
let secondaryRegistry: RunningRegistry;
let nc: NatsConnection;
let db: Kysely<TrackingDatabase>;
let primary: RegistryClient;
let secondary: RegistryClient;
let rescuer: Transfer | undefined;

beforeAll(async () => {
  [nats, postgres, primaryRegistry, secondaryRegistry] = await Promise.all([startNats({ domain: "secondary" }), startPostgres(), startRegistry(), startRegistry(), main.ensureBuilt()]);
  nc = await connectNats({ servers: nats.url, name: "transfer-main-test", logger });
  const pool = new pg.Pool({ connectionString: postgres.url, max: 4 });
  pool.on("error", () => undefined);
  db = new Kysely<TrackingDatabase>({ dialect: new PostgresDialect({ pool }) });
  await migrateTracking(db);
  await createJobsStream(nc);
  primary = createRegistryClient({ url: primaryRegistry.url });
  secondary = createRegistryClient({ url: secondaryRegistry.url });
});

afterAll(async () => {
  main.killAll();
  await rescuer?.stop();
  await rescuer?.http.close();
  await nc?.close();
  await db?.destroy();
  await Promise.all([nats?.stop(), postgres?.stop(), primaryRegistry?.stop(), secondaryRegistry?.stop()]);
});

const run = (env: Record<string, string>): ServiceRun => main.run(env);

async function environment(workerId: string): Promise<Record<string, string>> {
  return {
    NATS_URL: nats.url,
    DATABASE_URL: postgres.url,
    SITE_NAME: "secondary-1",
    SITE_ROLE: "secondary",
    HTTP_HOST: "127.0.0.1",
    HTTP_PORT: String(await freePort()),
    PRIMARY_REGISTRY_URL: primaryRegistry.url,
    SECONDARY_REGISTRY_URL: secondaryRegistry.url,
    TRANSFER_WORKER_ID: workerId,
    TRANSFER_LEASE_MS: "2000",
    TRANSFER_ACK_WAIT_MS: "3000",
    LOG_LEVEL: "info",
  };
}

describe("transfer main", () => {
  it("refuses a bad configuration with exit code 2, naming every problem", async () => {
    const proc = run({ SITE_NAME: "secondary-1", SITE_ROLE: "primary", PRIMARY_REGISTRY_URL: "ftp://x", PRIMARY_REGISTRY_USERNAME: "only-user" });
    expect(await proc.exited).toBe(2);
    for (const variable of ["DATABASE_URL", "SECONDARY_REGISTRY_URL", "PRIMARY_REGISTRY_URL", "SITE_ROLE", "PRIMARY_REGISTRY_PASSWORD"]) expect((proc.stdout() + proc.stderr())).toContain(variable);
  });

  it("refuses a NATS user without its password with exit code 2, naming NATS_PASSWORD", async () => {
    const env = await environment("half-credentials");
    const proc = run({ ...env, NATS_USER: "transfer" });
    expect(await proc.exited).toBe(2);
    expect(proc.stderr()).toContain("NATS_PASSWORD: required with NATS_USER");
  });

  it("SIGTERM mid-sync: the in-flight sync finishes and is recorded, the process exits 0", async () => {
    const env = await environment("graceful-worker");
    const proc = run(env);
    await waitUntil("the process to be ready", async () => {
      const res = await fetch(`http://127.0.0.1:${env.HTTP_PORT}/health/ready`).catch(() => undefined);
      return res?.status === 200;
    });
    const repo = "graceful/app";
    const img = image({ layers: [blob(randomBytes(20 * 1024 * 1024))] });
    await push(primary, repo, img, ["v1"]);
    await dispatch(nc, db, repo);
    await waitUntil("the sync to start", async () => (await getRow(db, repo))?.leaseOwner === "graceful-worker", 20_000, 10);
    proc.child.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    expect(await getRow(db, repo)).toMatchObject({ state: "synced", leaseOwner: null });
    expect((await tagMap(secondary, repo)).get("v1")).toBe(img.digest);
    expect((proc.stdout() + proc.stderr())).toContain("waiting for in-flight syncs");
  });

  it("a worker killed with SIGKILL mid-sync: its lease expires and another worker completes the repository", async () => {
    const env = await environment("doomed-worker");
    const proc = run(env);
    await waitUntil("the process to be ready", async () => {
      const res = await fetch(`http://127.0.0.1:${env.HTTP_PORT}/health/ready`).catch(() => undefined);
      return res?.status === 200;
    });
    const metrics = await (await fetch(`http://127.0.0.1:${env.HTTP_PORT}/metrics`)).text();
    expect(metrics).toContain("georep_transfer_syncs_total");

    const repo = "killed/app";
    const big = blob(randomBytes(50 * 1024 * 1024));
    const img = image({ layers: [big] });
    await push(primary, repo, img, ["v1"]);
    await dispatch(nc, db, repo);
    await waitUntil("the doomed worker to start the sync", async () => (await getRow(db, repo))?.leaseOwner === "doomed-worker", 20_000, 10);
    proc.child.kill("SIGKILL");
    await proc.exited;

    // Nothing recorded by the dead worker: the row is still started under its lease.
    expect(await getRow(db, repo)).toMatchObject({ state: "started", leaseOwner: "doomed-worker", syncedGeneration: 0 });

    // Another worker: the job comes back after ack_wait; the lease is taken once it expired.
    rescuer = buildTransfer({ nc, db, primary, secondary, logger, options: testOptions({ workerId: "rescuer", leaseMs: 2_000, ackWaitMs: 3_000 }) });
    await rescuer.start();
    await waitUntil("the repository to be synced by the rescuer", async () => (await getRow(db, repo))?.state === "synced", 30_000);
    const row = await getRow(db, repo);
    expect(row).toMatchObject({ leaseOwner: null, retryCount: 0 });
    expect(row?.verificationChecksum).toBe(checksumOf(await tagMap(primary, repo)));
    expect((await tagMap(secondary, repo)).get("v1")).toBe(img.digest);
    expect((await secondary.headBlob(repo, big.digest))?.size).toBe(big.size);
    expect(rescuer.metrics.get("syncs", "synced")).toBe(1);
  });
});

/**
 * The real process: `node dist/main.js` configured from the environment on
 * a secondary, reading two token-auth registries with pull-only tokens
 * minted from the shared key, serving `/token` (which the secondary
 * registry's realm points at), and shutting down cleanly on SIGTERM; and
 * refusing a bad environment with exit code 2.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTokenIssuer, createTokenProvider, generateKeyMaterial, hashPassword, loadSigningKey, writeKeyMaterial } from "@georep/jwt";
import { createDatabase } from "@georep/runtime";
import { createRegistryClient } from "@georep/registry-client";
import type { TrackingDatabase } from "@georep/tracking";
import { freePort, startNats, startPostgres, startRegistry, serviceMain } from "@georep/testing";
import type { RunningNats, RunningPostgres, RunningRegistry, ServiceRun } from "@georep/testing";
import { ADMIN_TOKEN, logger, pushImage, syncedRow, waitUntil } from "../helpers.js";

const main = serviceMain(new URL("../..", import.meta.url));
const ISSUER = "georep";
const SITE = "secondary1";
const CI_PASSWORD = "ci-password-123";


let nats: RunningNats;
let postgres: RunningPostgres;
let primaryRegistry: RunningRegistry;
let secondaryRegistry: RunningRegistry;
let dir: string;
let keyPath: string;
let certificatePath: string;
let usersPath: string;
let adminTokenPath: string;
let statusPort: number;
let digest: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "georep-status-main-"));
  ({ keyPath, certificatePath } = await writeKeyMaterial(generateKeyMaterial({ algorithm: "ES256", commonName: "georep test" }), join(dir, "keys")));
  statusPort = await freePort();
  [nats, postgres, primaryRegistry, secondaryRegistry] = await Promise.all([
    startNats({ domain: SITE }),
    startPostgres(),
    // The primary's realm is never called: the sites mint their tokens with the shared key.
    startRegistry({ auth: { token: { realm: "http://127.0.0.1:9/token", service: "primary.test", issuer: ISSUER, rootCertBundle: certificatePath } } }),
    // The secondary's realm is the status service's own token endpoint.
    startRegistry({ auth: { token: { realm: `http://127.0.0.1:${statusPort}/token`, service: "secondary.test", issuer: ISSUER, rootCertBundle: certificatePath } } }),
    main.ensureBuilt(),
  ]);
  const pusher = createTokenProvider({ issuer: createTokenIssuer({ issuer: ISSUER, key: await loadSigningKey({ keyPath }) }), subject: "test" });
  digest = await pushImage(createRegistryClient({ url: primaryRegistry.url, credentials: { type: "provider", provider: pusher } }), "main/app", "v1", "m1");
  await pushImage(createRegistryClient({ url: secondaryRegistry.url, credentials: { type: "provider", provider: pusher } }), "main/app", "v1", "m1");
  usersPath = join(dir, "users.json");
  await writeFile(usersPath, JSON.stringify({ users: [{ username: "ci", password_hash: await hashPassword(CI_PASSWORD, { rounds: 4 }), access: [{ repositories: "main/**", actions: ["pull"] }] }] }));
  adminTokenPath = join(dir, "admin-token");
  await writeFile(adminTokenPath, `${ADMIN_TOKEN}\n`);
});

afterAll(async () => {
  main.killAll();
  await Promise.all([nats?.stop(), postgres?.stop(), primaryRegistry?.stop(), secondaryRegistry?.stop()]);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

const run = (env: Record<string, string>): ServiceRun => main.run(env);

describe("status main", () => {
  it("starts from the environment on a secondary, reads token-auth registries, serves /token, and exits 0 on SIGTERM", async () => {
    const proc = run({
      NATS_URL: nats.url,
      DATABASE_URL: postgres.url,
      SITE_NAME: SITE,
      SITE_ROLE: "secondary",
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: String(statusPort),
      LOG_LEVEL: "info",
      STATUS_ADMIN_TOKEN_FILE: adminTokenPath,
      STATUS_REPORT_INTERVAL_MS: "200",
      PRIMARY_REGISTRY_URL: primaryRegistry.url,
      SECONDARY_REGISTRY_URL: secondaryRegistry.url,
      REGISTRY_TOKEN_KEY_FILE: keyPath,
      REGISTRY_TOKEN_CERT_FILE: certificatePath,
      REGISTRY_TOKEN_ISSUER: ISSUER,
      STATUS_TOKEN_USERS_FILE: usersPath,
      STATUS_TOKEN_SERVICE: "secondary.test",
    });
    const base = `http://127.0.0.1:${statusPort}`;
    await waitUntil("/health/ready to answer 200", async () => {
      if (proc.child.exitCode !== null) throw new Error(`exited early (${proc.child.exitCode}): ${proc.stderr()}${proc.stdout()}`);
      return (await fetch(`${base}/health/ready`).catch(() => undefined))?.status === 200;
    });
    // main migrates the tracking tables itself (it may start before the dispatcher); ready means migrated.
    expect((await fetch(`${base}/api/v1/site`)).status).toBe(200);
    const db = createDatabase<TrackingDatabase>({ url: postgres.url, poolSize: 1, logger });
    try {
      await syncedRow(db.db, "main/app");
    } finally {
      await db.close();
    }

    const detail = (await (await fetch(`${base}/api/v1/repositories/main/app`)).json()) as { tags: unknown[]; tags_error: unknown };
    expect(detail.tags_error).toBeNull();
    expect(detail.tags).toEqual([{ tag: "v1", primary_digest: digest, secondary_digest: digest, in_sync: true }]);
    const wait = await fetch(`${base}/api/v1/replication/wait?repository=main/app&tag=v1&timeout=5`);
    expect(wait.status).toBe(200);
    expect(await wait.json()).toMatchObject({ digest, tag: "v1" });

    // The admin token came from STATUS_ADMIN_TOKEN_FILE.
    expect((await fetch(`${base}/api/v1/pause`, { method: "POST", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).toBe(200);
    expect(((await (await fetch(`${base}/api/v1/site`)).json()) as { paused: boolean }).paused).toBe(true);
    expect((await fetch(`${base}/api/v1/resume`, { method: "POST", headers: { authorization: "Bearer wrong" } })).status).toBe(403);

    // The token endpoint: a client with basic credentials pulls from the secondary through it.
    expect((await fetch(`${base}/token?service=secondary.test&scope=repository:main/app:pull`)).status).toBe(401);
    const client = createRegistryClient({ url: secondaryRegistry.url, credentials: { type: "basic", username: "ci", password: CI_PASSWORD } });
    expect(await client.listTags("main/app")).toEqual(["v1"]);
    expect((await client.headManifest("main/app", "v1"))?.digest).toBe(digest);

    await waitUntil("this site in the sites view", async () => {
      const sites = (await (await fetch(`${base}/api/v1/sites`)).json()) as { items: { site: string; report: { paused?: boolean } }[] };
      return sites.items.some((s) => s.site === SITE && s.report.paused === true);
    });
    expect((await fetch(`${base}/`)).headers.get("content-type")).toMatch(/^text\/html/);
    expect((await fetch(`${base}/metrics`)).status).toBe(200);

    proc.child.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    const lines = proc.stdout().trim().split("\n").map((l) => JSON.parse(l) as { level: number | string; msg: string });
    expect(lines.some((l) => l.msg === "token endpoint mounted at /token")).toBe(true);
    expect(lines.some((l) => l.msg === "shutdown complete")).toBe(true);
    expect(lines.filter((l) => l.level === "error" || l.level === "fatal" || l.level === 50 || l.level === 60)).toEqual([]);
    expect(proc.stdout()).not.toContain(ADMIN_TOKEN);
    await expect(fetch(`${base}/health/live`)).rejects.toThrow();
  });

  it("starts on the primary without registries and without /token", async () => {
    const port = await freePort();
    const proc = run({
      NATS_URL: nats.url,
      DATABASE_URL: postgres.url,
      SITE_NAME: "primary1",
      SITE_ROLE: "primary",
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: String(port),
      LOG_LEVEL: "warn",
      STATUS_ADMIN_TOKEN: ADMIN_TOKEN,
    });
    const base = `http://127.0.0.1:${port}`;
    await waitUntil("/health/ready to answer 200", async () => {
      if (proc.child.exitCode !== null) throw new Error(`exited early (${proc.child.exitCode}): ${proc.stderr()}${proc.stdout()}`);
      return (await fetch(`${base}/health/ready`).catch(() => undefined))?.status === 200;
    });
    expect((await fetch(`${base}/token`)).status).toBe(404);
    expect((await fetch(`${base}/api/v1/repositories`)).status).toBe(409);
    proc.child.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
  });

  it("refuses a bad environment with exit code 2, naming every problem", async () => {
    const proc = run({ SITE_NAME: SITE, SITE_ROLE: "secondary", DATABASE_URL: postgres.url, HTTP_PORT: "http", STATUS_TOKEN_SERVICE: "registry" });
    expect(await proc.exited).toBe(2);
    const stderr = proc.stderr();
    expect(stderr).toMatch(/STATUS_ADMIN_TOKEN: required/);
    expect(stderr).toMatch(/PRIMARY_REGISTRY_URL: required on a secondary site/);
    expect(stderr).toMatch(/SECONDARY_REGISTRY_URL: required on a secondary site/);
    expect(stderr).toContain("HTTP_PORT");
    expect(stderr).toMatch(/STATUS_TOKEN_USERS_FILE: required for the \/token endpoint/);
    expect(proc.stdout()).toBe("");
  });
});

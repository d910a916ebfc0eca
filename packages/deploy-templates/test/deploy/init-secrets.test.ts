/** deploy/init-secrets.sh: the random secret files of a site, never overwritten. */
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, run } from "../support/tools.js";

const SCRIPT = join(ROOT, "deploy/init-secrets.sh");
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "georep-init-secrets-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const mode = async (path: string) => (await stat(path)).mode & 0o777;
const read = async (path: string) => (await readFile(path, "utf8")).trim();

describe("deploy/init-secrets.sh", () => {
  it("primary: writes the random secrets and the database URL with the same password, names what it cannot make", async () => {
    const secrets = join(dir, "primary");
    const result = await run("/bin/sh", [SCRIPT, "primary", secrets]);
    expect(result.code).toBe(1);
    for (const name of ["admin_token", "registry_http_secret", "postgres_password", "notification_secret", "leafnode_password", "nats_event_log_password", "nats_ingest_password", "nats_status_password"]) {
      expect(await read(join(secrets, name)), name).toMatch(/^[0-9a-f]{48}$/);
      expect(await mode(join(secrets, name)), name).toBe(0o644);
    }
    expect(await read(join(secrets, "database_url"))).toBe(`postgres://georep:${await read(join(secrets, "postgres_password"))}@postgres:5432/georep`);
    expect(await mode(secrets)).toBe(0o700);
    expect(result.stdout).toContain(`missing ${secrets}/key.pem: the signing key every site shares`);
    expect(result.stdout).toContain("pnpm georep keys generate --out");
    expect(result.stdout).toContain(`missing ${secrets}/token_users.json`);
    expect(result.stdout).not.toContain("leafnode_password: copy");
    expect(new Set(await Promise.all(["admin_token", "registry_http_secret", "notification_secret"].map((n) => read(join(secrets, n))))).size).toBe(3);
  });

  it("keeps existing files, opens the shared ones to the containers' users, and succeeds once everything is there", async () => {
    const secrets = join(dir, "primary");
    const before = await read(join(secrets, "admin_token"));
    for (const name of ["key.pem", "cert.pem", "token_users.json"]) await writeFile(join(secrets, name), "x\n", { mode: 0o600 });
    const result = await run("/bin/sh", [SCRIPT, "primary", secrets]);
    expect(result.code, result.stdout).toBe(0);
    expect(await read(join(secrets, "admin_token"))).toBe(before);
    expect(result.stdout).toContain(`kept    ${secrets}/admin_token`);
    expect(await mode(join(secrets, "key.pem"))).toBe(0o644);
  });

  it("secondary: no notification secret, and the leafnode password must come from the primary", async () => {
    const secrets = join(dir, "secondary");
    const result = await run("/bin/sh", [SCRIPT, "secondary", secrets]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`missing ${secrets}/leafnode_password: copy the primary's`);
    await expect(stat(join(secrets, "notification_secret"))).rejects.toThrow();
    expect(await read(join(secrets, "admin_token"))).toMatch(/^[0-9a-f]{48}$/);
    // the NATS users of the secondary's services (deploy/secondary/nats.conf)
    for (const name of ["nats_dispatcher_password", "nats_status_password", "nats_transfer_password"]) expect(await read(join(secrets, name)), name).toMatch(/^[0-9a-f]{48}$/);
    await expect(stat(join(secrets, "nats_ingest_password"))).rejects.toThrow();
  });

  it("refuses an unknown role", async () => {
    const result = await run("/bin/sh", [SCRIPT, "tertiary", join(dir, "x")]);
    expect(result.code).toBe(64);
    expect(result.stderr).toContain("usage:");
  });
});

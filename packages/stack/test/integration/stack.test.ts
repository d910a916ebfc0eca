/** The local stack CLI, as `make up` / `make status` / `make down` run it. */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { createRegistryClient } from "@georep/registry-client";
import { groupAlive } from "@georep/testing/internal";
import type { StackDescription } from "../../src/index.js";

const run = promisify(execFile);
const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const cli = fileURLToPath(new URL("../../dist/cli.js", import.meta.url));

async function stack(args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    const { stdout } = await run(process.execPath, [cli, ...args], { env: { ...process.env, ...env } });
    return { code: 0, stdout };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout + e.stderr };
  }
}

describe("stack up / status / down", () => {
  let dir: string;
  afterAll(async () => {
    if (dir !== undefined) {
      await stack(["down", "--dir", dir]);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("starts two secondaries, describes them, is idempotent, and stops everything", async () => {
    dir = await mkdtemp(join(tmpdir(), "georep-stack-test-"));
    const up = await stack(["up", "--dir", dir], { SECONDARIES: "2" });
    expect(up.code, up.stdout).toBe(0);
    const description = JSON.parse(await readFile(join(dir, "stack.json"), "utf8")) as StackDescription;
    expect(description.sites.map((s) => [s.name, s.role])).toEqual([
      ["primary", "primary"],
      ["secondary-1", "secondary"],
      ["secondary-2", "secondary"],
    ]);
    const ports = new Set(description.sites.flatMap((s) => [s.registry, s.nats]));
    expect(ports.size).toBe(6);
    expect(new Set(description.sites.map((s) => s.database)).size).toBe(3);

    // every site runs a status service that knows its site and role, and serves the token endpoint
    for (const site of description.sites) {
      expect(site.token_realm).toBe(`${site.status}/token`);
      const summary = (await (await fetch(`${site.status}/api/v1/site`)).json()) as { site: string; role: string };
      expect([summary.site, summary.role]).toEqual([site.name, site.role]);
    }
    // every site's registry takes tokens from its own endpoint for the shared user, and only for it
    const { username, password } = description.credentials;
    const basic = (user: string, pass: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}` });
    for (const site of description.sites) {
      const challenge = await fetch(`${site.registry}/v2/`);
      expect(challenge.status).toBe(401);
      expect(challenge.headers.get("www-authenticate")).toContain(`realm="${site.token_realm}"`);
      const scope = "repository:team/app:pull,push";
      const tokenUrl = `${site.token_realm}?service=${encodeURIComponent(site.registry_service)}&scope=${encodeURIComponent(scope)}`;
      expect((await fetch(tokenUrl, { headers: basic(username, "wrong") })).status).toBe(401);
      const { token } = (await (await fetch(tokenUrl, { headers: basic(username, password) })).json()) as { token: string };
      expect((await fetch(`${site.registry}/v2/`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      const upload = await fetch(`${site.registry}/v2/team/app/blobs/uploads/`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
      expect(upload.status).toBe(202);
    }
    // the shared signing key is there for the services to mint their own tokens
    expect(existsSync(description.signing.key_file)).toBe(true);
    expect(existsSync(description.signing.certificate_file)).toBe(true);
    // both secondaries joined the primary as leafnodes
    const leafz = (await (await fetch(`${description.sites[0]!.nats_monitor}/leafz`)).json()) as { leafnodes: number };
    expect(leafz.leafnodes).toBe(2);
    // each georep service is connected to its site's NATS as its own user, and nothing connects without one
    const roleUsers = { primary: ["event-log", "ingest", "status"], secondary: ["dispatcher", "status", "transfer"] };
    for (const site of description.sites) {
      expect(Object.keys(site.nats_users).sort()).toEqual([...roleUsers[site.role], "operator"].sort());
      const connz = (await (await fetch(`${site.nats_monitor}/connz?auth=1`)).json()) as { connections: { name?: string; authorized_user?: string }[] };
      const users = new Set(connz.connections.map((c) => c.authorized_user));
      expect([...users].sort(), site.name).toEqual([...roleUsers[site.role]].sort());
    }

    // the primary's registry notifies ingest; event-log turns the push into a geo event
    const primary = description.sites[0]!;
    expect(primary.ingest).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(primary.event_log).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(description.sites[1]!.ingest).toBeUndefined();
    const client = createRegistryClient({ url: primary.registry, credentials: { type: "basic", ...description.credentials } });
    const config = Buffer.from("{}");
    await client.uploadBlob("demo/app", { digest: sha256(config), size: 2 }, config);
    const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: 2 }, layers: [] }));
    await client.putManifest("demo/app", "v1", { raw, mediaType: "application/vnd.oci.image.manifest.v1+json" });
    const geoEvents = async () => {
      const jsz = (await (await fetch(`${primary.nats_monitor}/jsz?streams=1`)).json()) as { account_details?: { stream_detail?: { name: string; state: { messages: number } }[] }[] };
      return jsz.account_details?.[0]?.stream_detail?.find((s) => s.name === "GEO_EVENTS")?.state.messages ?? 0;
    };
    for (let i = 0; i < 100 && (await geoEvents()) < 1; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await geoEvents()).toBe(1);

    const pids = (JSON.parse(await readFile(join(dir, "pids.json"), "utf8")) as { processes: { pid: number }[] }).processes.map((p) => p.pid);
    expect(pids).toHaveLength(16); // postgres + 3 × (nats, registry, status with the token endpoint) + event-log + ingest + 2 × (dispatcher, transfer)

    const again = await stack(["up", "--dir", dir], { SECONDARIES: "2" });
    expect(again.stdout).toContain("already running");
    expect(JSON.parse(await readFile(join(dir, "stack.json"), "utf8"))).toEqual(description);

    const status = await stack(["status", "--dir", dir]);
    expect(status.code, status.stdout).toBe(0);
    expect(status.stdout).toContain("processes: 16/16 running");

    const down = await stack(["down", "--dir", dir]);
    expect(down.stdout).toContain("stopped 16 process group(s)");
    expect(pids.filter(groupAlive)).toEqual([]);
    expect(existsSync(description.data_dir)).toBe(false);
    expect(existsSync(join(dir, "stack.json"))).toBe(false);
    expect((await stack(["status", "--dir", dir])).code).toBe(1);
  });

  it("names bad input", async () => {
    const bad = await stack(["up", "--dir", join(tmpdir(), "georep-never")], { SECONDARIES: "zero" });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain("SECONDARIES must be an integer from 1 to 8");
    const unknown = await stack(["sideways"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toContain('unknown command "sideways"');
  });
});

/**
 * deploy/primary and deploy/secondary hold what deploy/generate.mjs writes
 * from this package's renderers, and nothing else: regenerated in a temp dir,
 * every file must equal the committed one ("cannot drift").
 */
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ROOT, run } from "../support/tools.js";

let out: string;

async function files(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) found.push(relative(dir, join(entry.parentPath, entry.name)));
  }
  return found.sort();
}

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), "georep-deploy-generate-"));
});
afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

describe("deploy/generate.mjs", () => {
  it("writes the committed files, byte for byte (run `pnpm deploy:generate` after changing the generator or the templates)", async () => {
    const result = await run(process.execPath, [join(ROOT, "deploy/generate.mjs"), "--out", out]);
    expect(result.code, result.stderr).toBe(0);
    const generated = await files(out);
    expect(generated).toEqual(["primary/nats-leafnode-tls.conf", "primary/nats.conf", "primary/registry-notifications.yml", "primary/registry.yml", "secondary/nats-leafnode-tls.conf", "secondary/nats.conf", "secondary/registry.yml"]);
    const committed = [...(await files(join(ROOT, "deploy/primary"))).map((f) => `primary/${f}`), ...(await files(join(ROOT, "deploy/secondary"))).map((f) => `secondary/${f}`)].sort();
    expect(committed, "deploy/primary and deploy/secondary hold generated files only").toEqual(generated);
    for (const file of generated) {
      expect(await readFile(join(ROOT, "deploy", file), "utf8"), `deploy/${file} differs from what the generator writes`).toBe(await readFile(join(out, file), "utf8"));
    }
  });

  it("refuses unknown arguments", async () => {
    const result = await run(process.execPath, [join(ROOT, "deploy/generate.mjs"), "--bogus"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("usage: node deploy/generate.mjs");
  });
});

describe("the generated configs", () => {
  const read = async (file: string) => readFile(join(ROOT, "deploy", file), "utf8");

  it("primary registry: token auth against the shared certificate, notifications to ingest (events, and blob pushes apart) with the secret placeholder", async () => {
    const config = parse(await read("primary/registry.yml")) as Record<string, Record<string, unknown>>;
    expect(config.auth).toEqual({ token: { realm: "http://localhost:8081/token", service: "registry.primary", issuer: "georep", rootcertbundle: "/run/secrets/signing_cert" } });
    expect(config.storage).toEqual({ filesystem: { rootdirectory: "/var/lib/registry" }, delete: { enabled: true }, cache: { blobdescriptor: "inmemory" } });
    expect(config.http).toMatchObject({ addr: ":5000", debug: { addr: ":5001", prometheus: { enabled: true, path: "/metrics" } } });
    const endpoints = (config.notifications as { endpoints: unknown[] }).endpoints;
    expect(endpoints).toEqual(parse(await read("primary/registry-notifications.yml")));
    expect(endpoints).toMatchObject([
      { url: "http://ingest:8080/api/v4/container_registry_event/events", headers: { Authorization: ["${NOTIFICATION_SECRET}"] } },
      { url: "http://ingest:8080/api/v4/container_registry_event/blob-events", headers: { Authorization: ["${NOTIFICATION_SECRET}"] }, ignore: { actions: ["pull", "delete", "mount"] } },
    ]);
  });

  it("secondary registry: token auth, no notifications", async () => {
    const config = parse(await read("secondary/registry.yml")) as Record<string, unknown>;
    expect(config.auth).toMatchObject({ token: { service: "registry.secondary", rootcertbundle: "/run/secrets/signing_cert" } });
    expect(config.notifications).toBeUndefined();
  });

  it("nats: the primary listens for authenticated leafnodes, the secondary joins it denying georep.transfer.> both ways", async () => {
    const primary = await read("primary/nats.conf");
    expect(primary).toContain('  listen: "0.0.0.0:7422"\n  authorization { user: $LEAFNODE_USER, password: $LEAFNODE_PASSWORD }\n');
    expect(primary).toContain("  domain: $NATS_JETSTREAM_DOMAIN\n");
    expect(primary).not.toContain("remotes");
    const secondary = await read("secondary/nats.conf");
    expect(secondary).toContain('    { url: $PRIMARY_LEAFNODE_URL, deny_imports: ["georep.transfer.>"], deny_exports: ["georep.transfer.>"] }\n');
    expect(secondary).not.toContain("listen: \"0.0.0.0:7422\"");
  });

  it("nats: every georep service of the role is a user with its password variable and permissions", async () => {
    const primary = await read("primary/nats.conf");
    expect(primary).toMatch(/\{ user: "ingest", password: \$NATS_PASSWORD_INGEST, permissions: \{ publish: \{ allow: \["georep\.registry\.events\.>"/);
    for (const user of ["event-log", "ingest", "status"]) expect(primary).toContain(`{ user: "${user}"`);
    const secondary = await read("secondary/nats.conf");
    for (const user of ["dispatcher", "status", "transfer"]) expect(secondary).toContain(`{ user: "${user}"`);
    expect(secondary).not.toContain('{ user: "ingest"');
  });

  it("nats with leafnode TLS: the same config plus tls on the primary's listener and the secondary's remote", async () => {
    const tlsLine = '  tls { cert_file: "/run/secrets/leafnode_tls_cert", key_file: "/run/secrets/leafnode_tls_key" }\n';
    const primary = await read("primary/nats-leafnode-tls.conf");
    expect(primary).toContain(tlsLine);
    expect(primary.replace(tlsLine, "").replace(/#.*\n/g, "")).toBe((await read("primary/nats.conf")).replace(/#.*\n/g, ""));
    const secondary = await read("secondary/nats-leafnode-tls.conf");
    expect(secondary).toContain('{ url: $PRIMARY_LEAFNODE_URL, tls: { ca_file: "/run/secrets/leafnode_tls_ca" }, deny_imports');
    expect(secondary.replace(' tls: { ca_file: "/run/secrets/leafnode_tls_ca" },', "").replace(/#.*\n/g, "")).toBe((await read("secondary/nats.conf")).replace(/#.*\n/g, ""));
  });
});

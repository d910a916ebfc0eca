/**
 * The leafnode link over TLS (deploy/compose.<role>.leafnode-tls.yml): the
 * override files render with `docker-compose config` on top of each role's,
 * mounting nats-leafnode-tls.conf as the server's config with the TLS
 * secrets; and the committed configs, run by nats-server with a test CA,
 * join over TLS, while a leaf without the TLS file (it dials TLS too, the
 * primary requires it, but trusts only the system's CAs) and a leaf trusting
 * another CA are refused.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ROOT, freePort, requireBinary, run, startProcess, waitFor } from "../support/tools.js";
import type { StartedProcess } from "../support/tools.js";

type Role = "primary" | "secondary";
const SECRETS = [
  "admin_token",
  "notification_secret",
  "postgres_password",
  "database_url",
  "leafnode_password",
  "registry_http_secret",
  "key.pem",
  "cert.pem",
  "token_users.json",
  "nats_event_log_password",
  "nats_ingest_password",
  "nats_status_password",
  "nats_dispatcher_password",
  "nats_transfer_password",
  "leafnode-tls-cert.pem",
  "leafnode-tls-key.pem",
  "leafnode-tls-ca.pem",
];

let dir: string;
const started: StartedProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "georep-leafnode-tls-"));
});

afterAll(async () => {
  for (const process of started.reverse()) await process.stop();
  await rm(dir, { recursive: true, force: true });
});

interface Rendered {
  services: Record<string, { volumes?: string[]; secrets?: { source: string; target?: string }[] }>;
  secrets: Record<string, { file: string }>;
}

describe.each(["primary", "secondary"] as const)("docker-compose config with the %s's leafnode TLS file", (role: Role) => {
  it("mounts nats-leafnode-tls.conf as the server's config and adds the TLS secrets to the role's", async () => {
    const compose = requireBinary("docker-compose", ["/usr/bin", "/usr/local/bin"]);
    const work = join(dir, `compose-${role}`);
    await mkdir(join(work, "secrets"), { recursive: true });
    for (const name of SECRETS) await writeFile(join(work, "secrets", name), "x\n");
    await writeFile(join(work, ".env"), `${await readFile(join(ROOT, `deploy/${role}.env.example`), "utf8")}\nGEOREP_SECRETS_DIR=${join(work, "secrets")}\n`);
    const files = ["docker-compose.yml", `deploy/compose.${role}.yml`, `deploy/compose.${role}.leafnode-tls.yml`];
    const result = await run(compose, ["--env-file", join(work, ".env"), ...files.flatMap((f) => ["-f", f]), "config"], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: work } });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(/WARNING|is not set/);
    const config = parse(result.stdout) as Rendered;
    const nats = config.services.nats!;
    const mounted = (nats.volumes ?? []).filter((v) => v.includes(":/etc/georep/nats.conf"));
    expect(mounted).toEqual([`${join(ROOT, "deploy", role, "nats-leafnode-tls.conf")}:/etc/georep/nats.conf:ro`]);
    const secrets = (nats.secrets ?? []).map((s) => s.source).sort();
    const tls = role === "primary" ? ["leafnode_tls_cert", "leafnode_tls_key"] : ["leafnode_tls_ca"];
    const users = role === "primary" ? ["nats_event_log_password", "nats_ingest_password", "nats_status_password"] : ["nats_dispatcher_password", "nats_status_password", "nats_transfer_password"];
    expect(secrets).toEqual([...tls, ...users, "leafnode_password"].sort());
    for (const name of tls) expect(config.secrets[name]?.file).toBe(join(work, "secrets", `${name.replaceAll("_", "-")}.pem`));
  });
});

describe("nats-server with the committed leafnode TLS configs", () => {
  /** A CA, and a certificate it signs for 127.0.0.1 (the hub's leafnode listener here). */
  async function certificates(name: string): Promise<{ ca: string; cert: string; key: string }> {
    const openssl = requireBinary("openssl", ["/usr/bin"]);
    const out = join(dir, name);
    await mkdir(out, { recursive: true });
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    const steps = [
      ["req", "-x509", ...ec, "-keyout", join(out, "ca.key"), "-out", join(out, "ca.pem"), "-days", "2", "-subj", `/CN=${name} test CA`],
      ["req", ...ec, "-keyout", join(out, "server.key"), "-out", join(out, "server.csr"), "-subj", "/CN=primary"],
      ["x509", "-req", "-in", join(out, "server.csr"), "-CA", join(out, "ca.pem"), "-CAkey", join(out, "ca.key"), "-CAcreateserial", "-out", join(out, "server.pem"), "-days", "2", "-extfile", join(out, "san.cnf")],
    ];
    await writeFile(join(out, "san.cnf"), "subjectAltName=IP:127.0.0.1\n");
    for (const args of steps) {
      const result = await run(openssl, args);
      if (result.code !== 0) throw new Error(`openssl ${args[0]}: ${result.stderr}`);
    }
    return { ca: join(out, "ca.pem"), cert: join(out, "server.pem"), key: join(out, "server.key") };
  }

  /** The committed config with local ports, store and certificate paths. */
  async function localConfig(file: string, name: string, ports: { client: number; monitor: number; leafnode?: number }, files: Record<string, string>): Promise<string> {
    let text = (await readFile(join(ROOT, file), "utf8"))
      .replace('"0.0.0.0:4222"', `"127.0.0.1:${ports.client}"`)
      .replace('"0.0.0.0:8222"', `"127.0.0.1:${ports.monitor}"`)
      .replace('"0.0.0.0:7422"', `"127.0.0.1:${ports.leafnode ?? 0}"`)
      .replace('"/data/jetstream"', JSON.stringify(join(dir, `${name}-js`)));
    for (const [from, to] of Object.entries(files)) text = text.replace(JSON.stringify(from), JSON.stringify(to));
    const path = join(dir, `${name}.conf`);
    await writeFile(path, text);
    return path;
  }

  /** What compose's environment gives the server, quoted as nats-server reads it. */
  const serverEnv = (site: string, extra: Record<string, string>) => ({
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    NATS_SERVER_NAME: `"${site}"`,
    NATS_JETSTREAM_DOMAIN: `"${site}"`,
    ...Object.fromEntries(["EVENT_LOG", "INGEST", "STATUS", "DISPATCHER", "TRANSFER"].map((s) => [`NATS_PASSWORD_${s}`, `"pw-${s}"`])),
    ...extra,
  });

  const leafnodes = async (monitor: number) => ((await (await fetch(`http://127.0.0.1:${monitor}/leafz`)).json()) as { leafnodes?: number }).leafnodes ?? 0;

  it("a secondary joins over TLS trusting the primary's CA; a leaf without the TLS file or trusting another CA is refused", async () => {
    const natsServer = requireBinary("nats-server", ["/usr/sbin", "/usr/local/sbin"]);
    const [good, other] = [await certificates("site"), await certificates("other")];
    const [client, monitor, leafnode] = await Promise.all([freePort(), freePort(), freePort()]);
    const hubConfig = await localConfig("deploy/primary/nats-leafnode-tls.conf", "hub", { client, monitor, leafnode }, { "/run/secrets/leafnode_tls_cert": good.cert, "/run/secrets/leafnode_tls_key": good.key });
    expect(await readFile(hubConfig, "utf8")).toMatch(/tls \{ cert_file: .*server\.pem", key_file: .*server\.key" \}/);
    const hub = startProcess(natsServer, ["--config", hubConfig], { env: serverEnv("primary", { LEAFNODE_USER: '"leaf"', LEAFNODE_PASSWORD: '"leaf-pw"' }) });
    started.push(hub);
    await waitFor(`the primary's nats-server (${hub.output()})`, async () => (await fetch(`http://127.0.0.1:${monitor}/healthz`)).ok);
    const url = `"nats-leaf://leaf:leaf-pw@127.0.0.1:${leafnode}"`;

    /** Starts a secondary's nats-server with `file`, trusting `ca`; returns its monitor port. */
    const leaf = async (name: string, file: string, ca: string) => {
      const [leafClient, leafMonitor] = await Promise.all([freePort(), freePort()]);
      const config = await localConfig(file, name, { client: leafClient, monitor: leafMonitor }, { "/run/secrets/leafnode_tls_ca": ca });
      const process = startProcess(natsServer, ["--config", config], { env: serverEnv(name, { PRIMARY_LEAFNODE_URL: url }) });
      started.push(process);
      await waitFor(`${name}'s nats-server (${process.output()})`, async () => (await fetch(`http://127.0.0.1:${leafMonitor}/healthz`)).ok);
      return { process, monitor: leafMonitor };
    };

    const trusted = await leaf("secondary", "deploy/secondary/nats-leafnode-tls.conf", good.ca);
    await waitFor(`the TLS leafnode connection (${trusted.process.output()})`, async () => (await leafnodes(monitor)) === 1);
    expect(await leafnodes(trusted.monitor)).toBe(1);

    const plain = await leaf("plain", "deploy/secondary/nats.conf", good.ca);
    const untrusting = await leaf("untrusting", "deploy/secondary/nats-leafnode-tls.conf", other.ca);
    // The primary requires TLS, so even the leaf without the TLS file dials TLS, checking the
    // certificate against the system's CAs instead: with a private CA both are refused, and keep
    // trying (every second) without getting in.
    const refusedCertificate = /TLS leafnode handshake error: x509: certificate signed by unknown authority/;
    await waitFor("both refused leaves to have tried", async () => refusedCertificate.test(plain.process.output()) && refusedCertificate.test(untrusting.process.output()), 20_000);
    expect(await leafnodes(monitor)).toBe(1);
    expect(await leafnodes(plain.monitor)).toBe(0);
    expect(await leafnodes(untrusting.monitor)).toBe(0);
  });
});

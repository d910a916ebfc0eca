/**
 * The compose deployment: each site's files render with `docker-compose
 * config` (Debian's 1.29; no Docker engine needed) from its env example, and
 * what they give each georep service loads against that service's own config
 * schema. The env examples list every setting of every service of the role,
 * with the defaults config.ts declares.
 */
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingHttpHeaders } from "node:http";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { toYaml } from "../../src/index.js";
import type { YamlValue } from "../../src/index.js";
import { ROOT, freePort, requireBinary, run, startProcess, waitFor } from "../support/tools.js";
import type { StartedProcess } from "../support/tools.js";

type Role = "primary" | "secondary";
type Env = Record<string, string>;

interface ComposeService {
  image?: string;
  build?: { context: string };
  command?: string[];
  entrypoint?: string[];
  environment?: Env;
  ports?: unknown[];
  volumes?: string[];
  secrets?: { source: string }[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  init?: boolean;
  container_name?: string;
}
interface ComposeConfig {
  services: Record<string, ComposeService>;
  secrets: Record<string, { file: string }>;
  volumes: Record<string, unknown>;
}

const VARIANTS: Record<Role, { files: string[]; example: string; georep: string[] }> = {
  primary: { files: ["docker-compose.yml", "deploy/compose.primary.yml"], example: "deploy/primary.env.example", georep: ["ingest", "event-log", "status"] },
  secondary: { files: ["docker-compose.yml", "deploy/compose.secondary.yml"], example: "deploy/secondary.env.example", georep: ["dispatcher", "transfer", "status"] },
};
const INFRASTRUCTURE = ["registry", "nats", "postgres", "otel-collector"];
/** Every secret file a site may need, with a content its consumer accepts. */
const SECRET_FILES: Env = {
  admin_token: "0123456789abcdef0123456789abcdef",
  notification_secret: "fedcba9876543210fedcba9876543210",
  postgres_password: "pgpassword0123456789",
  database_url: "postgres://georep:pgpassword0123456789@postgres:5432/georep",
  // Digits first: nats-server would read it as a number if it were not quoted.
  leafnode_password: "1e10-leaf_password",
  registry_http_secret: "httpsecret0123456789",
  // Each georep service's NATS password; digits first, as above.
  nats_event_log_password: "2e10-event-log",
  nats_ingest_password: "3e10-ingest",
  nats_status_password: "4e10-status",
  nats_dispatcher_password: "5e10-dispatcher",
  nats_transfer_password: "6e10-transfer",
  "key.pem": "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----",
  "cert.pem": "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----",
  "token_users.json": '{"users":[]}',
};
const NOT_USED = "(not used by this deployment";
const SET_BY_COMPOSE = "(set by compose)";

interface ExampleEntry {
  readonly name: string;
  readonly active: boolean;
  readonly value: string;
  readonly description: string;
}

/**
 * `NAME=value` (active) and `#NAME=value` (a default) lines, each with the
 * comment block above it (shared by consecutive assignments under one comment).
 */
function parseExample(text: string): Map<string, ExampleEntry> {
  const lines = text.split("\n");
  const assignment = /^(#?)([A-Z][A-Z0-9_]*)=(.*)$/;
  const entries = new Map<string, ExampleEntry>();
  lines.forEach((line, index) => {
    const match = assignment.exec(line);
    if (match === null) return;
    const comments: string[] = [];
    for (let i = index - 1; i >= 0; i--) {
      const above = lines[i]!;
      if (assignment.test(above)) {
        if (comments.length === 0) continue;
        break;
      }
      if (!above.startsWith("#")) break;
      comments.unshift(above.replace(/^#\s?/, ""));
    }
    entries.set(match[2]!, { name: match[2]!, active: match[1] === "", value: match[3]!, description: comments.join(" ") });
  });
  return entries;
}

interface ServiceSchema {
  readonly properties: Record<string, { default?: unknown }>;
  readonly problems: { variable: string; message: string }[] | null;
}

async function serviceConfig(service: string, env?: Env): Promise<ServiceSchema> {
  const result = await run(process.execPath, [join(ROOT, "packages/deploy-templates/test/support/service-config.mjs"), service], { input: env === undefined ? "" : JSON.stringify(env) });
  if (result.code !== 0) throw new Error(`service-config.mjs ${service}: ${result.stderr}`);
  return JSON.parse(result.stdout) as ServiceSchema;
}

/** `docker-compose config` prints `$` as `$$` so its output stays a compose file. */
const unescape = (value: string) => value.replaceAll("$$", "$");

const rendered: Partial<Record<Role, { config: ComposeConfig; stderr: string; dir: string; example: Map<string, ExampleEntry> }>> = {};
const schemas = new Map<string, ServiceSchema>();
const dirs: string[] = [];

beforeAll(async () => {
  const compose = requireBinary("docker-compose", ["/usr/bin", "/usr/local/bin"]);
  for (const service of new Set(Object.values(VARIANTS).flatMap((v) => v.georep))) schemas.set(service, await serviceConfig(service));
  for (const [role, variant] of Object.entries(VARIANTS) as [Role, (typeof VARIANTS)[Role]][]) {
    const dir = await mkdtemp(join(tmpdir(), `georep-compose-${role}-`));
    dirs.push(dir);
    await mkdir(join(dir, "secrets"));
    for (const [name, content] of Object.entries(SECRET_FILES)) await writeFile(join(dir, "secrets", name), `${content}\n`);
    const exampleText = await readFile(join(ROOT, variant.example), "utf8");
    await writeFile(join(dir, ".env"), `${exampleText}\nGEOREP_SECRETS_DIR=${join(dir, "secrets")}\n`);
    // A clean environment: the caller's SITE_NAME or OTEL_* must not leak into the rendering.
    const result = await run(compose, ["--env-file", join(dir, ".env"), ...variant.files.flatMap((f) => ["-f", f]), "config"], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir },
    });
    if (result.code !== 0) throw new Error(`docker-compose config (${role}) exited ${result.code}:\n${result.stderr}`);
    rendered[role] = { config: parse(result.stdout) as ComposeConfig, stderr: result.stderr, dir, example: parseExample(exampleText) };
  }
}, 120_000);

afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

const site = (role: Role) => rendered[role]!;
const env = (role: Role, service: string): Env => Object.fromEntries(Object.entries(site(role).config.services[service]?.environment ?? {}).map(([k, v]) => [k, unescape(String(v))]));

describe.each(["primary", "secondary"] as const)("docker-compose config of the %s site", (role) => {
  const variant = VARIANTS[role];

  it("renders without warnings, with the site's services and nothing else", () => {
    expect(site(role).stderr).not.toMatch(/WARNING|is not set/);
    expect(Object.keys(site(role).config.services).sort()).toEqual([...INFRASTRUCTURE, ...variant.georep].sort());
  });

  it("mounts files that exist: the generated configs of the role, the entrypoint, the collector config", () => {
    const { services } = site(role).config;
    const binds = Object.values(services).flatMap((s) => (s.volumes ?? []).map((v) => v.split(":")[0]!)).filter((source) => source.startsWith("/"));
    for (const source of binds) expect(existsSync(source), source).toBe(true);
    expect(services.nats?.volumes).toContain(`${join(ROOT, "deploy", role, "nats.conf")}:/etc/georep/nats.conf:ro`);
    expect(services.registry?.volumes).toContain(`${join(ROOT, "deploy", role, "registry.yml")}:/etc/georep/registry.yml:ro`);
    for (const name of ["nats", "registry"]) {
      expect(services[name]?.entrypoint).toEqual(["/bin/sh", "/etc/georep/entrypoint.sh"]);
      expect(services[name]?.volumes).toContain(`${join(ROOT, "deploy/entrypoint.sh")}:/etc/georep/entrypoint.sh:ro`);
    }
    expect(services["otel-collector"]?.volumes).toContain(`${join(ROOT, "deploy/otel-collector.yml")}:/etc/georep/otel-collector.yml:ro`);
  });

  it("takes every secret from a file in GEOREP_SECRETS_DIR, and gives each service only those it names", () => {
    const { secrets, services } = site(role).config;
    for (const [name, secret] of Object.entries(secrets)) {
      expect(secret.file.startsWith(join(site(role).dir, "secrets")), name).toBe(true);
      expect(existsSync(secret.file), secret.file).toBe(true);
    }
    for (const [name, service] of Object.entries(services)) {
      const mounted = new Set((service.secrets ?? []).map((s) => s.source));
      for (const value of Object.values(env(role, name))) {
        const secret = /^\/run\/secrets\/([a-z_]+)$/.exec(value)?.[1];
        if (secret !== undefined) expect(mounted.has(secret), `${name} reads ${value}`).toBe(true);
      }
    }
  });

  it("runs each georep service from the one image, by command, with /health/ready checks and no host port but status's", () => {
    const { services } = site(role).config;
    for (const name of variant.georep) {
      const service = services[name]!;
      expect(service.image, name).toBe("georep:local");
      expect(service.build?.context.replace(/\/$/, ""), name).toBe(ROOT.replace(/\/$/, ""));
      expect(service.init, name).toBe(true);
      expect(service.command?.[0], name).toBe("node");
      expect(service.command?.at(-1), name).toBe(`services/${name}/dist/main.js`);
      expect(existsSync(join(ROOT, service.command!.at(-1)!)), `${name}: built entry point`).toBe(true);
      expect(service.healthcheck?.test.join(" "), name).toContain("http://127.0.0.1:8080/health/ready");
      if (name !== "status") expect(service.ports, `${name} must stay scalable`).toBeUndefined();
    }
    if (role === "secondary") expect(services.transfer?.command).toEqual(["node", "--max-semi-space-size=1", "services/transfer/dist/main.js"]);
    for (const [name, service] of Object.entries(services)) expect(service.container_name, name).toBeUndefined();
  });

  it("starts services after what they need is healthy", () => {
    const { services } = site(role).config;
    for (const [name, service] of Object.entries(services)) {
      for (const [target, { condition }] of Object.entries(service.depends_on ?? {})) {
        expect(condition, `${name} → ${target}`).toBe("service_healthy");
        expect(services[target]?.healthcheck, `${target} needs a healthcheck`).toBeDefined();
      }
    }
    for (const name of variant.georep) {
      const needs = ["nats", ...("DATABASE_URL_FILE" in env(role, name) ? ["postgres"] : [])];
      expect(Object.keys(services[name]?.depends_on ?? {}), name).toEqual(expect.arrayContaining(needs));
    }
    if (role === "primary") expect(services.ingest?.depends_on?.["event-log"]).toEqual({ condition: "service_healthy" });
    else expect(services.transfer?.depends_on).toMatchObject({ registry: { condition: "service_healthy" }, dispatcher: { condition: "service_healthy" } });
  });

  it("sends every service's telemetry to the site's collector under its own name", () => {
    for (const name of variant.georep) {
      expect(env(role, name)).toMatchObject({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://otel-collector:4318", OTEL_SERVICE_NAME: `georep-${name}`, NATS_URL: "nats://nats:4222", SITE_ROLE: role, HTTP_PORT: "8080" });
    }
    expect(env(role, "otel-collector").GEOREP_SITE_NAME).toBe(site(role).example.get("SITE_NAME")?.value);
  });

  it("gives each georep service an environment its own config loader accepts", async () => {
    const files = join(site(role).dir, "run-secrets");
    await mkdir(files, { recursive: true });
    for (const name of variant.georep) {
      const serviceEnv = env(role, name);
      for (const [key, value] of Object.entries(serviceEnv)) {
        const secret = /^\/run\/secrets\/([a-z_]+)$/.exec(value)?.[1];
        if (secret === undefined) continue;
        const source = site(role).config.secrets[secret]!.file;
        await copyFile(source, join(files, secret));
        serviceEnv[key] = join(files, secret);
      }
      const { problems } = await serviceConfig(name, serviceEnv);
      expect(problems, name).toBeNull();
    }
  });

  it("lists every setting of the role's services in the env example, with config.ts's default", () => {
    const example = site(role).example;
    for (const name of variant.georep) {
      for (const [property, { default: fallback }] of Object.entries(schemas.get(name)!.properties)) {
        const entry = example.get(property) ?? example.get(`${property}_FILE`);
        expect(entry, `${variant.example} lacks ${property} (${name})`).toBeDefined();
        if (entry!.name === property && fallback !== undefined && !entry!.active && !entry!.description.includes(SET_BY_COMPOSE)) {
          expect(entry!.value, `${variant.example}: default of ${property} (${name})`).toBe(typeof fallback === "string" ? fallback : JSON.stringify(fallback));
        }
        expect(entry!.description, `${variant.example}: ${property} needs a description`).not.toBe("");
      }
    }
  });

  it("passes each setting to the services that read it, unless the example says it is not used", () => {
    const example = site(role).example;
    for (const name of variant.georep) {
      const serviceEnv = env(role, name);
      for (const property of Object.keys(schemas.get(name)!.properties)) {
        const entry = example.get(property) ?? example.get(`${property}_FILE`);
        if (entry === undefined) throw new Error(`${variant.example} lacks ${property} (${name})`);
        const given = property in serviceEnv || `${property}_FILE` in serviceEnv;
        if (entry.description.includes(NOT_USED)) expect(given, `${property} is marked not used but ${name} gets it`).toBe(false);
        else expect(given, `${name} does not get ${property}`).toBe(true);
      }
    }
  });

  it("uses every other setting of the env example in the compose files", async () => {
    const text = (await Promise.all(variant.files.map((f) => readFile(join(ROOT, f), "utf8")))).join("\n");
    const serviceVariables = new Set(variant.georep.flatMap((n) => Object.keys(schemas.get(n)!.properties)));
    for (const entry of site(role).example.values()) {
      const property = entry.name.replace(/_FILE$/, "");
      if (serviceVariables.has(entry.name) || serviceVariables.has(property) || entry.name === "COMPOSE_PROJECT_NAME") continue;
      if (entry.description.includes(SET_BY_COMPOSE)) expect(text, entry.name).toContain(`${entry.name}:`);
      else expect(text, `${entry.name} is in ${variant.example} but no compose file reads it`).toContain(`\${${entry.name}`);
    }
  });
});

describe("the two role files", () => {
  it("share the georep service template and the common environment (anchors do not cross files)", async () => {
    const [primary, secondary] = await Promise.all(
      (["primary", "secondary"] as const).map(async (role) => parse(await readFile(join(ROOT, `deploy/compose.${role}.yml`), "utf8"), { merge: true }) as Record<string, Record<string, unknown>>),
    );
    expect(secondary!["x-georep-service"]).toEqual(primary!["x-georep-service"]);
    expect(secondary!["x-database-env"]).toEqual(primary!["x-database-env"]);
    expect({ ...secondary!["x-georep-env"], SITE_ROLE: "" }).toEqual({ ...primary!["x-georep-env"], SITE_ROLE: "" });
  });

  it("join the sites: the secondary's leafnode URL carries the primary's user and the shared password", () => {
    expect(env("secondary", "nats").PRIMARY_LEAFNODE_URL_TEMPLATE).toBe('"nats-leaf://leaf:${LEAFNODE_SECRET}@primary.example.com:7422"');
    expect(env("primary", "nats")).toMatchObject({ LEAFNODE_USER: '"leaf"', LEAFNODE_PASSWORD_TEMPLATE: '"${LEAFNODE_SECRET}"' });
    for (const role of ["primary", "secondary"] as const) {
      expect(env(role, "nats")).toMatchObject({ LEAFNODE_SECRET_FILE: "/run/secrets/leafnode_password", NATS_JETSTREAM_DOMAIN: `"${site(role).example.get("SITE_NAME")?.value}"` });
    }
    // The primary's domain is what the secondary's dispatcher mirrors GEO_EVENTS from.
    expect(site("secondary").example.get("PRIMARY_JS_DOMAIN")?.value).toBe(site("primary").example.get("SITE_NAME")?.value);
    expect(site("primary").config.services.nats?.ports).toBeDefined();
    expect(site("secondary").config.services.nats?.ports).toBeUndefined();
  });

  it("point the registries at the status service's /token and the primary's notifications at ingest", () => {
    for (const role of ["primary", "secondary"] as const) {
      expect(env(role, "registry")).toMatchObject({
        REGISTRY_AUTH_TOKEN_REALM: site(role).example.get("REGISTRY_AUTH_TOKEN_REALM")?.value,
        REGISTRY_AUTH_TOKEN_SERVICE: env(role, "status").STATUS_TOKEN_SERVICE,
        REGISTRY_AUTH_TOKEN_ISSUER: "georep",
        REGISTRY_HTTP_SECRET_FILE: "/run/secrets/registry_http_secret",
      });
    }
    expect(env("primary", "registry")).toMatchObject({
      NOTIFICATION_SECRET_FILE: "/run/secrets/notification_secret",
      REGISTRY_NOTIFICATIONS_ENDPOINTS_TEMPLATE_FILE: "/etc/georep/registry-notifications.yml",
    });
    expect(env("primary", "ingest").INGEST_SECRET_FILE).toBe("/run/secrets/notification_secret");
    expect(env("secondary", "registry").REGISTRY_NOTIFICATIONS_ENDPOINTS_TEMPLATE_FILE).toBeUndefined();
  });
});

/**
 * The registry and NATS of each site started the way compose starts them:
 * deploy/entrypoint.sh, the rendered environment, the committed generated
 * config (only the listen addresses and data paths changed, to 127.0.0.1 and
 * temp dirs; the servers are the Debian binaries of the images' versions).
 */
describe("the servers, started as compose starts them", () => {
  const started: StartedProcess[] = [];
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "georep-compose-run-"));
  });
  afterAll(async () => {
    for (const process of started.reverse()) await process.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** The rendered environment of a service, with /run/secrets/<name> pointing at the test's secret files. */
  const containerEnv = (role: Role, service: string): Env => {
    const out: Env = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
    for (const [key, value] of Object.entries(env(role, service))) {
      const secret = /^\/run\/secrets\/([a-z_]+)$/.exec(value)?.[1];
      out[key] = secret === undefined ? value : site(role).config.secrets[secret]!.file;
    }
    return out;
  };

  it("NATS: the secondary joins the primary's leafnode listener with the user and the secret password; each service connects as its own user", async () => {
    const natsServer = requireBinary("nats-server", ["/usr/sbin", "/usr/local/sbin"]);
    const [client, monitor, leafnode, leafClient, leafMonitor] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const localize = (text: string, ports: { client: number; monitor: number; leafnode?: number }, store: string) =>
      text
        .replace('"0.0.0.0:4222"', `"127.0.0.1:${ports.client}"`)
        .replace('"0.0.0.0:8222"', `"127.0.0.1:${ports.monitor}"`)
        .replace('"0.0.0.0:7422"', `"127.0.0.1:${ports.leafnode ?? 0}"`)
        .replace('"/data/jetstream"', JSON.stringify(store));
    const hubConfig = join(dir, "primary-nats.conf");
    const leafConfig = join(dir, "secondary-nats.conf");
    await writeFile(hubConfig, localize(await readFile(join(ROOT, "deploy/primary/nats.conf"), "utf8"), { client, monitor, leafnode }, join(dir, "hub-js")));
    await writeFile(leafConfig, localize(await readFile(join(ROOT, "deploy/secondary/nats.conf"), "utf8"), { client: leafClient, monitor: leafMonitor }, join(dir, "leaf-js")));
    const leafEnv = containerEnv("secondary", "nats");
    leafEnv.PRIMARY_LEAFNODE_URL_TEMPLATE = leafEnv.PRIMARY_LEAFNODE_URL_TEMPLATE!.replace("primary.example.com:7422", `127.0.0.1:${leafnode}`);

    const hub = startProcess("/bin/sh", [join(ROOT, "deploy/entrypoint.sh"), natsServer, "--config", hubConfig], { env: containerEnv("primary", "nats") });
    started.push(hub);
    await waitFor(`the primary's nats-server (${hub.output()})`, async () => (await fetch(`http://127.0.0.1:${monitor}/healthz`)).ok);
    const leaf = startProcess("/bin/sh", [join(ROOT, "deploy/entrypoint.sh"), natsServer, "--config", leafConfig], { env: leafEnv });
    started.push(leaf);
    await waitFor(`the leafnode connection (${leaf.output()})`, async () => {
      const leafz = (await (await fetch(`http://127.0.0.1:${monitor}/leafz`)).json()) as { leafnodes?: number };
      return (leafz.leafnodes ?? 0) >= 1;
    });
    const varz = (await (await fetch(`http://127.0.0.1:${monitor}/varz`)).json()) as { server_name: string };
    expect(varz.server_name).toBe(site("primary").example.get("SITE_NAME")?.value);
    const jsz = (await (await fetch(`http://127.0.0.1:${leafMonitor}/jsz`)).json()) as { config?: { domain?: string } };
    expect(jsz.config?.domain).toBe(site("secondary").example.get("SITE_NAME")?.value);

    // Every georep service gets in with the user and password file compose gives it; nobody else does.
    for (const [role, port] of [["primary", client], ["secondary", leafClient]] as const) {
      for (const service of VARIANTS[role].georep) {
        const settings = containerEnv(role, service);
        expect(settings.NATS_USER, `${role} ${service}`).toBe(service);
        const nc = await connect({ servers: `127.0.0.1:${port}`, user: settings.NATS_USER, pass: (await readFile(settings.NATS_PASSWORD_FILE!, "utf8")).trim() });
        await nc.close();
      }
      for (const auth of [{}, { user: "ingest", pass: "3e10-ingestx" }]) {
        const refused = await connect({ servers: `127.0.0.1:${port}`, reconnect: false, ...auth }).then((nc) => nc.close().then(() => "connected"), (e: unknown) => String(e));
        expect(refused, `${role} ${JSON.stringify(auth)}`).toMatch(/authorization violation/i);
      }
    }
  });

  it("registry: notifications reach the endpoint of registry-notifications.yml with the secret file in Authorization", async () => {
    const registryBinary = requireBinary("docker-registry", ["/usr/bin"]);
    const received: IncomingHttpHeaders[] = [];
    const listener = createServer((request, response) => {
      received.push(request.headers);
      request.resume();
      request.on("end", () => response.end());
    });
    await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
    try {
      const address = listener.address();
      const ingest = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`;
      const [port, debugPort] = await Promise.all([freePort(), freePort()]);
      // The committed config, with local listeners and storage; without token auth, which needs a
      // signed token to push (the token flow has its own tests in @georep/jwt and the stack).
      const committed = parse(await readFile(join(ROOT, "deploy/primary/registry.yml"), "utf8")) as Record<string, Record<string, YamlValue>>;
      const { auth: _auth, ...rest } = committed;
      const config = {
        ...rest,
        storage: { ...committed.storage, filesystem: { rootdirectory: join(dir, "registry") } },
        http: { ...committed.http, addr: `127.0.0.1:${port}`, debug: { addr: `127.0.0.1:${debugPort}` } },
      };
      await writeFile(join(dir, "registry.yml"), toYaml(config));
      const template = (await readFile(join(ROOT, "deploy/primary/registry-notifications.yml"), "utf8")).replace("http://ingest:8080", ingest);
      await writeFile(join(dir, "registry-notifications.yml"), template);
      const registryEnv = containerEnv("primary", "registry");
      for (const key of Object.keys(registryEnv)) if (key.startsWith("REGISTRY_AUTH_")) delete registryEnv[key];
      registryEnv.REGISTRY_NOTIFICATIONS_ENDPOINTS_TEMPLATE_FILE = join(dir, "registry-notifications.yml");

      const registry = startProcess("/bin/sh", [join(ROOT, "deploy/entrypoint.sh"), registryBinary, "serve", join(dir, "registry.yml")], { env: registryEnv });
      started.push(registry);
      await waitFor(`the registry (${registry.output()})`, async () => (await fetch(`http://127.0.0.1:${debugPort}/debug/health`)).ok);
      expect(registry.output()).not.toContain("No HTTP secret provided");
      // Push an image (a config blob and an OCI manifest): both are notified (ingest replicates the
      // manifest push and announces large blobs); pulls are not.
      const base = `http://127.0.0.1:${port}/v2/team/app`;
      const configBlob = Buffer.from("{}");
      const configDigest = `sha256:${createHash("sha256").update(configBlob).digest("hex")}`;
      const start = await fetch(`${base}/blobs/uploads/`, { method: "POST" });
      expect(start.status).toBe(202);
      const location = new URL(start.headers.get("location")!, base);
      location.searchParams.set("digest", configDigest);
      expect((await fetch(location, { method: "PUT", body: configBlob, headers: { "content-type": "application/octet-stream" } })).status).toBe(201);
      const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: configBlob.length },
        layers: [],
      });
      const pushed = await fetch(`${base}/manifests/v1`, { method: "PUT", body: manifest, headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" } });
      expect(pushed.status, await pushed.text()).toBe(201);
      await waitFor("a notification", async () => received.length > 0);
      expect(received[0]!.authorization).toBe(SECRET_FILES.notification_secret);
    } finally {
      await new Promise((resolve) => listener.close(resolve));
    }
  });
});

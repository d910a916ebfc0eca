/**
 * The local multi-site stack: the one place where the local topology is
 * defined, shared by `make up`/`make demo`, tests and benchmarks.
 *
 * Per site: a nats-server with its own JetStream domain (secondaries join the
 * primary's as authenticated leafnodes), a database on one local PostgreSQL
 * cluster, a Distribution registry with `auth: token`, and the site's Docker
 * token endpoint (`@georep/jwt`) as its realm. Every site shares one signing
 * key (as sites do in production), and one user may push and pull
 * everywhere. The servers outlive the command that starts them;
 * `.georep/stack.json` describes them, `.georep/pids.json` records what
 * `down` must stop.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import { generateKeyMaterial, hashPassword, writeKeyMaterial } from "@georep/jwt";
import type { UsersFile } from "@georep/jwt";
import { freePort, startHttpFaultProxy, startNats, startPostgres, startRegistry, startTcpProxy, waitForLeafnodes } from "@georep/testing";
import type { HttpFaultProxy, NotificationEndpoint, RunningNats, RunningPostgres, RunningRegistry, TcpProxy } from "@georep/testing";
import { NATS_SERVICE_PERMISSIONS, NATS_SERVICE_USERS, ingestBlobNotificationEndpoint, ingestNotificationEndpoint } from "@georep/deploy-templates";
import { groupAlive, registerDir, startServerProcess, stopProcessGroup } from "@georep/testing/internal";

export const PRIMARY_SITE = "primary";
export const DEFAULT_SECONDARIES = 1;
export const MAX_SECONDARIES = 8;
/** Most processes per georep service the local stack starts (`REPLICAS`). */
export const MAX_REPLICAS = 4;
/** Subjects that never cross the leafnode links (every secondary has its own work queue). */
export const SITE_LOCAL_SUBJECTS = "georep.transfer.>";
/** `iss` of the tokens the sites mint, and what every registry trusts. */
export const TOKEN_ISSUER = "georep";

export type SiteRole = "primary" | "secondary";

/** One site of `stack.json`. Service endpoints appear as the services land. */
export interface StackSite {
  readonly name: string;
  readonly role: SiteRole;
  readonly registry: string;
  readonly nats: string;
  readonly nats_domain: string;
  readonly nats_monitor: string;
  /**
   * The NATS users of this site and their passwords: each georep service connects as a user of
   * its own (named after it), `operator` is for operators and tests (`nats --user operator
   * --password …`). The server refuses clients without credentials.
   */
  readonly nats_users: Readonly<Record<string, string>>;
  /** Hub URL (primary) that secondaries' leafnodes connect to, credentials included. */
  readonly leafnode?: string;
  readonly database: string;
  /** The site's Docker token endpoint (the registry's `realm`). */
  readonly token_realm: string;
  /** The registry's token `service` (the `aud` its tokens must carry). */
  readonly registry_service: string;
  /** The status service: API, dashboard, `/metrics`, and the site's token endpoint (`token_realm`). */
  readonly status: string;
  /** Primary: where the registry's notifications go. */
  readonly ingest?: string;
  /** Primary: the event-log service (health and metrics). */
  readonly event_log?: string;
  /** Secondary: the dispatcher and transfer services (health and metrics). */
  readonly dispatcher?: string;
  readonly transfer?: string;
  /** With `REPLICAS` > 1: every replica's URL by service name (the fields above name the first). */
  readonly replicas?: Readonly<Record<string, readonly string[]>>;
}

/** The content of `.georep/stack.json`. */
export interface StackDescription {
  readonly sites: readonly StackSite[];
  /** A user that may push and pull on every site's registry. */
  readonly credentials: { readonly username: string; readonly password: string };
  /** Token for state-changing calls on the status APIs. */
  readonly admin_token: string;
  /** Shared secret the primary registry sends to ingest in `Authorization`. */
  readonly notification_secret: string;
  /** The key every site signs registry tokens with, and the certificate the registries trust. */
  readonly signing: { readonly issuer: string; readonly key_file: string; readonly certificate_file: string };
  /** Processes per georep service, when more than one. */
  readonly replicas?: number;
  /** Where the servers keep their data (removed by `down`). */
  readonly data_dir: string;
  readonly logs_dir: string;
  readonly started_at: string;
}

interface PidRecord {
  readonly name: string;
  readonly pid: number;
  readonly signal: NodeJS.Signals;
}

interface PidsFile {
  readonly processes: readonly PidRecord[];
  readonly dirs: readonly string[];
}

export interface StackOptions {
  /** The state dir (`.georep`). */
  readonly stateDir: string;
  readonly secondaries?: number;
  /** Progress lines (default: none). */
  readonly onProgress?: (line: string) => void;
  /**
   * Keep the servers running after this process exits (default true, what
   * `make up` wants). Tests pass false: the testing kit's watchdog then ends
   * everything if the test process dies.
   */
  readonly persistent?: boolean;
  /** Extra environment for every georep service (e.g. a short backfill interval in tests). */
  readonly serviceEnv?: Readonly<Record<string, string>>;
  /**
   * Processes per georep service (default 1, `REPLICAS=N make up`). Each ingest
   * replica is its own notification endpoint of the primary registry (so every
   * event arrives N times and JetStream's de-duplication keeps one); the
   * others share their site's NATS and Postgres as they would behind a load
   * balancer.
   */
  readonly replicas?: number;
  /** Fault tests: each secondary's leafnode goes through a TCP proxy the caller can cut ({@link StackControl.leafnodeProxies}). */
  readonly leafnodeProxy?: boolean;
  /** Fault tests: the secondaries reach the primary registry through an HTTP proxy that can fail requests ({@link StackControl.primaryRegistryProxy}). */
  readonly primaryRegistryProxy?: boolean;
  /** Fault tests: the primary registry sends every notification this many times (default 1). */
  readonly notificationCopies?: number;
  /**
   * Benchmarks: notification endpoints of every secondary registry (none by
   * default), so a benchmark learns when a tag lands there without polling
   * the registry (which would load it as much as the replication does).
   */
  readonly secondaryRegistryNotifications?: readonly NotificationEndpoint[];
}

/** A process of the stack as the fault tests drive it. */
interface ControlledProcess {
  readonly pid: number;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

/**
 * The processes of a stack started in this process, for fault tests: kill
 * one (SIGKILL of its process group), start it again on the same ports with
 * the same data, cut links.
 */
export interface StackControl {
  /** Names as in `stack status`: `postgres`, `primary/registry`, `secondary-1/transfer`, … */
  readonly names: readonly string[];
  pid(name: string): number;
  /** SIGKILL of the process group; returns once it is gone. */
  kill(name: string): Promise<void>;
  /** Graceful stop (its stop signal, SIGKILL after a deadline). */
  stop(name: string): Promise<void>;
  /** Starts it again (stopping it first if it runs) and waits until it is ready. */
  restart(name: string): Promise<void>;
  /** Each secondary's leafnode proxy, by site name (with `leafnodeProxy`). */
  readonly leafnodeProxies: ReadonlyMap<string, TcpProxy>;
  /** The proxy in front of the primary registry (with `primaryRegistryProxy`). */
  readonly primaryRegistryProxy: HttpFaultProxy | undefined;
}

/** A file of a workspace package (createRequire: vitest does not provide import.meta.resolve). */
const resolvePackage = (specifier: string): string => createRequire(import.meta.url).resolve(specifier);

/** Entry points of the georep services, by name. */
const SERVICE_MAIN = {
  "event-log": resolvePackage("@georep/event-log/dist/main.js"),
  ingest: resolvePackage("@georep/ingest/dist/main.js"),
  dispatcher: resolvePackage("@georep/dispatcher/dist/main.js"),
  transfer: resolvePackage("@georep/transfer/dist/main.js"),
  status: resolvePackage("@georep/status/dist/main.js"),
} as const;

/**
 * Starts one georep service as a persistent process on `port` and waits for its readiness. Its
 * log level: the stack's `serviceEnv`, else the caller's `LOG_LEVEL`, else info.
 */
async function startService(options: { site: string; service: keyof typeof SERVICE_MAIN; port: number; env: Record<string, string>; logsDir: string; persistent: boolean; replica?: number }) {
  const instance = options.replica === undefined || options.replica === 1 ? options.service : `${options.service}-${options.replica}`;
  const url = `http://127.0.0.1:${options.port}`;
  const server = await startServerProcess({
    name: `${options.site}/${instance}`,
    command: process.execPath,
    // The copier keeps a small young generation so streamed chunks are freed promptly (see the copy benchmark).
    args: [...(options.service === "transfer" ? ["--max-semi-space-size=1"] : []), SERVICE_MAIN[options.service]],
    env: { ...process.env, ...options.env, HTTP_HOST: "127.0.0.1", HTTP_PORT: String(options.port), LOG_LEVEL: options.env.LOG_LEVEL ?? process.env.LOG_LEVEL ?? "info" },
    logFile: join(options.logsDir, `${options.site}-${instance}.log`),
    persistent: options.persistent,
    ready: async () => {
      const res = await fetch(`${url}/health/ready`);
      await res.body?.cancel();
      return res.status === 200;
    },
  });
  return { url, pid: server.pid, instance, server };
}

const secret = (bytes = 18) => randomBytes(bytes).toString("base64url");

export const stackFile = (stateDir: string) => join(stateDir, "stack.json");
const pidsFile = (stateDir: string) => join(stateDir, "pids.json");

/** Reads `stack.json`, or `undefined` when no stack was started. */
export async function readStack(stateDir: string): Promise<StackDescription | undefined> {
  try {
    return JSON.parse(await readFile(stackFile(stateDir), "utf8")) as StackDescription;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

async function readPids(stateDir: string): Promise<PidsFile | undefined> {
  try {
    return JSON.parse(await readFile(pidsFile(stateDir), "utf8")) as PidsFile;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** Every recorded process and whether it runs. */
export async function stackProcesses(stateDir: string): Promise<{ name: string; pid: number; running: boolean }[]> {
  const pids = await readPids(stateDir);
  return (pids?.processes ?? []).map((p) => ({ name: p.name, pid: p.pid, running: groupAlive(p.pid) }));
}

/**
 * Starts the stack, or returns the running one unchanged (idempotent). A
 * stack with some processes gone is stopped and started afresh.
 */
/** Proxies of stacks started in this process, closed by {@link stopStack}. */
const stackControls = new Map<string, { readonly proxies: readonly { close(): Promise<void> }[] }>();

export async function startStack(options: StackOptions): Promise<{ stack: StackDescription; reused: boolean; control?: StackControl }> {
  const say = options.onProgress ?? (() => undefined);
  const persistent = options.persistent ?? true;
  const secondaries = options.secondaries ?? DEFAULT_SECONDARIES;
  if (!Number.isInteger(secondaries) || secondaries < 1 || secondaries > MAX_SECONDARIES) {
    throw new Error(`SECONDARIES must be an integer from 1 to ${MAX_SECONDARIES}, got ${String(options.secondaries)}`);
  }
  const replicas = options.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > MAX_REPLICAS) {
    throw new Error(`REPLICAS must be an integer from 1 to ${MAX_REPLICAS}, got ${String(options.replicas)}`);
  }
  const existing = await readStack(options.stateDir);
  if (existing !== undefined) {
    const processes = await stackProcesses(options.stateDir);
    const wanted = existing.sites.length - 1 === secondaries && (existing.replicas ?? 1) === replicas;
    if (processes.length > 0 && processes.every((p) => p.running) && wanted) return { stack: existing, reused: true };
    say(processes.every((p) => p.running) ? "topology changed: restarting the stack" : "some processes of the previous stack are gone: restarting it");
    await stopStack(options.stateDir);
  }

  const logsDir = join(options.stateDir, "logs");
  await mkdir(logsDir, { recursive: true });
  // Data lives in a temp dir the postgres user can traverse (the checkout may not be).
  const dataDir = await mkdtemp(join(tmpdir(), "georep-stack-"));
  await chmod(dataDir, 0o755);
  if (!persistent) registerDir(dataDir);
  const records: PidRecord[] = [];
  const record = async () => writeFile(pidsFile(options.stateDir), `${JSON.stringify({ processes: records, dirs: [dataDir] } satisfies PidsFile, null, 2)}\n`);
  await record();

  /** Starts `replicas` processes of a service; the first keeps the plain name, port `firstPort` when given. */
  const startReplicas = async (site: string, service: keyof typeof SERVICE_MAIN, env: Record<string, string>, firstPort?: number): Promise<string[]> => {
    const urls: string[] = [];
    // Each service connects to its site's NATS as its own user (the settings given may override it).
    const password = natsUsersBySite.get(site)?.[service];
    if (password === undefined) throw new Error(`no NATS user for ${service} at ${site}`);
    const withNats = { NATS_USER: service, NATS_PASSWORD: password, ...env };
    for (let replica = 1; replica <= replicas; replica++) {
      const port = replica === 1 && firstPort !== undefined ? firstPort : await freePort();
      const started = await startService({ site, service, port, logsDir, persistent, env: withNats, replica });
      records.push({ name: `${site}/${started.instance}`, pid: started.pid, signal: "SIGTERM" });
      handles.set(`${site}/${started.instance}`, started.server);
      await record();
      urls.push(started.url);
    }
    return urls;
  };

  const handles = new Map<string, ControlledProcess>();
  const leafnodeProxies = new Map<string, TcpProxy>();
  let primaryRegistryProxy: HttpFaultProxy | undefined;
  if (persistent && (options.leafnodeProxy === true || options.primaryRegistryProxy === true)) {
    throw new Error("the fault proxies live in the calling process: use them with persistent: false");
  }
  const copies = options.notificationCopies ?? 1;
  if (!Number.isInteger(copies) || copies < 1 || copies > 5) throw new Error(`notificationCopies must be an integer from 1 to 5, got ${copies}`);

  /** The hub's leafnode URL, or a proxy to it that fault tests can cut. */
  const leafnodeRemote = async (site: string, hubUrl: string): Promise<string> => {
    if (options.leafnodeProxy !== true) return hubUrl;
    const url = new URL(hubUrl);
    const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
    leafnodeProxies.set(site, proxy);
    url.host = `127.0.0.1:${proxy.port}`;
    return url.toString();
  };

  const credentials = { username: "georep", password: secret() };
  const leafAuth = { user: "leaf", password: secret() };
  /** Each site's NATS users (the role's services, and `operator`) and their passwords. */
  const natsUsersBySite = new Map<string, Record<string, string>>();
  const notificationSecret = secret(24);
  const adminToken = secret(24);
  try {
    say("generating the shared signing key and the token users file");
    const keys = await writeKeyMaterial(generateKeyMaterial({ algorithm: "ES256", commonName: "georep local stack" }), join(dataDir, "keys"));
    const usersFile = join(dataDir, "users.json");
    const users: UsersFile = {
      users: [{ username: credentials.username, password_hash: await hashPassword(credentials.password, { rounds: 8 }), access: [{ repositories: "**", actions: ["pull", "push", "delete"] }, { catalog: true }] }],
    };
    await writeFile(usersFile, `${JSON.stringify(users, null, 2)}\n`, { mode: 0o600 });

    say("starting PostgreSQL");
    const postgres: RunningPostgres = await startPostgres({ persistent, baseDir: dataDir, logFile: join(logsDir, "postgres.log"), database: "georep_primary", existingUrl: undefined });
    records.push({ name: "postgres", pid: postgres.pid!, signal: "SIGINT" });
    handles.set("postgres", { get pid() { return postgres.pid!; }, stop: () => postgres.stop(), restart: () => postgres.restart() });
    await record();

    const siteNames = [PRIMARY_SITE, ...Array.from({ length: secondaries }, (_, i) => `secondary-${i + 1}`)];
    const sites: StackSite[] = [];
    let hub: RunningNats | undefined;
    for (const name of siteNames) {
      const role: SiteRole = name === PRIMARY_SITE ? "primary" : "secondary";
      say(`starting ${name}: nats-server, registry`);
      // Each service with the permissions the shipped nats.conf gives it; the operator with all.
      const natsUsers = [
        ...NATS_SERVICE_USERS[role].map((user) => ({ user, password: secret(), permissions: NATS_SERVICE_PERMISSIONS[user] })),
        { user: "operator", password: secret() },
      ];
      natsUsersBySite.set(name, Object.fromEntries(natsUsers.map((u) => [u.user, u.password])));
      const nats: RunningNats = await startNats({
        name: `georep-${name}`,
        users: natsUsers,
        domain: name,
        persistent,
        baseDir: dataDir,
        logFile: join(logsDir, `${name}-nats.log`),
        // Each secondary's transfer jobs are its own: without the deny, a secondary's
        // TRANSFER_JOBS stream would also store the jobs another secondary publishes.
        ...(role === "primary"
          ? {
              // With the leafnode proxies, the hub must not tell leaves its own address (they would
              // reconnect around a cut proxy): it advertises a port nobody listens on instead.
              leafnodeListen: { auth: leafAuth, ...(options.leafnodeProxy === true ? { advertise: `127.0.0.1:${await freePort()}` } : {}) },
            }
          : { leafnodeRemotes: [await leafnodeRemote(name, hub!.leafnodeUrl!)], leafnodeDeny: [SITE_LOCAL_SUBJECTS] }),
      });
      records.push({ name: `${name}/nats-server`, pid: nats.pid, signal: "SIGTERM" });
      handles.set(`${name}/nats-server`, nats);
      await record();
      if (role === "primary") hub = nats;

      const service = `registry.${name}`;
      // The status service serves the site's Docker token endpoint; it starts once the
      // registry and the role's services run, and nobody asks for a token before that.
      const statusPort = await freePort();
      const tokenRealm = `http://127.0.0.1:${statusPort}/token`;

      const database = role === "primary" ? postgres.url : await postgres.createDatabase(`georep_${name.replaceAll("-", "_")}`);
      const services: { ingest?: string; event_log?: string; dispatcher?: string; transfer?: string } = {};
      /** Every replica's URL, by service (in stack.json when REPLICAS > 1). */
      const instances: Record<string, string[]> = {};
      let notifications: NotificationEndpoint[] = [];
      if (role === "primary") {
        say(`starting ${name}: event-log, ingest`);
        const common = { NATS_URL: nats.url, SITE_NAME: name, SITE_ROLE: role };
        const eventLogs = await startReplicas(name, "event-log", { ...common, DATABASE_URL: database, ...options.serviceEnv });
        const ingests = await startReplicas(name, "ingest", { ...common, INGEST_SECRET: notificationSecret, ...options.serviceEnv });
        services.ingest = ingests[0];
        services.event_log = eventLogs[0];
        instances["ingest"] = ingests;
        instances["event-log"] = eventLogs;
        const targets = ingests.flatMap((url) => Array.from({ length: copies }, () => url));
        // The endpoint settings the compose files render too (@georep/deploy-templates), one per target.
        notifications = targets.map((url, i) => {
          const endpoint = ingestNotificationEndpoint(url, notificationSecret);
          return i === 0 ? endpoint : { ...endpoint, name: `${endpoint.name ?? "georep-ingest"}-${i + 1}` };
        });
        // Blob pushes for the prefetch: one endpoint (a hint needs no copies), a queue of its own.
        notifications.push(ingestBlobNotificationEndpoint(ingests[0]!, notificationSecret));
      } else notifications = [...(options.secondaryRegistryNotifications ?? [])];
      const registry: RunningRegistry = await startRegistry({
        persistent,
        baseDir: dataDir,
        logFile: join(logsDir, `${name}-registry.log`),
        auth: { token: { realm: tokenRealm, service, issuer: TOKEN_ISSUER, rootCertBundle: keys.certificatePath } },
        notifications,
      });
      records.push({ name: `${name}/registry`, pid: registry.pid, signal: "SIGTERM" });
      handles.set(`${name}/registry`, registry);
      if (role === "primary" && options.primaryRegistryProxy === true) primaryRegistryProxy = await startHttpFaultProxy(registry.url);
      await record();
      if (role === "secondary") {
        say(`starting ${name}: dispatcher, transfer`);
        const primarySite = sites[0]!;
        const common = {
          NATS_URL: nats.url,
          DATABASE_URL: database,
          SITE_NAME: name,
          SITE_ROLE: role,
          PRIMARY_JS_DOMAIN: PRIMARY_SITE,
          PRIMARY_REGISTRY_URL: primaryRegistryProxy?.url ?? primarySite.registry,
          // Tokens minted locally with the key the sites share: pull-only on the primary.
          REGISTRY_TOKEN_KEY_FILE: keys.keyPath,
          REGISTRY_TOKEN_CERT_FILE: keys.certificatePath,
          REGISTRY_TOKEN_ISSUER: TOKEN_ISSUER,
        };
        const dispatchers = await startReplicas(name, "dispatcher", { ...common, DISPATCHER_BACKFILL_INTERVAL_MS: "60000", ...options.serviceEnv });
        const transfers = await startReplicas(name, "transfer", { ...common, SECONDARY_REGISTRY_URL: registry.url, ...options.serviceEnv });
        services.dispatcher = dispatchers[0];
        services.transfer = transfers[0];
        instances["dispatcher"] = dispatchers;
        instances["transfer"] = transfers;
      }
      say(`starting ${name}: status`);
      const statuses = await startReplicas(
        name,
        "status",
        {
          NATS_URL: nats.url,
          DATABASE_URL: database,
          SITE_NAME: name,
          SITE_ROLE: role,
          STATUS_ADMIN_TOKEN: adminToken,
          STATUS_REPORT_INTERVAL_MS: "2000",
          STATUS_TOKEN_USERS_FILE: usersFile,
          STATUS_TOKEN_SERVICE: service,
          REGISTRY_TOKEN_KEY_FILE: keys.keyPath,
          REGISTRY_TOKEN_CERT_FILE: keys.certificatePath,
          REGISTRY_TOKEN_ISSUER: TOKEN_ISSUER,
          ...(role === "secondary" ? { PRIMARY_REGISTRY_URL: primaryRegistryProxy?.url ?? sites[0]!.registry, SECONDARY_REGISTRY_URL: registry.url } : {}),
          ...options.serviceEnv,
        },
        statusPort,
      );
      instances["status"] = statuses;
      sites.push({
        name,
        role,
        registry: registry.url,
        registry_service: service,
        token_realm: tokenRealm,
        nats: nats.url,
        nats_domain: name,
        nats_monitor: nats.monitorUrl,
        nats_users: natsUsersBySite.get(name)!,
        ...(role === "primary" ? { leafnode: nats.leafnodeUrl! } : {}),
        database,
        status: statuses[0]!,
        ...services,
        ...(replicas > 1 ? { replicas: instances } : {}),
      });
    }
    say("waiting for the secondaries' leafnodes");
    await waitForLeafnodes(hub!, secondaries);

    const stack: StackDescription = {
      sites,
      credentials,
      admin_token: adminToken,
      notification_secret: notificationSecret,
      signing: { issuer: TOKEN_ISSUER, key_file: keys.keyPath, certificate_file: keys.certificatePath },
      ...(replicas > 1 ? { replicas } : {}),
      data_dir: dataDir,
      logs_dir: logsDir,
      started_at: new Date().toISOString(),
    };
    await writeFile(stackFile(options.stateDir), `${JSON.stringify(stack, null, 2)}\n`, { mode: 0o600 });
    const handle = (name: string): ControlledProcess => {
      const h = handles.get(name);
      if (h === undefined) throw new Error(`no process named ${JSON.stringify(name)} in this stack (known: ${[...handles.keys()].join(", ")})`);
      return h;
    };
    /** Keeps pids.json right after a process got a new pid, so `stack down` ends it. */
    const repid = async (name: string) => {
      const i = records.findIndex((r) => r.name === name);
      if (i >= 0) records[i] = { ...records[i]!, pid: handle(name).pid };
      await record();
    };
    const control: StackControl = {
      names: [...handles.keys()],
      pid: (name) => handle(name).pid,
      async kill(name) {
        const pid = handle(name).pid;
        await stopProcessGroup(pid, "SIGKILL", 5_000);
      },
      stop: (name) => handle(name).stop(),
      async restart(name) {
        await handle(name).restart();
        await repid(name);
      },
      leafnodeProxies,
      primaryRegistryProxy,
    };
    stackControls.set(options.stateDir, { proxies: [...leafnodeProxies.values(), ...(primaryRegistryProxy === undefined ? [] : [primaryRegistryProxy])] });
    return { stack, reused: false, control };
  } catch (error) {
    await stopStack(options.stateDir);
    throw error;
  }
}

/** Stops every recorded process (last started first) and removes the data. */
export async function stopStack(stateDir: string, onProgress: (line: string) => void = () => undefined): Promise<number> {
  const controls = stackControls.get(stateDir);
  stackControls.delete(stateDir);
  for (const proxy of controls?.proxies ?? []) await proxy.close();
  const pids = await readPids(stateDir);
  let stopped = 0;
  for (const p of [...(pids?.processes ?? [])].reverse()) {
    if (!groupAlive(p.pid)) continue;
    onProgress(`stopping ${p.name} (pid ${p.pid})`);
    await stopProcessGroup(p.pid, p.signal, 10_000);
    stopped++;
  }
  for (const dir of pids?.dirs ?? []) if (existsSync(dir)) await rm(dir, { recursive: true, force: true });
  await rm(pidsFile(stateDir), { force: true });
  await rm(stackFile(stateDir), { force: true });
  return stopped;
}

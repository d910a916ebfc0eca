/**
 * The local multi-site stack: the one place where the local topology is
 * defined, shared by `make up`/`make demo`, tests and benchmarks.
 *
 * Per site: a nats-server with its own JetStream domain (secondaries join the
 * primary's as authenticated leafnodes), a database on one local PostgreSQL
 * cluster, and a Distribution registry whose user may push and pull. The
 * servers outlive the command that starts them; `.georep/stack.json`
 * describes them, `.georep/pids.json` records what `down` must stop.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNats, waitForLeafnodes } from "./nats.js";
import type { RunningNats } from "./nats.js";
import { startPostgres } from "./postgres.js";
import type { RunningPostgres } from "./postgres.js";
import { groupAlive, stopProcessGroup } from "./process.js";
import { startRegistry } from "./registry.js";
import type { RunningRegistry } from "./registry.js";

export const PRIMARY_SITE = "primary";
export const DEFAULT_SECONDARIES = 1;
export const MAX_SECONDARIES = 8;

export type SiteRole = "primary" | "secondary";

/** One site of `stack.json`. Service endpoints appear as the services land. */
export interface StackSite {
  readonly name: string;
  readonly role: SiteRole;
  readonly registry: string;
  readonly nats: string;
  readonly nats_domain: string;
  readonly nats_monitor: string;
  /** Hub URL (primary) that secondaries' leafnodes connect to, credentials included. */
  readonly leafnode?: string;
  readonly database: string;
  readonly status?: string;
  readonly ingest?: string;
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
export async function startStack(options: StackOptions): Promise<{ stack: StackDescription; reused: boolean }> {
  const say = options.onProgress ?? (() => undefined);
  const secondaries = options.secondaries ?? DEFAULT_SECONDARIES;
  if (!Number.isInteger(secondaries) || secondaries < 1 || secondaries > MAX_SECONDARIES) {
    throw new Error(`SECONDARIES must be an integer from 1 to ${MAX_SECONDARIES}, got ${String(options.secondaries)}`);
  }
  const existing = await readStack(options.stateDir);
  if (existing !== undefined) {
    const processes = await stackProcesses(options.stateDir);
    const wanted = existing.sites.length - 1 === secondaries;
    if (processes.length > 0 && processes.every((p) => p.running) && wanted) return { stack: existing, reused: true };
    say(processes.every((p) => p.running) ? "topology changed: restarting the stack" : "some processes of the previous stack are gone: restarting it");
    await stopStack(options.stateDir);
  }

  const logsDir = join(options.stateDir, "logs");
  await mkdir(logsDir, { recursive: true });
  // Data lives in a temp dir the postgres user can traverse (the checkout may not be).
  const dataDir = await mkdtemp(join(tmpdir(), "georep-stack-"));
  await chmod(dataDir, 0o755);
  const records: PidRecord[] = [];
  const record = async () => writeFile(pidsFile(options.stateDir), `${JSON.stringify({ processes: records, dirs: [dataDir] } satisfies PidsFile, null, 2)}\n`);
  await record();

  const credentials = { username: "georep", password: secret() };
  const leafAuth = { user: "leaf", password: secret() };
  try {
    say("starting PostgreSQL");
    const postgres: RunningPostgres = await startPostgres({ persistent: true, baseDir: dataDir, logFile: join(logsDir, "postgres.log"), database: "georep_primary", existingUrl: undefined });
    records.push({ name: "postgres", pid: postgres.pid!, signal: "SIGINT" });
    await record();

    const siteNames = [PRIMARY_SITE, ...Array.from({ length: secondaries }, (_, i) => `secondary-${i + 1}`)];
    const sites: StackSite[] = [];
    let hub: RunningNats | undefined;
    for (const name of siteNames) {
      const role: SiteRole = name === PRIMARY_SITE ? "primary" : "secondary";
      say(`starting ${name}: nats-server, registry`);
      const nats: RunningNats = await startNats({
        name: `georep-${name}`,
        domain: name,
        persistent: true,
        baseDir: dataDir,
        logFile: join(logsDir, `${name}-nats.log`),
        ...(role === "primary" ? { leafnodeListen: { auth: leafAuth } } : { leafnodeRemotes: [hub!.leafnodeUrl!] }),
      });
      records.push({ name: `${name}/nats-server`, pid: nats.pid, signal: "SIGTERM" });
      await record();
      if (role === "primary") hub = nats;
      const registry: RunningRegistry = await startRegistry({ persistent: true, baseDir: dataDir, logFile: join(logsDir, `${name}-registry.log`), auth: { htpasswd: { users: [credentials] } } });
      records.push({ name: `${name}/registry`, pid: registry.pid, signal: "SIGTERM" });
      await record();
      const database = role === "primary" ? postgres.url : await postgres.createDatabase(`georep_${name.replaceAll("-", "_")}`);
      sites.push({
        name,
        role,
        registry: registry.url,
        nats: nats.url,
        nats_domain: name,
        nats_monitor: nats.monitorUrl,
        ...(role === "primary" ? { leafnode: nats.leafnodeUrl! } : {}),
        database,
      });
    }
    say("waiting for the secondaries' leafnodes");
    await waitForLeafnodes(hub!, secondaries);

    const stack: StackDescription = {
      sites,
      credentials,
      admin_token: secret(24),
      notification_secret: secret(24),
      data_dir: dataDir,
      logs_dir: logsDir,
      started_at: new Date().toISOString(),
    };
    await writeFile(stackFile(options.stateDir), `${JSON.stringify(stack, null, 2)}\n`, { mode: 0o600 });
    return { stack, reused: false };
  } catch (error) {
    await stopStack(options.stateDir);
    throw error;
  }
}

/** Stops every recorded process (last started first) and removes the data. */
export async function stopStack(stateDir: string, onProgress: (line: string) => void = () => undefined): Promise<number> {
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

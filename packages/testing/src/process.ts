/**
 * Server processes for tests and the local stack: spawned detached in their
 * own process group, output captured to a log file, readiness awaited, and
 * stopped by signal with a SIGKILL deadline.
 *
 * Orphans: every process a test starts is registered with a watchdog, a
 * small detached child that holds a pipe from the test process. When the test
 * process goes away for any reason (a failed test, vitest killing its worker,
 * Ctrl-C, SIGKILL), the pipe closes and the watchdog stops the registered
 * process groups and removes their temp dirs. The local stack starts its
 * servers with `persistent: true` instead: they outlive the CLI that started
 * them and `stack down` ends them by the PIDs it recorded.
 */
import type { ChildProcess, SpawnOptions } from "node:child_process";
import { spawn } from "node:child_process";
import { closeSync, existsSync, fstatSync, openSync, readSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { ServerStartError } from "./errors.js";
import { tailFile } from "./files.js";
import { procStats } from "./proc.js";

/** How long a server may take to become ready before its start fails. */
export const DEFAULT_READY_TIMEOUT_MS = 30_000;
/** How long a stop signal may take before the process group is killed. */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;

export interface ServerProcessOptions {
  /** Short name for messages ("nats-server", "postgres", "registry"). */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** All output (stdout and stderr) is appended here. */
  readonly logFile: string;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Run as this user (used for postgres when the test runs as root). */
  readonly uid?: number;
  readonly gid?: number;
  /** The signal that asks the server to stop; SIGKILL follows after `stopTimeoutMs`. */
  readonly stopSignal?: NodeJS.Signals;
  readonly stopTimeoutMs?: number;
  /** Resolves when the server answers; rejects or returns false while it does not. */
  readonly ready: () => Promise<boolean>;
  /**
   * A line this start of the server writes to its log once it holds its ports. Until it appears the
   * server is not ready, whatever `ready()` says: on a busy machine another process can take a port
   * between our pick and the bind, and `ready()` would then be talking to that process.
   */
  readonly readyLog?: RegExp;
  readonly readyTimeoutMs?: number;
  /** Leave the process running when this process exits (the local stack). */
  readonly persistent?: boolean;
}

/** A running server process, restartable with the same options. */
export interface ServerProcess {
  readonly name: string;
  readonly logFile: string;
  /** PID of the server, which is also its process group id. */
  readonly pid: number;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

/** Starts the process and waits until `ready()` answers true. */
export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  let child = await launch(options);
  let stopped = false;
  return {
    name: options.name,
    logFile: options.logFile,
    get pid() {
      return child.pid ?? -1;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await terminate(child, options);
    },
    async restart() {
      await terminate(child, options);
      child = await launch(options);
      stopped = false;
    },
  };
}

async function launch(options: ServerProcessOptions): Promise<ChildProcess> {
  const logStart = existsSync(options.logFile) ? statSync(options.logFile).size : 0;
  const log = openSync(options.logFile, "a");
  const spawnOptions: SpawnOptions = {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["ignore", log, log],
    detached: true,
    ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.gid }),
  };
  let child: ChildProcess;
  try {
    child = spawn(options.command, options.args, spawnOptions);
  } finally {
    closeSync(log);
  }
  const exited = new Promise<string>((resolve) => {
    child.once("error", (error) => resolve(`could not be started: ${error.message}`));
    child.once("exit", (code, signal) => resolve(`exited with ${signal ?? `code ${code}`}`));
  });
  child.unref();
  if (child.pid !== undefined && options.persistent !== true) watchdog().add(child.pid, options.stopSignal ?? "SIGTERM");

  const deadline = Date.now() + (options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
  let lastError = "";
  for (;;) {
    const early = await Promise.race([exited, sleep(0).then(() => undefined)]);
    if (early !== undefined) {
      throw new ServerStartError(options.name, `${options.command} ${early}`, options.logFile, await tailFile(options.logFile));
    }
    try {
      if ((options.readyLog === undefined || options.readyLog.test(readFrom(options.logFile, logStart))) && (await options.ready())) return child;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > deadline) {
      await terminate(child, options);
      const reason = `not ready after ${options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS} ms${lastError ? ` (last: ${lastError})` : ""}`;
      throw new ServerStartError(options.name, reason, options.logFile, await tailFile(options.logFile));
    }
    await sleep(100);
  }
}

/** What a log file holds from byte `start` on (this start's lines only). */
function readFrom(path: string, start: number): string {
  const fd = openSync(path, "r");
  try {
    const length = Math.max(0, fstatSync(fd).size - start);
    const buffer = Buffer.alloc(length);
    const read = readSync(fd, buffer, 0, length, start);
    return buffer.toString("utf8", 0, read);
  } finally {
    closeSync(fd);
  }
}

/** Signals the process group, waits for it to be gone, then SIGKILLs what is left. */
async function terminate(child: ChildProcess, options: ServerProcessOptions): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  await stopProcessGroup(pid, options.stopSignal ?? "SIGTERM", options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS);
  if (options.persistent !== true) watchdog().remove(pid);
}

/**
 * True while any process of the group `pgid` is alive. Zombies do not count:
 * a server whose starter has exited is reaped by init, which may take a while.
 */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  if (!existsSync("/proc/self/stat")) return true;
  return procStats().some((p) => p.pgid === pgid && p.state !== "Z");
}

/** Stops a process group started by this kit (or recorded by the stack): signal, wait, SIGKILL. */
export async function stopProcessGroup(pgid: number, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
  if (!signalGroup(pgid, signal)) return;
  const deadline = Date.now() + timeoutMs;
  while (groupAlive(pgid)) {
    if (Date.now() > deadline) {
      signalGroup(pgid, "SIGKILL");
      while (groupAlive(pgid)) await sleep(20);
      return;
    }
    await sleep(25);
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Removes a temp dir now and tells the watchdog it no longer needs to. */
export async function removeDir(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
  if (watchdogInstance !== undefined) watchdogInstance.forgetDir(path);
}

/** Registers a temp dir for removal when this process dies without cleaning up. */
export function registerDir(path: string): void {
  watchdog().dir(path);
}

// ---------------------------------------------------------------------------
// The watchdog: `node -e` with a line protocol on stdin. It ignores the
// signals a terminal sends to the foreground group and lives in its own group,
// so only the pipe closing (this process gone) makes it act.
const WATCHDOG_SOURCE = String.raw`
const { rmSync } = require("node:fs");
for (const s of ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"]) process.on(s, () => {});
const groups = new Map(); const dirs = new Set(); let buffer = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  buffer += chunk; let i;
  while ((i = buffer.indexOf("\n")) >= 0) {
    const line = buffer.slice(0, i); buffer = buffer.slice(i + 1);
    try {
      const m = JSON.parse(line);
      if (m.op === "add") groups.set(m.pid, m.signal);
      else if (m.op === "remove") groups.delete(m.pid);
      else if (m.op === "dir") dirs.add(m.path);
      else if (m.op === "undir") dirs.delete(m.path);
    } catch {}
  }
});
const alive = (g) => { try { process.kill(-g, 0); return true; } catch (e) { return e.code === "EPERM"; } };
const kill = (g, s) => { try { process.kill(-g, s); } catch {} };
process.stdin.on("end", () => {
  for (const [g, s] of groups) kill(g, s);
  const deadline = Date.now() + 5000;
  const tick = () => {
    const left = [...groups.keys()].filter(alive);
    if (left.length > 0 && Date.now() < deadline) return setTimeout(tick, 50);
    for (const g of left) kill(g, "SIGKILL");
    setTimeout(() => {
      for (const d of dirs) { try { rmSync(d, { recursive: true, force: true }); } catch {} }
      process.exit(0);
    }, left.length > 0 ? 200 : 0);
  };
  tick();
});
`;

interface Watchdog {
  add(pid: number, signal: NodeJS.Signals): void;
  remove(pid: number): void;
  dir(path: string): void;
  forgetDir(path: string): void;
}

let watchdogInstance: Watchdog | undefined;

function watchdog(): Watchdog {
  if (watchdogInstance !== undefined) return watchdogInstance;
  const child = spawn(process.execPath, ["-e", WATCHDOG_SOURCE], { stdio: ["pipe", "ignore", "ignore"], detached: true });
  child.unref();
  const stdin = child.stdin;
  (stdin as unknown as { unref?: () => void }).unref?.();
  stdin.on("error", () => undefined);
  const send = (message: object): void => {
    stdin.write(`${JSON.stringify(message)}\n`);
  };
  watchdogInstance = {
    add: (pid, signal) => send({ op: "add", pid, signal }),
    remove: (pid) => send({ op: "remove", pid }),
    dir: (path) => send({ op: "dir", path }),
    forgetDir: (path) => send({ op: "undir", path }),
  };
  return watchdogInstance;
}

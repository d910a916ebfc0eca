/**
 * The fault harness: a local stack started for one test file, clients of
 * both registries, and one fault's run from start to report: the checker
 * watching the secondary during the fault, then the wait until everything
 * pushed is replicated, the final comparison, and the report row.
 */
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { expect } from "vitest";
import { createRegistryClient } from "@georep/registry-client";
import type { RegistryClient } from "@georep/registry-client";
import { startStack, stopStack } from "@georep/stack";
import type { StackControl, StackDescription, StackOptions, StackSite } from "@georep/stack";
import { groupAlive } from "@georep/testing/internal";
import { startChecker } from "./checker.js";
import type { CheckerSummary, Violation } from "./checker.js";
import { MiB, sleep } from "./content.js";
import type { PushedTag } from "./content.js";
import { recordRow } from "./report.js";
import { missingContent, tagMap } from "./verify.js";

/** A stack started for one test file, with what the tests drive it with. */
export interface FaultStack {
  /** The state dir: `stack.json`, `pids.json` and `logs/` (kept when a test failed). */
  readonly dir: string;
  readonly stack: StackDescription;
  readonly control: StackControl;
  readonly primarySite: StackSite;
  readonly secondarySite: StackSite;
  /** Pushes to the primary. */
  readonly primary: RegistryClient;
  /** Reads the secondary (final comparisons). */
  readonly secondary: RegistryClient;
  /** Reads the secondary for the background checker: no retries, short timeouts. */
  readonly checkerClient: RegistryClient;
  /** Stops every process; removes the state dir unless `keep` (or GEOREP_FAULTS_KEEP_LOGS=1). */
  stop(options?: { keep?: boolean }): Promise<void>;
}

/** Starts a primary and one secondary for fault tests (in this process: the proxies live here). */
export async function startFaultStack(options: Omit<StackOptions, "stateDir" | "persistent" | "secondaries">): Promise<FaultStack> {
  const dir = await mkdtemp(join(tmpdir(), "georep-faults-"));
  const { stack, control } = await startStack({ ...options, stateDir: dir, secondaries: 1, persistent: false });
  if (control === undefined) throw new Error("startStack returned no control for a fresh stack");
  const credentials = { type: "basic" as const, ...stack.credentials };
  const [primarySite, secondarySite] = [stack.sites[0]!, stack.sites[1]!];
  return {
    dir,
    stack,
    control,
    primarySite,
    secondarySite,
    primary: createRegistryClient({ url: primarySite.registry, credentials }),
    secondary: createRegistryClient({ url: secondarySite.registry, credentials }),
    checkerClient: createRegistryClient({ url: secondarySite.registry, credentials, retry: { retries: 0 }, headersTimeoutMs: 5_000, bodyTimeoutMs: 10_000 }),
    async stop({ keep = false } = {}) {
      await stopStack(dir);
      keep ||= process.env.GEOREP_FAULTS_KEEP_LOGS === "1";
      if (keep) process.stdout.write(`fault stack logs kept in ${stack.logs_dir}\n`);
      else await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Rows of a query on one of the stack's databases (a fresh connection: Postgres may have restarted). */
export async function query<T extends pg.QueryResultRow>(url: string, text: string, values: readonly unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  // A connection ending under us (Postgres restarting) fails the query; it must not also be an unhandled 'error' event.
  client.on("error", () => undefined);
  await client.connect();
  try {
    return (await client.query<T>(text, [...values])).rows;
  } finally {
    await client.end();
  }
}

/** The value of a Prometheus sample (`name` or `name{labels}`) on a service's `/metrics`, 0 when absent. */
export async function metric(serviceUrl: string, sample: string): Promise<number> {
  const text = await (await fetch(`${serviceUrl}/metrics`)).text();
  for (const line of text.split("\n")) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return 0;
}

/** The storage root of a registry of the stack (the one listening on `registryUrl`). */
export async function registryStorageDir(stack: StackDescription, registryUrl: string): Promise<string> {
  const { port } = new URL(registryUrl);
  for (const entry of await readdir(stack.data_dir)) {
    if (!entry.startsWith("georep-registry-")) continue;
    const config = await readFile(join(stack.data_dir, entry, "config.yml"), "utf8").catch(() => "");
    if (config.includes(`127.0.0.1:${port}`)) return join(stack.data_dir, entry, "storage");
  }
  throw new Error(`no registry storage for ${registryUrl} under ${stack.data_dir}`);
}

/** Bytes in the upload sessions of `repository` on a filesystem-backed Distribution (what a copy in progress has sent). */
export async function uploadingBytes(storageDir: string, repository: string): Promise<number> {
  const uploads = join(storageDir, "docker/registry/v2/repositories", repository, "_uploads");
  let sessions: string[];
  try {
    sessions = await readdir(uploads);
  } catch {
    return 0;
  }
  let total = 0;
  for (const session of sessions) total += (await stat(join(uploads, session, "data")).catch(() => ({ size: 0 }))).size;
  return total;
}

/** What a watch of a hub's leafnode connections saw. */
export interface LeafnodeWatch {
  /** Stops watching; returns the samples that found a leafnode connected (time and remote address). */
  stop(): Promise<string[]>;
}

/**
 * Samples a NATS server's `/leafz` every `intervalMs`, to prove a link is
 * really down: a leaf that reconnects around a cut proxy shows up here.
 */
export function watchLeafnodes(monitorUrl: string, intervalMs = 500): LeafnodeWatch {
  const connected: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const body = (await (await fetch(`${monitorUrl}/leafz`)).json()) as { leafs?: { ip: string; port: number; name?: string }[] };
        for (const leaf of body.leafs ?? []) connected.push(`${new Date().toISOString()} ${leaf.name ?? "leaf"} from ${leaf.ip}:${leaf.port}`);
      } catch {
        // the monitor not answering proves nothing either way
      }
      await sleep(intervalMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return connected;
    },
  };
}

/** Polls `condition` every `intervalMs` until it holds; throws `message()` after `timeoutMs`. */
export async function waitUntil(condition: () => Promise<boolean>, timeoutMs: number, message: () => string, intervalMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(message());
    await sleep(intervalMs);
  }
}

/** Processes of the stack that are not running (crashed, or killed and never restarted). */
export function deadProcesses(fs: FaultStack): string[] {
  return fs.control.names.filter((name) => !groupAlive(fs.control.pid(name)));
}

/**
 * Starts again whatever process of the stack is not running, so that a
 * fault is measured on a whole stack even when an earlier one broke it (that
 * earlier test has already failed and named the process). Returns the names.
 */
export async function reviveStack(fs: FaultStack): Promise<string[]> {
  const dead = deadProcesses(fs);
  for (const name of dead) await fs.control.restart(name);
  return dead;
}

/** How a fault ended, as the test asserts it. */
export interface FaultOutcome {
  /** `repository:tag` pushed but not on the secondary at the pushed digest. */
  readonly lost: readonly string[];
  /** Content missing under a tag the secondary serves, at the end. */
  readonly incomplete: readonly string[];
  /** Tags the primary did not serve at the pushed digest (a broken test, not a replication problem). */
  readonly notOnPrimary: readonly string[];
  /** What the background checker saw. */
  readonly violations: readonly Violation[];
  readonly checker: CheckerSummary;
  /** Tracking rows of the fault's repositories not `synced` 30 s after everything replicated (stuck or failing). */
  readonly notSynced: readonly { repository: string; state: string; last_sync_failure: string | null }[];
  readonly recoverySeconds: number | null;
  /** Processes of the stack found dead at the end (a service crashed during the fault). */
  readonly dead: readonly string[];
}

/** One fault's run. */
export interface FaultRun {
  /** The fault was removed now (process back, link restored…): recovery time counts from here. */
  faultEnded(): void;
  /**
   * Waits until every pushed tag is on the secondary (at most `timeoutMs`),
   * stops the checker, compares both sides, checks the tracking rows and
   * appends the report row. `notes` (or what it resolves to, asked just
   * before the row is written) goes to the report's notes.
   */
  finish(pushed: readonly PushedTag[], options?: { timeoutMs?: number; notes?: string | (() => Promise<string>) }): Promise<FaultOutcome>;
}

/**
 * Starts a fault's run: any process an earlier fault left dead is started
 * again (and named in the report), then the checker watches the repositories
 * under `prefixes` on the secondary from now on.
 */
export async function beginFault(fs: FaultStack, fault: string, prefixes: readonly string[]): Promise<FaultRun> {
  const revived = await reviveStack(fs);
  const checker = startChecker({ secondary: fs.checkerClient, prefixes });
  let endedAt: number | undefined;
  return {
    faultEnded() {
      endedAt = Date.now();
    },
    async finish(pushed, { timeoutMs = 180_000, notes = "" } = {}) {
      const faultEnd = endedAt ?? Math.max(...pushed.map((p) => p.pushedAt));
      const byRepository = new Map<string, PushedTag[]>();
      for (const p of pushed) byRepository.set(p.repository, [...(byRepository.get(p.repository) ?? []), p]);

      // 1. Wait until every repository's tag map is the same on both sides and holds every pushed tag.
      const convergedAt = new Map<string, number>();
      const deadline = Date.now() + timeoutMs;
      let deadSince: number | undefined;
      while (convergedAt.size < byRepository.size && Date.now() < deadline) {
        // A process that died stays dead: after a grace period, waiting longer proves nothing.
        deadSince = deadProcesses(fs).length === 0 ? undefined : (deadSince ?? Date.now());
        if (deadSince !== undefined && Date.now() - deadSince > 10_000) break;
        for (const [repository, tags] of byRepository) {
          if (convergedAt.has(repository)) continue;
          try {
            const want = await tagMap(fs.primary, repository);
            const have = await tagMap(fs.secondary, repository);
            if (tags.every((t) => want[t.tag] === t.digest) && JSON.stringify(have) === JSON.stringify(want)) convergedAt.set(repository, Date.now());
          } catch {
            // a registry read failing now is retried next round
          }
        }
        if (convergedAt.size < byRepository.size) await sleep(250);
      }
      const allConverged = convergedAt.size === byRepository.size;
      const recoverySeconds = allConverged ? Math.max(0, Math.max(faultEnd, ...convergedAt.values()) - faultEnd) / 1000 : null;
      const summary = await checker.stop();

      // 2. The final comparison, tag by tag, and every manifest and blob under each secondary tag.
      const lost: string[] = [];
      const notOnPrimary: string[] = [];
      const incomplete: string[] = [];
      for (const [repository, tags] of byRepository) {
        const want = await tagMap(fs.primary, repository);
        const have = await tagMap(fs.secondary, repository);
        for (const t of tags) {
          if (want[t.tag] !== t.digest) notOnPrimary.push(`${repository}:${t.tag}`);
          if (have[t.tag] !== t.digest) lost.push(`${repository}:${t.tag} (pushed ${t.digest}, secondary ${have[t.tag] ?? "absent"})`);
        }
        for (const [tag, digest] of Object.entries(have)) {
          incomplete.push(...(await missingContent(fs.secondary, repository, digest)).map((p) => `${repository}:${tag}: ${p}`));
        }
      }

      // 3. Nothing stuck: every tracking row of these repositories ends synced.
      const repositories = [...byRepository.keys()];
      type Row = { repository: string; state: string; last_sync_failure: string | null };
      const unsynced = () => query<Row>(fs.secondarySite.database, `select repository, state, last_sync_failure from repository_sync where repository = any($1) and state <> 'synced' order by repository`, [repositories]);
      let notSynced: Row[] = [];
      const rowsDeadline = Date.now() + 30_000;
      for (;;) {
        notSynced = await unsynced().catch(() => notSynced);
        if (notSynced.length === 0 || Date.now() > rowsDeadline || deadProcesses(fs).length > 0) break;
        await sleep(500);
      }

      const [history] = await query<{ failed: string; synced: string; bytes: string }>(
        fs.secondarySite.database,
        `select count(*) filter (where outcome = 'failed') as failed, count(*) filter (where outcome = 'synced') as synced, coalesce(sum(bytes_copied), 0) as bytes
         from sync_history where repository = any($1)`,
        [repositories],
      ).catch(() => [undefined]);
      const dead = deadProcesses(fs);
      const noted = typeof notes === "string" ? notes : await notes().catch((error: unknown) => `(notes failed: ${String(error)})`);
      const replicated = pushed.length - lost.length;
      await recordRow({
        fault: fault,
        pushed: pushed.length,
        replicated,
        lost: lost.length,
        incompleteVisible: summary.violations.length,
        recoverySeconds,
        checkerRounds: summary.rounds,
        notes: [
          revived.length > 0 ? `restarted first (left dead by an earlier fault): ${revived.join(", ")}` : "",
          dead.length > 0 ? `DIED during the fault: ${dead.join(", ")}` : "",
          noted,
          history === undefined ? "" : `syncs: ${history.synced} synced (${(Number(history.bytes) / MiB).toFixed(1)} MiB copied), ${history.failed} failed`,
          incomplete.length > 0 ? `${incomplete.length} incomplete at the end` : "",
          notSynced.length > 0 ? `${notSynced.length} tracking rows not synced` : "",
          summary.errors > 0 ? `checker read errors: ${summary.errors} (last: ${summary.lastError})` : "",
        ]
          .filter((s) => s !== "")
          .join("; "),
      });
      return { lost, incomplete, notOnPrimary, violations: summary.violations, checker: summary, notSynced, recoverySeconds, dead };
    },
  };
}

/** What every fault asserts: nothing lost, nothing incomplete (at the end or during the fault), nothing stuck, nothing dead. */
export function expectClean(outcome: FaultOutcome): void {
  expect(outcome.notOnPrimary, "tags the primary does not serve as pushed (a test problem)").toEqual([]);
  expect(outcome.lost, "tags lost").toEqual([]);
  expect(outcome.incomplete, "content missing on the secondary at the end").toEqual([]);
  expect(outcome.violations, "incomplete content visible on the secondary during the fault").toEqual([]);
  expect(outcome.notSynced, "tracking rows not synced").toEqual([]);
  expect(outcome.dead, "processes of the stack that died during the fault").toEqual([]);
}

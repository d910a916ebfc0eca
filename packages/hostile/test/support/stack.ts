/**
 * The one local stack the hostile suite runs against (primary + one
 * secondary, every georep service, real registries, NATS and Postgres), and
 * the clients the suites share.
 */
import { mkdir, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamManager } from "@nats-io/jetstream";
import pg from "pg";
import { createRegistryClient } from "@georep/registry-client";
import type { RegistryClient } from "@georep/registry-client";
import { startStack, stopStack } from "@georep/stack";
import type { StackDescription, StackSite } from "@georep/stack";

/** Where the stack keeps its logs (gitignored): they stay after the run for a post-mortem. */
export const ARTIFACTS = fileURLToPath(new URL("../../test-artifacts/", import.meta.url));
const STATE_DIR = join(ARTIFACTS, "stack");

/** Everything the suites share. */
export interface HostileStack {
  readonly stack: StackDescription;
  readonly primarySite: StackSite;
  readonly secondarySite: StackSite;
  /** Clients with the stack's user (pull, push, delete). */
  readonly primary: RegistryClient;
  readonly secondary: RegistryClient;
  /** The primary's NATS (REGISTRY_EVENTS and its DLQ live there). */
  readonly nc: NatsConnection;
  readonly jsm: JetStreamManager;
  readonly primaryDb: pg.Pool;
  readonly secondaryDb: pg.Pool;
  /** Lines the suites report (written to test-artifacts/hostile-report.txt and grepped for secrets). */
  readonly report: string[];
}

export async function startHostileStack(): Promise<HostileStack> {
  // Logs of a previous run would be grepped for this run's secrets: start from nothing.
  await rm(STATE_DIR, { recursive: true, force: true });
  await mkdir(STATE_DIR, { recursive: true });
  // A short backfill interval: repositories that exist on the primary without a notification
  // (blobs pushed, manifest refused) are tracked within seconds, so the tracked set settles.
  const { stack } = await startStack({ stateDir: STATE_DIR, secondaries: 1, persistent: false, serviceEnv: { LOG_LEVEL: "info", DISPATCHER_BACKFILL_INTERVAL_MS: "3000" } });
  const primarySite = stack.sites.find((s) => s.role === "primary")!;
  const secondarySite = stack.sites.find((s) => s.role === "secondary")!;
  const credentials = { type: "basic" as const, ...stack.credentials };
  const nc = await connect({ servers: primarySite.nats, name: "hostile-suite", user: "operator", pass: primarySite.nats_users.operator });
  return {
    stack,
    primarySite,
    secondarySite,
    primary: createRegistryClient({ url: primarySite.registry, credentials }),
    secondary: createRegistryClient({ url: secondarySite.registry, credentials }),
    nc,
    jsm: await jetstreamManager(nc),
    primaryDb: new pg.Pool({ connectionString: primarySite.database, max: 2 }),
    secondaryDb: new pg.Pool({ connectionString: secondarySite.database, max: 2 }),
    report: [],
  };
}

export async function stopHostileStack(h: HostileStack | undefined): Promise<void> {
  if (h !== undefined) {
    await h.nc.close().catch(() => undefined);
    await h.primaryDb.end().catch(() => undefined);
    await h.secondaryDb.end().catch(() => undefined);
  }
  await stopStack(STATE_DIR);
}

/** Polls `check` every 250 ms until it is true; throws naming `what` at the timeout. */
export async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Every georep service's `/health/ready` URL of the stack, by name. */
export function serviceHealthUrls(stack: StackDescription): Record<string, string> {
  const out: Record<string, string> = {};
  for (const site of stack.sites) {
    for (const service of ["ingest", "event_log", "dispatcher", "transfer", "status"] as const) {
      const url = site[service];
      if (url !== undefined) out[`${site.name}/${service}`] = `${url}/health/ready`;
    }
  }
  return out;
}

/** The status of every service's readiness probe (they must all be 200). */
export async function healthOfAll(stack: StackDescription): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [name, url] of Object.entries(serviceHealthUrls(stack))) {
    const res = await fetch(url).catch(() => undefined);
    await res?.body?.cancel();
    out[name] = res?.status ?? 0;
  }
  return out;
}

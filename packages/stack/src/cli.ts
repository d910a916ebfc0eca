#!/usr/bin/env node
/**
 * `georep-stack up | down | status [--dir .georep]`: the local multi-site stack.
 * `SECONDARIES=N` picks how many secondary sites `up` starts (default 1),
 * `REPLICAS=N` how many processes of each georep service (default 1).
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_SECONDARIES, readStack, stackFile, stackProcesses, startStack, stopStack } from "./stack.js";
import type { StackDescription } from "./stack.js";
import { runDemo } from "./demo.js";

const USAGE = "usage: georep-stack <up|down|status|demo> [--dir <state dir>]   (SECONDARIES=N, REPLICAS=N for up)";

async function probe(url: string): Promise<string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.body?.cancel();
    return res.status < 500 && !(url.endsWith("/health/ready") && res.status !== 200) ? "up" : `HTTP ${res.status}`;
  } catch {
    return "DOWN";
  }
}

async function printStatus(stateDir: string, stack: StackDescription): Promise<boolean> {
  let healthy = true;
  for (const site of stack.sites) {
    const registry = await probe(`${site.registry}/v2/`);
    const nats = await probe(`${site.nats_monitor}/healthz`);
    healthy &&= registry === "up" && nats === "up";
    console.log(`${site.name} (${site.role})`);
    const token = await probe(site.token_realm);
    healthy &&= token === "up";
    console.log(`  registry  ${site.registry}  [${registry}]  token auth: ${site.token_realm} (service ${site.registry_service}) [${token}]`);
    console.log(`  nats      ${site.nats}  domain ${site.nats_domain}  [${nats}]  user operator (its password: nats_users in ${stackFile(stateDir)})`);
    console.log(`  database  ${site.database}`);
    for (const [label, first] of [["ingest", site.ingest], ["event-log", site.event_log], ["dispatcher", site.dispatcher], ["transfer", site.transfer], ["status", site.status]] as const) {
      if (first === undefined) continue;
      for (const url of site.replicas?.[label] ?? [first]) {
        const state = await probe(`${url}/health/ready`);
        healthy &&= state === "up";
        console.log(`  ${label.padEnd(11)}${url}  [${state}]`);
      }
    }
  }
  const processes = await stackProcesses(stateDir);
  const down = processes.filter((p) => !p.running);
  healthy &&= down.length === 0;
  console.log(`processes: ${processes.length - down.length}/${processes.length} running${down.length ? ` (gone: ${down.map((p) => p.name).join(", ")})` : ""}`);
  console.log(`registry login: ${stack.credentials.username} / ${stack.credentials.password}`);
  console.log(`description: ${stackFile(stateDir)}   logs: ${stack.logs_dir}`);
  return healthy;
}

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({ allowPositionals: true, options: { dir: { type: "string", default: ".georep" } } });
  const command = positionals[0];
  const stateDir = resolve(values.dir);
  switch (command) {
    case "up": {
      const raw = process.env.SECONDARIES;
      const secondaries = raw === undefined || raw === "" ? DEFAULT_SECONDARIES : Number(raw);
      const rawReplicas = process.env.REPLICAS;
      const replicas = rawReplicas === undefined || rawReplicas === "" ? 1 : Number(rawReplicas);
      const { stack, reused } = await startStack({ stateDir, secondaries, replicas, onProgress: (line) => console.log(`[stack] ${line}`) });
      console.log(reused ? "[stack] already running" : `[stack] up: ${stack.sites.length} sites`);
      return (await printStatus(stateDir, stack)) ? 0 : 1;
    }
    case "down": {
      const stopped = await stopStack(stateDir, (line) => console.log(`[stack] ${line}`));
      console.log(stopped === 0 ? "[stack] nothing was running" : `[stack] stopped ${stopped} process group(s)`);
      return 0;
    }
    case "status": {
      const stack = await readStack(stateDir);
      if (stack === undefined) {
        console.log("[stack] not running (make up starts it)");
        return 1;
      }
      return (await printStatus(stateDir, stack)) ? 0 : 1;
    }
    case "demo": {
      const stack = await readStack(stateDir);
      if (stack === undefined) {
        console.error("[demo] the stack is not running (make up starts it)");
        return 1;
      }
      return (await runDemo(stack, (line) => console.log(`[demo] ${line}`))) ? 0 : 1;
    }
    default:
      console.error(command === undefined ? USAGE : `unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`[stack] error: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);

/** CPU seconds used by server processes and their descendants, read from /proc: where a benchmark spends the machine. */
import { readFileSync } from "node:fs";
import { TICKS_PER_SECOND, procStats } from "./proc.js";
import type { ProcStat } from "./proc.js";

/**
 * user + system CPU seconds of each given process with its descendants and the rest of its
 * process group (PostgreSQL's backends start sessions of their own, so descent is by parent),
 * reaped children included, keyed as given.
 */
export function groupCpuSeconds(roots: Readonly<Record<string, number>>): Record<string, number> {
  const byPid = new Map(Object.entries(roots).map(([name, pid]) => [pid, name]));
  const all = new Map<number, ProcStat>(procStats().map((p) => [p.pid, p]));
  const owner = (pid: number): string | undefined => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
      const stat = all.get(p);
      if (stat === undefined) return undefined;
      const name = byPid.get(p) ?? byPid.get(stat.pgid);
      if (name !== undefined) return name;
      p = stat.ppid;
    }
    return undefined;
  };
  const out: Record<string, number> = Object.fromEntries(Object.keys(roots).map((name) => [name, 0]));
  for (const [pid, stat] of all) {
    const name = owner(pid);
    if (name !== undefined) out[name] = (out[name] ?? 0) + stat.cpuSeconds;
  }
  return out;
}

/** The CPU seconds each entry used between two readings, rounded to 0.1 s. */
export function cpuDelta(before: Readonly<Record<string, number>>, after: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([name, s]) => [name, Math.round((s - (before[name] ?? 0)) * 10) / 10]));
}

/**
 * CPU seconds the whole machine has been busy since boot (every core, every process: the
 * `cpu` line of /proc/stat without idle and iowait). The difference of two readings over the
 * wall time between them is how many cores were in use.
 */
export function machineBusySeconds(): number {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
  const [label, user, nice, system, _idle, _iowait, irq, softirq, steal] = line.trim().split(/\s+/);
  if (label !== "cpu") throw new Error("/proc/stat does not start with the cpu line");
  return [user, nice, system, irq, softirq, steal].reduce((sum, v) => sum + Number(v ?? 0), 0) / TICKS_PER_SECOND;
}

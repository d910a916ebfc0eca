/** CPU seconds used by server processes and their descendants, read from /proc: where a benchmark spends the machine. */
import { readdirSync, readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100;

interface ProcStat {
  readonly ppid: number;
  readonly pgid: number;
  /** utime + stime + cutime + cstime, in seconds. */
  readonly cpu: number;
}

function processes(): Map<number, ProcStat> {
  const out = new Map<number, ProcStat>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited while we looked
    }
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime …
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    out.set(Number(entry), { ppid: Number(f[1]), pgid: Number(f[2]), cpu: (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICKS_PER_SECOND });
  }
  return out;
}

/**
 * user + system CPU seconds of each given process with its descendants and the rest of its
 * process group (PostgreSQL's backends start sessions of their own, so descent is by parent),
 * reaped children included, keyed as given.
 */
export function groupCpuSeconds(roots: Readonly<Record<string, number>>): Record<string, number> {
  const byPid = new Map(Object.entries(roots).map(([name, pid]) => [pid, name]));
  const all = processes();
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
    if (name !== undefined) out[name] = (out[name] ?? 0) + stat.cpu;
  }
  return out;
}

/** The CPU seconds each entry used between two readings, rounded to 0.1 s. */
export function cpuDelta(before: Readonly<Record<string, number>>, after: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([name, s]) => [name, Math.round((s - (before[name] ?? 0)) * 10) / 10]));
}

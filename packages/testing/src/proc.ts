/** The processes of this machine as /proc shows them (Linux). */
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc (USER_HZ, 100 on Linux). */
export const TICKS_PER_SECOND = 100;

/** One process's line of /proc/<pid>/stat, the fields the kit uses. */
export interface ProcStat {
  readonly pid: number;
  /** R, S, D, Z (zombie), … */
  readonly state: string;
  readonly ppid: number;
  readonly pgid: number;
  /** utime + stime + cutime + cstime (reaped children included), in seconds. */
  readonly cpuSeconds: number;
}

/** Every process readable now; one that exits while it is read is left out. */
export function procStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited while we looked
    }
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime …;
    // comm may contain spaces and parentheses.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    out.push({
      pid: Number(entry),
      state: f[0] ?? "",
      ppid: Number(f[1]),
      pgid: Number(f[2]),
      cpuSeconds: (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICKS_PER_SECOND,
    });
  }
  return out;
}

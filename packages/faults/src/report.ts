/**
 * The suite's report (issue 9, "Report"): each fault test appends one JSON
 * line to a file the global setup created; the global teardown prints them
 * as a table.
 */
import { appendFile, readFile } from "node:fs/promises";

/** One fault's row. */
export interface FaultRow {
  readonly fault: string;
  /** Tags pushed to the primary during the test (each a distinct image). */
  readonly pushed: number;
  /** Of those, tags the secondary serves with the same digest and complete content at the end. */
  readonly replicated: number;
  readonly lost: number;
  /** Violations the background checker saw on the secondary during the fault. */
  readonly incompleteVisible: number;
  /** From the end of the fault to everything replicated; null when it never was. */
  readonly recoverySeconds: number | null;
  /** Checker rounds during the test (how closely it watched). */
  readonly checkerRounds: number;
  readonly notes: string;
}

/** The environment variable naming the report file (set by the global setup for the test workers). */
export const REPORT_FILE_ENV = "GEOREP_FAULTS_REPORT_FILE";

/** Appends a row to the report file, when the suite runs with one. */
export async function recordRow(row: FaultRow): Promise<void> {
  const file = process.env[REPORT_FILE_ENV];
  if (file === undefined || file === "") return;
  await appendFile(file, `${JSON.stringify(row)}\n`);
}

/** Reads every row of a report file (none when it does not exist). */
export async function readRows(file: string): Promise<FaultRow[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as FaultRow);
}

/** The rows as a fixed-width table, then each fault's notes. */
export function renderTable(rows: readonly FaultRow[]): string {
  const header = ["fault", "images pushed", "replicated", "lost", "incomplete-visible", "recovery", "checker rounds"];
  const cells = rows.map((r) => [
    r.fault,
    String(r.pushed),
    String(r.replicated),
    String(r.lost),
    String(r.incompleteVisible),
    r.recoverySeconds === null ? "never" : `${r.recoverySeconds.toFixed(1)} s`,
    String(r.checkerRounds),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (values: readonly string[]) => `| ${values.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  const notes = rows.filter((r) => r.notes !== "").map((r) => `- ${r.fault}: ${r.notes}`);
  return [line(header), rule, ...cells.map(line), ...(notes.length > 0 ? ["", ...notes] : [])].join("\n");
}

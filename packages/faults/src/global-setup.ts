/**
 * vitest global setup of the fault suite: a fresh report file for the test
 * workers (they inherit the environment), printed as a table at the end.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPORT_FILE_ENV, readRows, renderTable } from "./report.js";

export default async function setup(): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), "georep-faults-report-"));
  const file = join(dir, "report.jsonl");
  process.env[REPORT_FILE_ENV] = file;
  return async () => {
    const rows = await readRows(file);
    await rm(dir, { recursive: true, force: true });
    process.stdout.write(`\nFault suite report (${rows.length} fault${rows.length === 1 ? "" : "s"})\n\n${rows.length > 0 ? renderTable(rows) : "(no fault ran)"}\n\n`);
  };
}

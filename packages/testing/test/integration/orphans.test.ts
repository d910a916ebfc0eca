/**
 * No orphans: a test process that dies without stopping its servers (here:
 * SIGKILL, the worst case) leaves no server process and no temp dir behind.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { groupAlive } from "../../src/internal.js";

const kit = fileURLToPath(new URL("../../dist/index.js", import.meta.url));

const SCRIPT = `
const { startNats, startPostgres, startRegistry } = await import(process.argv[1]);
const [n, p, r] = await Promise.all([startNats(), startPostgres({ existingUrl: undefined }), startRegistry()]);
console.log(JSON.stringify({ pids: [n.pid, p.pid, r.pid], dirs: [n.dir, p.dir, r.dir] }));
setInterval(() => {}, 1000);
`;

async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("cleanup when the test process dies", () => {
  it.each(["SIGKILL", "SIGTERM"] as const)("a process killed with %s leaves no server and no dir", async (signal) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", SCRIPT, kit], { stdio: ["ignore", "pipe", "inherit"] });
    const started = await new Promise<{ pids: number[]; dirs: string[] }>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
        if (out.includes("\n")) resolve(JSON.parse(out) as { pids: number[]; dirs: string[] });
      });
      child.once("exit", (code) => reject(new Error(`child exited early with ${code}`)));
    });
    expect(started.pids.every(groupAlive)).toBe(true);
    expect(started.dirs.every((d) => existsSync(d))).toBe(true);

    child.kill(signal);
    await until("servers gone", () => started.pids.every((pid) => !groupAlive(pid)));
    await until("dirs removed", () => started.dirs.every((d) => !existsSync(d)));
  });
});

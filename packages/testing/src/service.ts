/**
 * A georep service's `dist/main.js` run as its own process, as deployed: the
 * `main.test.ts` of each service starts it with an environment, reads its
 * output and waits for its exit code.
 */
import { execFile, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

/** One run of a service's main. */
export interface ServiceRun {
  readonly child: ChildProcess;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** The exit code (null when ended by a signal). */
  readonly exited: Promise<number | null>;
}

/** The main of one service package. */
export interface ServiceMain {
  readonly root: string;
  readonly mainJs: string;
  /** Builds `dist/` when it is missing or older than a source file (turbo's `test` builds first anyway). */
  ensureBuilt(): Promise<void>;
  /** Starts `node dist/main.js` with only `PATH` and `env` in its environment. */
  run(env: Readonly<Record<string, string>>): ServiceRun;
  /** SIGKILLs every run still alive (for `afterAll`). */
  killAll(): void;
}

/** Newest modification time under `dir` (files and folders, recursively). */
function newest(dir: string): number {
  let max = statSync(dir).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    max = Math.max(max, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return max;
}

/** The service package whose root is `packageRoot` (e.g. `new URL("../..", import.meta.url)` from `test/integration`). */
export function serviceMain(packageRoot: string | URL): ServiceMain {
  const root = typeof packageRoot === "string" ? packageRoot : fileURLToPath(packageRoot);
  const mainJs = join(root, "dist", "main.js");
  const children: ChildProcess[] = [];
  return {
    root,
    mainJs,
    async ensureBuilt() {
      let built = 0;
      try {
        built = statSync(mainJs).mtimeMs;
      } catch {
        // not built yet
      }
      if (built >= newest(join(root, "src"))) return;
      const tsc = createRequire(join(root, "package.json")).resolve("typescript/bin/tsc");
      await promisify(execFile)(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { cwd: root });
    },
    run(env) {
      const child = spawn(process.execPath, [mainJs], { cwd: root, env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
      children.push(child);
      let out = "";
      let err = "";
      child.stdout?.on("data", (c: Buffer) => (out += c.toString()));
      child.stderr?.on("data", (c: Buffer) => (err += c.toString()));
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      return { child, stdout: () => out, stderr: () => err, exited };
    },
    killAll() {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

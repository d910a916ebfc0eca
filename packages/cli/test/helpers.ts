/** Test helpers: a text stream that records what is written, and running the CLI in-process. */
import type { TextStream } from "../src/commands/context.js";
import { run } from "../src/run.js";

/** A stream that keeps what was written. */
export class Capture implements TextStream {
  text = "";
  constructor(
    readonly isTTY = false,
    readonly columns = 80,
  ) {}
  write(text: string): boolean {
    this.text += text;
    return true;
  }
}

/** Runs `georep ARGV` in this process and returns the exit code and both outputs. */
export async function runCli(argv: string[], options: { env?: Record<string, string | undefined>; cwd?: string } = {}) {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await run({ argv, env: options.env ?? {}, cwd: options.cwd ?? process.cwd(), stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

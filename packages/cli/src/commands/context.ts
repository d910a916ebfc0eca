/** What every command gets: the client of the chosen status service and where to print. */
import type { StatusClient } from "../client.js";
import type { OutputSettings, Target } from "../config.js";
import type { Palette, ProgressStream } from "../render.js";

/** A writable text stream (process.stdout, or a buffer in tests). */
export interface TextStream extends ProgressStream {
  write(text: string): unknown;
}

/** Where and how a command prints. */
export interface Output {
  readonly stdout: TextStream;
  readonly stderr: TextStream;
  readonly settings: OutputSettings;
  readonly colors: Palette;
}

/** A command's dependencies. */
export interface Context {
  readonly client: StatusClient;
  readonly target: Target;
  readonly out: Output;
}

/** Prints a value as indented JSON on stdout (the `--json` output). */
export const printJson = (out: Output, value: unknown): void => {
  out.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
};

/** Where the command talked to: `secondary-1 (http://127.0.0.1:1234)` or the URL. */
export const describeTarget = (target: Target): string => (target.site === undefined ? target.url : `${target.site} (${target.url})`);

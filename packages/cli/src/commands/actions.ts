/** Admin actions: `georep resync NAME | --all | --failed`, `georep pause`, `georep resume`. */
import type { Command } from "../args.js";
import { EXIT_CODES } from "../errors.js";
import type { ExitCode } from "../errors.js";
import { describeTarget, printJson } from "./context.js";
import type { Context } from "./context.js";

/** Queues resyncs; `--json`: the API's `{"accepted": N}`. */
export async function runResync(ctx: Context, command: Extract<Command, { name: "resync" }>): Promise<ExitCode> {
  const { target } = command;
  const result = "repository" in target ? await ctx.client.resyncRepository(target.repository) : await ctx.client.resync(target.scope);
  if (ctx.out.settings.json) {
    printJson(ctx.out, result);
    return EXIT_CODES.ok;
  }
  const what = "repository" in target ? target.repository : target.scope === "all" ? "every repository" : "the failed repositories";
  ctx.out.stdout.write(`resync of ${what} accepted on ${describeTarget(ctx.target)}: ${result.accepted} ${result.accepted === 1 ? "repository" : "repositories"} queued\n`);
  return EXIT_CODES.ok;
}

/** Pauses or resumes replication; `--json`: the API's `{"paused": bool}`. */
export async function runPauseResume(ctx: Context, command: Extract<Command, { name: "pause" | "resume" }>): Promise<ExitCode> {
  const result = command.name === "pause" ? await ctx.client.pause() : await ctx.client.resume();
  if (ctx.out.settings.json) printJson(ctx.out, result);
  else ctx.out.stdout.write(`replication ${result.paused ? "paused" : "running"} on ${describeTarget(ctx.target)}\n`);
  return EXIT_CODES.ok;
}

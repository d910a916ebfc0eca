/** `georep wait REPO[:TAG|@DIGEST] [--timeout S]`: blocks until the site serves that content; exit 2 at the timeout. */
import type { Command } from "../args.js";
import { EXIT_CODES } from "../errors.js";
import type { ExitCode } from "../errors.js";
import { formatWaitReference } from "../ref.js";
import { formatDuration } from "../render.js";
import { describeTarget, printJson } from "./context.js";
import type { Context } from "./context.js";

/**
 * Waits; `--json`: the API's answer. A `408 timeout` from the service
 * surfaces as an ApiError whose exit code is {@link EXIT_CODES.timeout}.
 */
export async function runWait(ctx: Context, command: Extract<Command, { name: "wait" }>): Promise<ExitCode> {
  const result = await ctx.client.waitForReplication({ ...command.reference, timeoutSeconds: command.timeoutSeconds });
  if (ctx.out.settings.json) printJson(ctx.out, result);
  else ctx.out.stdout.write(`${formatWaitReference(command.reference)} is replicated on ${describeTarget(ctx.target)} as ${result.digest} (waited ${formatDuration(result.waited_ms)})\n`);
  return EXIT_CODES.ok;
}

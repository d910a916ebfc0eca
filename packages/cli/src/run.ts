/**
 * One invocation of `georep`: parse the command line, resolve the status
 * service, run the command, turn any error into its message and exit code.
 * Takes its environment as arguments so tests can run it in-process.
 */
import { COMMANDS, parseCommandLine } from "./args.js";
import { createStatusClient } from "./client.js";
import { outputSettings, resolveTarget } from "./config.js";
import { runPauseResume, runResync } from "./commands/actions.js";
import type { Context, Output, TextStream } from "./commands/context.js";
import { runKeysGenerate } from "./commands/keys.js";
import { runRepo } from "./commands/repo.js";
import { runRepos } from "./commands/repos.js";
import { runStatus } from "./commands/status.js";
import { runVerify } from "./commands/verify.js";
import { runWait } from "./commands/wait.js";
import { ApiError, CliError, EXIT_CODES, exitCodeOf } from "./errors.js";
import type { ExitCode } from "./errors.js";
import { commandHelp, mainHelp } from "./help.js";
import { palette } from "./render.js";

/** What `run` needs from the process. */
export interface RunEnvironment {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  readonly stdout: TextStream;
  readonly stderr: TextStream;
}

/**
 * Prints an error on stderr: `georep: message` and a hint line, or with
 * `--json` one JSON object `{code, message}` (the service's own for API errors).
 */
export function reportError(error: unknown, stderr: TextStream, json: boolean): void {
  if (json) {
    const body =
      error instanceof ApiError
        ? { code: error.code, message: error.serviceMessage }
        : error instanceof CliError
          ? { code: error.code, message: error.message, ...(error.hint === undefined ? {} : { hint: error.hint }) }
          : { code: "internal", message: error instanceof Error ? error.message : String(error) };
    stderr.write(`${JSON.stringify(body)}\n`);
    return;
  }
  if (error instanceof CliError) {
    stderr.write(`georep: ${error.message}\n${error.hint === undefined ? "" : `hint: ${error.hint}\n`}`);
    return;
  }
  // Not one of ours: a bug; the stack helps whoever reports it.
  stderr.write(`georep: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
}

/** Runs one command line and returns the exit code. Never throws. */
export async function run(environment: RunEnvironment): Promise<ExitCode> {
  const { stdout, stderr } = environment;
  let json = environment.argv.includes("--json");
  try {
    const { global, command } = parseCommandLine(environment.argv);
    json = global.json;
    const settings = outputSettings({ json, stdoutIsTTY: stdout.isTTY === true, env: environment.env });
    const out: Output = { stdout, stderr, settings, colors: palette(settings.color) };
    if (command.name === "help") {
      stdout.write(command.topic === undefined ? mainHelp() : commandHelp(command.topic));
      return EXIT_CODES.ok;
    }
    if (command.name === "keys-generate") return await runKeysGenerate(out, command, environment.cwd);

    const target = await resolveTarget({ global, defaultRole: COMMANDS[command.name].defaultRole, cwd: environment.cwd, env: environment.env });
    const client = createStatusClient({ url: target.url, ...(target.token === undefined ? {} : { token: target.token, tokenSource: target.tokenSource }) });
    const ctx: Context = { client, target, out };
    switch (command.name) {
      case "status":
        return await runStatus(ctx);
      case "repos":
        return await runRepos(ctx, command);
      case "repo":
        return await runRepo(ctx, command);
      case "resync":
        return await runResync(ctx, command);
      case "pause":
      case "resume":
        return await runPauseResume(ctx, command);
      case "verify":
        return await runVerify(ctx, command);
      case "wait":
        return await runWait(ctx, command);
    }
  } catch (error) {
    reportError(error, stderr, json);
    return exitCodeOf(error);
  }
}

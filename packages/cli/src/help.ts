/** The text of `georep --help` and `georep COMMAND --help`. */
import { COMMANDS, GLOBAL_OPTIONS } from "./args.js";
import type { CommandName } from "./args.js";
import { EXIT_CODES } from "./errors.js";

interface OptionLike {
  readonly type: "string" | "boolean";
  readonly short?: string;
  readonly value?: string;
  readonly description: string;
}

const optionLines = (options: Readonly<Record<string, OptionLike>>): string[] => {
  const rows = Object.entries(options).map(([name, o]) => [`${o.short === undefined ? "" : `-${o.short}, `}--${name}${o.value === undefined ? "" : ` ${o.value}`}`, o.description] as const);
  const width = Math.max(0, ...rows.map(([flag]) => flag.length));
  return rows.map(([flag, description]) => `  ${flag.padEnd(width)}  ${description}`);
};

/** Exit codes, as documented in the README too. */
export const EXIT_CODE_HELP: readonly (readonly [number, string])[] = [
  [EXIT_CODES.ok, "ok"],
  [EXIT_CODES.failure, "verify found drifted, failed or uncompared repositories; or another failure (API error, bad stack.json)"],
  [EXIT_CODES.timeout, "wait: not replicated before the timeout"],
  [EXIT_CODES.usage, "usage error: unknown command or option, bad value, bad repository name or reference"],
  [EXIT_CODES.unreachable, "the status service is unreachable (the message names the URL)"],
  [EXIT_CODES.auth, "authentication refused: the admin token is missing (401) or wrong (403)"],
];

/** `georep --help`. */
export function mainHelp(): string {
  return [
    "georep: inspect and steer georep replication through a site's status service",
    "",
    "usage: georep [options] COMMAND [ARGS]",
    "",
    "commands:",
    ...Object.values(COMMANDS).flatMap((c) => [`  ${c.usage}`, `      ${c.summary}`]),
    "",
    "options:",
    ...optionLines(GLOBAL_OPTIONS),
    "",
    "Without --url the status URL comes from .georep/stack.json (the local stack),",
    "searched from the current directory upwards: the first secondary by default,",
    "the primary for status. Admin commands (resync, pause, resume) need the token.",
    "Colours only when stdout is a terminal and NO_COLOR is not set.",
    "",
    "exit codes:",
    ...EXIT_CODE_HELP.map(([code, text]) => `  ${code}  ${text}`),
    "",
  ].join("\n");
}

/** `georep COMMAND --help`. */
export function commandHelp(name: CommandName): string {
  const command = COMMANDS[name];
  const own = Object.keys(command.options).length === 0 ? [] : ["", "options:", ...optionLines(command.options)];
  return [`usage: georep ${command.usage} [global options]`, "", command.summary, ...own, "", "global options:", ...optionLines(GLOBAL_OPTIONS), ""].join("\n");
}

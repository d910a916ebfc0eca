/**
 * The command line: global options, one command, its options and
 * positionals, validated into an {@link Invocation}. Pure (no I/O); every
 * problem is a {@link UsageError} naming it, with a hint.
 */
import { parseArgs } from "node:util";
import { UsageError } from "./errors.js";
import { parseRepositoryName, parseWaitReference } from "./ref.js";
import type { WaitReference } from "./ref.js";

/** Tracking states the repository list can filter on. */
export const SYNC_STATES = ["pending", "started", "synced", "failed"] as const;
/** One of {@link SYNC_STATES}. */
export type SyncState = (typeof SYNC_STATES)[number];

/** Key algorithms `keys generate` offers (those of `@georep/jwt`). */
export const KEY_ALGORITHMS = ["ES256", "RS256"] as const;
/** One of {@link KEY_ALGORITHMS}. */
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

/** `wait --timeout` default and bounds, in seconds (the contract's 1..600, default 30). */
export const DEFAULT_WAIT_TIMEOUT_SECONDS = 30;
export const MAX_WAIT_TIMEOUT_SECONDS = 600;
/** Where `keys generate` writes without `--out`. */
export const DEFAULT_KEYS_DIR = "georep-keys";
/** Longest `repos --name` substring the service accepts. */
export const MAX_NAME_FILTER_LENGTH = 255;

type OptionType = "string" | "boolean";
interface OptionSpec {
  readonly type: OptionType;
  readonly short?: string;
  /** `--name VALUE` placeholder in help, for string options. */
  readonly value?: string;
  readonly description: string;
}

/** Options every command takes. */
export const GLOBAL_OPTIONS = {
  url: { type: "string", value: "URL", description: "status service base URL (default: from .georep/stack.json)" },
  site: { type: "string", value: "NAME", description: "site of stack.json to talk to (default: the first secondary; the primary for status)" },
  token: { type: "string", value: "TOKEN", description: "admin token for resync/pause/resume (default: $GEOREP_ADMIN_TOKEN, then stack.json)" },
  json: { type: "boolean", description: "print the API's JSON instead of tables" },
  "stack-file": { type: "string", value: "PATH", description: "stack description to read (default: .georep/stack.json here or in a parent directory)" },
  help: { type: "boolean", short: "h", description: "show help" },
} as const satisfies Record<string, OptionSpec>;

/** Which site a command talks to by default. */
export type DefaultRole = "primary" | "secondary" | "none";

/** A command: its usage line, summary, options and positionals. */
export interface CommandSpec {
  readonly name: string;
  readonly usage: string;
  readonly summary: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  readonly defaultRole: DefaultRole;
}

/** Every command, in help order. */
export const COMMANDS = {
  status: { name: "status", usage: "status", summary: "this site's summary and every site's health, counts and lag", options: {}, defaultRole: "primary" },
  repos: {
    name: "repos",
    usage: "repos [--state STATE] [--name TEXT] [--limit N]",
    summary: "list tracked repositories (every page, or the first N)",
    options: {
      state: { type: "string", value: "STATE", description: `only repositories in this state (${SYNC_STATES.join("|")})` },
      name: { type: "string", value: "TEXT", description: "only names containing TEXT (case-sensitive)" },
      limit: { type: "string", value: "N", description: "list at most N repositories" },
    },
    defaultRole: "secondary",
  },
  repo: { name: "repo", usage: "repo NAME", summary: "one repository: state, tags on both sides (drift marked), last failure, recent syncs", options: {}, defaultRole: "secondary" },
  resync: {
    name: "resync",
    usage: "resync NAME | --all | --failed",
    summary: "queue a full resync of one repository, of all, or of the failed ones (admin)",
    options: {
      all: { type: "boolean", description: "resync every tracked repository" },
      failed: { type: "boolean", description: "resync the repositories in state failed" },
    },
    defaultRole: "secondary",
  },
  pause: { name: "pause", usage: "pause", summary: "stop dispatching and copying on the site; events are still recorded (admin)", options: {}, defaultRole: "secondary" },
  resume: { name: "resume", usage: "resume", summary: "resume replication on the site (admin)", options: {}, defaultRole: "secondary" },
  verify: {
    name: "verify",
    usage: "verify [NAME]",
    summary: "compare primary and secondary digests per tag now, for NAME or every repository; exit 1 on drift or failure",
    options: {},
    defaultRole: "secondary",
  },
  wait: {
    name: "wait",
    usage: "wait REPO[:TAG|@DIGEST] [--timeout S]",
    summary: `wait until the site serves that content (tag default latest); exit 2 at the timeout`,
    options: { timeout: { type: "string", value: "S", description: `seconds to wait, 1..${MAX_WAIT_TIMEOUT_SECONDS} (default ${DEFAULT_WAIT_TIMEOUT_SECONDS})` } },
    defaultRole: "secondary",
  },
  keys: {
    name: "keys",
    usage: "keys generate [--out DIR] [--algorithm ES256|RS256] [--force]",
    summary: "write a new token signing key and its self-signed certificate (offline)",
    options: {
      out: { type: "string", value: "DIR", description: `directory for key.pem and cert.pem (default ./${DEFAULT_KEYS_DIR})` },
      algorithm: { type: "string", value: "ALG", description: `${KEY_ALGORITHMS.join(" or ")} (default ES256)` },
      force: { type: "boolean", description: "overwrite existing key.pem and cert.pem" },
    },
    defaultRole: "none",
  },
} as const satisfies Record<string, CommandSpec>;

/** One of the {@link COMMANDS}' names. */
export type CommandName = keyof typeof COMMANDS;

/** Global options, validated. */
export interface GlobalOptions {
  readonly url: string | undefined;
  readonly site: string | undefined;
  readonly token: string | undefined;
  readonly json: boolean;
  readonly stackFile: string | undefined;
}

/** What to do, validated. */
export type Command =
  | { readonly name: "help"; readonly topic: CommandName | undefined }
  | { readonly name: "status" }
  | { readonly name: "repos"; readonly state: SyncState | undefined; readonly nameFilter: string | undefined; readonly limit: number | undefined }
  | { readonly name: "repo"; readonly repository: string }
  | { readonly name: "resync"; readonly target: { readonly repository: string } | { readonly scope: "all" | "failed" } }
  | { readonly name: "pause" }
  | { readonly name: "resume" }
  | { readonly name: "verify"; readonly repository: string | undefined }
  | { readonly name: "wait"; readonly reference: WaitReference; readonly timeoutSeconds: number }
  | { readonly name: "keys-generate"; readonly out: string; readonly algorithm: KeyAlgorithm; readonly force: boolean };

/** A parsed command line. */
export interface Invocation {
  readonly global: GlobalOptions;
  readonly command: Command;
}

type Values = Readonly<Record<string, string | boolean | undefined>>;

const isCommand = (name: string): name is CommandName => Object.hasOwn(COMMANDS, name);

const allOptions = (): Record<string, { type: OptionType; short?: string }> => {
  const out: Record<string, { type: OptionType; short?: string }> = {};
  const specs: readonly Readonly<Record<string, OptionSpec>>[] = [GLOBAL_OPTIONS, ...Object.values(COMMANDS).map((c): Readonly<Record<string, OptionSpec>> => c.options)];
  for (const spec of specs) {
    for (const [name, option] of Object.entries(spec)) out[name] = { type: option.type, ...(option.short === undefined ? {} : { short: option.short }) };
  }
  return out;
};

/**
 * Splits the command line into options and positionals with node's
 * tokenizer, then checks every option against what `command` accepts (the
 * tokenizer alone would accept anything with `strict: false`, and its strict
 * messages do not name the command).
 */
function tokenize(argv: readonly string[]): { positionals: string[]; values: Record<string, string | boolean>; options: { name: string; raw: string }[] } {
  const { tokens } = parseArgs({ args: [...argv], options: allOptions(), strict: false, allowPositionals: true, tokens: true });
  const types = allOptions();
  const positionals: string[] = [];
  const values: Record<string, string | boolean> = {};
  const options: { name: string; raw: string }[] = [];
  for (const token of tokens) {
    if (token.kind === "positional") positionals.push(token.value);
    if (token.kind !== "option") continue;
    options.push({ name: token.name, raw: token.rawName });
    const type = types[token.name]?.type;
    if (type === "string") {
      // Without strict mode the tokenizer takes the next argument whatever it is: `--limit --json` is a missing value.
      if (token.value === undefined || (!token.inlineValue && token.value.startsWith("--"))) {
        throw new UsageError(`option ${token.rawName} needs a value`, { hint: "e.g. --limit 20 or --limit=20" });
      }
      values[token.name] = token.value;
    } else {
      if (token.inlineValue) throw new UsageError(`option ${token.rawName} takes no value`, { hint: `write ${token.rawName} alone` });
      values[token.name] = true;
    }
  }
  return { positionals, values, options };
}

function checkOptions(command: CommandName | undefined, options: { name: string; raw: string }[]): void {
  const allowed = new Set([...Object.keys(GLOBAL_OPTIONS), ...(command === undefined ? [] : Object.keys(COMMANDS[command].options))]);
  for (const option of options) {
    if (allowed.has(option.name)) continue;
    const owner = Object.values(COMMANDS).find((c) => Object.hasOwn(c.options, option.name));
    if (command === undefined) throw new UsageError(`unknown option ${option.raw}`, { hint: "georep --help lists the commands and global options" });
    throw new UsageError(
      owner === undefined ? `unknown option ${option.raw} for "georep ${command}"` : `option ${option.raw} belongs to "georep ${owner.name}", not "georep ${command}"`,
      { hint: `georep ${command} --help lists its options` },
    );
  }
}

const str = (values: Values, name: string): string | undefined => {
  const value = values[name];
  return typeof value === "string" ? value : undefined;
};

/** Parses a whole number within bounds, or throws a UsageError naming the option. */
export function parseInteger(option: string, raw: string, min: number, max: number): number {
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`${option} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function positionalCount(command: CommandName, positionals: readonly string[], min: number, max: number, what = "an argument"): void {
  if (positionals.length < min) throw new UsageError(`"georep ${command}" needs ${what}`, { hint: `usage: georep ${COMMANDS[command].usage}` });
  if (positionals.length > max) {
    throw new UsageError(`unexpected argument "${positionals[max]}" for "georep ${command}"`, { hint: `usage: georep ${COMMANDS[command].usage}` });
  }
}

function buildCommand(name: CommandName, positionals: readonly string[], values: Values): Command {
  switch (name) {
    case "status":
    case "pause":
    case "resume":
      positionalCount(name, positionals, 0, 0);
      return { name };
    case "repos": {
      positionalCount(name, positionals, 0, 0);
      const state = str(values, "state");
      if (state !== undefined && !(SYNC_STATES as readonly string[]).includes(state)) {
        throw new UsageError(`--state must be one of ${SYNC_STATES.join(", ")}, got "${state}"`);
      }
      const nameFilter = str(values, "name");
      if (nameFilter !== undefined && (nameFilter === "" || nameFilter.length > MAX_NAME_FILTER_LENGTH)) {
        throw new UsageError(`--name must be 1 to ${MAX_NAME_FILTER_LENGTH} characters`);
      }
      const limit = str(values, "limit");
      return { name, state: state as SyncState | undefined, nameFilter, limit: limit === undefined ? undefined : parseInteger("--limit", limit, 1, Number.MAX_SAFE_INTEGER) };
    }
    case "repo":
      positionalCount(name, positionals, 1, 1, "a repository NAME");
      return { name, repository: parseRepositoryName(positionals[0]!) };
    case "resync": {
      positionalCount(name, positionals, 0, 1);
      const chosen = [positionals[0] === undefined ? [] : ["NAME"], values.all === true ? ["--all"] : [], values.failed === true ? ["--failed"] : []].flat();
      if (chosen.length !== 1) {
        throw new UsageError(chosen.length === 0 ? '"georep resync" needs NAME, --all or --failed' : `"georep resync" takes one of NAME, --all, --failed; got ${chosen.join(" and ")}`, {
          hint: `usage: georep ${COMMANDS.resync.usage}`,
        });
      }
      if (positionals[0] !== undefined) return { name, target: { repository: parseRepositoryName(positionals[0]) } };
      return { name, target: { scope: values.all === true ? "all" : "failed" } };
    }
    case "verify":
      positionalCount(name, positionals, 0, 1);
      return { name, repository: positionals[0] === undefined ? undefined : parseRepositoryName(positionals[0]) };
    case "wait": {
      positionalCount(name, positionals, 1, 1, "REPO[:TAG|@DIGEST]");
      const timeout = str(values, "timeout");
      return {
        name,
        reference: parseWaitReference(positionals[0]!),
        timeoutSeconds: timeout === undefined ? DEFAULT_WAIT_TIMEOUT_SECONDS : parseInteger("--timeout", timeout, 1, MAX_WAIT_TIMEOUT_SECONDS),
      };
    }
    case "keys": {
      if (positionals[0] !== "generate") {
        throw new UsageError(positionals[0] === undefined ? '"georep keys" needs a subcommand' : `unknown subcommand "keys ${positionals[0]}"`, { hint: `usage: georep ${COMMANDS.keys.usage}` });
      }
      positionalCount(name, positionals, 1, 1);
      const algorithm = str(values, "algorithm") ?? "ES256";
      if (!(KEY_ALGORITHMS as readonly string[]).includes(algorithm)) throw new UsageError(`--algorithm must be ${KEY_ALGORITHMS.join(" or ")}, got "${algorithm}"`);
      return { name: "keys-generate", out: str(values, "out") ?? DEFAULT_KEYS_DIR, algorithm: algorithm as KeyAlgorithm, force: values.force === true };
    }
  }
}

/**
 * Parses the arguments after `georep`. `--help` anywhere (or `help [COMMAND]`)
 * asks for help, even next to otherwise bad input.
 * @throws UsageError for an unknown command or option, a missing or bad value, a bad name or reference.
 */
export function parseCommandLine(argv: readonly string[]): Invocation {
  const { positionals, values, options } = tokenize(argv);
  const [first, ...rest] = positionals;
  const command = first !== undefined && isCommand(first) ? first : undefined;
  const global: GlobalOptions = {
    url: str(values, "url"),
    site: str(values, "site"),
    token: str(values, "token"),
    json: values.json === true,
    stackFile: str(values, "stack-file"),
  };
  if (values.help === true || first === "help") {
    const topic = first === "help" ? rest[0] : first;
    if (topic !== undefined && !isCommand(topic)) throw new UsageError(`unknown command "${topic}"`, { hint: `commands: ${Object.keys(COMMANDS).join(", ")}` });
    return { global, command: { name: "help", topic } };
  }
  if (first === undefined) checkOptions(undefined, options);
  if (first === undefined) throw new UsageError("no command given", { hint: "georep --help lists the commands" });
  if (command === undefined) throw new UsageError(`unknown command "${first}"`, { hint: `commands: ${Object.keys(COMMANDS).join(", ")} (georep --help)` });
  checkOptions(command, options);
  if (global.url !== undefined && global.site !== undefined) throw new UsageError("--url and --site both choose the service; give one of them");
  if (global.url !== undefined && !/^https?:\/\/[^/]/.test(global.url)) {
    throw new UsageError(`--url must be an http:// or https:// URL, got "${global.url}"`, { hint: "e.g. --url http://127.0.0.1:8080" });
  }
  return { global, command: buildCommand(command, rest, values) };
}

/**
 * Where the CLI talks to and how it prints: the global flags, the
 * environment (`GEOREP_ADMIN_TOKEN`, `NO_COLOR`) and `.georep/stack.json`
 * (the local stack's description, `StackDescription` of `@georep/stack`).
 * The only module that reads the environment.
 */
import { readFile, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { DefaultRole, GlobalOptions } from "./args.js";
import { ConfigError, UsageError } from "./errors.js";
import type { TokenSource } from "./errors.js";

/** Where `make up` writes the stack description, relative to the checkout. */
export const STACK_FILE = join(".georep", "stack.json");
/** Environment variable holding the admin token. */
export const TOKEN_ENV = "GEOREP_ADMIN_TOKEN";

/** The part of a stack.json site the CLI uses. */
export interface StackSite {
  readonly name: string;
  readonly role: "primary" | "secondary";
  /** Base URL of the site's status service (absent in stacks started before it existed). */
  readonly status: string | undefined;
}

/** The part of stack.json the CLI uses. */
export interface StackFile {
  readonly path: string;
  readonly sites: readonly StackSite[];
  readonly adminToken: string | undefined;
}

/** The status service to call and the token for admin calls. */
export interface Target {
  /** Base URL without a trailing slash. */
  readonly url: string;
  /** The stack.json site, when the URL came from there. */
  readonly site: string | undefined;
  readonly token: string | undefined;
  readonly tokenSource: TokenSource;
}

/** How output looks. */
export interface OutputSettings {
  /** ANSI colours: stdout is a terminal and `NO_COLOR` is unset or empty (no-color.org). */
  readonly color: boolean;
  readonly json: boolean;
}

const exists = async (path: string) => (await stat(path).catch(() => undefined))?.isFile() === true;

/** The nearest `.georep/stack.json` in `startDir` or a parent directory, or `undefined`. */
export async function findStackFile(startDir: string): Promise<string | undefined> {
  for (let dir = resolve(startDir); ; dir = dirname(dir)) {
    const candidate = join(dir, STACK_FILE);
    if (await exists(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Checks the parsed content of a stack file and keeps what the CLI needs.
 * @throws ConfigError naming the first problem.
 */
export function parseStackFile(path: string, content: unknown): StackFile {
  const fail = (problem: string): never => {
    throw new ConfigError(`${path}: ${problem}`, { hint: "it is written by make up; restart the stack (make down && make up) or pass --url" });
  };
  if (!isRecord(content)) return fail("not a JSON object");
  if (!Array.isArray(content.sites)) return fail('"sites" is not an array');
  const sites = content.sites.map((site: unknown, i): StackSite => {
    if (!isRecord(site) || typeof site.name !== "string") return fail(`sites[${i}] has no "name"`);
    if (site.role !== "primary" && site.role !== "secondary") return fail(`sites[${i}] ("${site.name}") has role ${JSON.stringify(site.role)}, not primary or secondary`);
    if (site.status !== undefined && typeof site.status !== "string") return fail(`sites[${i}] ("${site.name}") has a non-string "status"`);
    return { name: site.name, role: site.role, status: site.status };
  });
  const adminToken = typeof content.admin_token === "string" && content.admin_token !== "" ? content.admin_token : undefined;
  return { path, sites, adminToken };
}

/**
 * Reads and checks a stack file.
 * @throws UsageError when an explicitly named file does not exist; ConfigError when it is unreadable or malformed.
 */
export async function readStackFile(path: string): Promise<StackFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") throw new UsageError(`stack file ${path} does not exist`, { hint: "make up writes .georep/stack.json; or pass --url", cause });
    throw new ConfigError(`cannot read stack file ${path}: ${(cause as Error).message}`, { cause });
  }
  let content: unknown;
  try {
    content = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`${path} is not JSON: ${(cause as Error).message}`, { cause });
  }
  return parseStackFile(path, content);
}

/**
 * Picks the site: `--site NAME`, else the first secondary (or the primary
 * for `defaultRole: "primary"`).
 * @throws UsageError for an unknown `--site`; ConfigError when the site has no status URL or there is no site of the role.
 */
export function pickSite(stack: StackFile, siteName: string | undefined, defaultRole: DefaultRole): StackSite & { readonly status: string } {
  const site = siteName === undefined ? stack.sites.find((s) => s.role === (defaultRole === "primary" ? "primary" : "secondary")) : stack.sites.find((s) => s.name === siteName);
  if (site === undefined) {
    if (siteName !== undefined) throw new UsageError(`unknown site "${siteName}" in ${stack.path}`, { hint: `sites: ${stack.sites.map((s) => s.name).join(", ") || "none"}` });
    throw new ConfigError(`${stack.path} has no ${defaultRole === "primary" ? "primary" : "secondary"} site`, { hint: "pick one with --site NAME, or pass --url" });
  }
  if (site.status === undefined) {
    throw new ConfigError(`site "${site.name}" in ${stack.path} has no status service URL`, { hint: "the stack was started before the status service existed: make down && make up" });
  }
  return { ...site, status: site.status };
}

const trimSlash = (url: string) => url.replace(/\/+$/, "");

/**
 * Resolves the status service URL and the admin token:
 * - URL: `--url`, else the picked site of the stack file (`--stack-file`, or
 *   the nearest `.georep/stack.json` from `cwd` upwards).
 * - token: `--token`, else `$GEOREP_ADMIN_TOKEN`, else stack.json's
 *   `admin_token` when the URL came from that file.
 * @throws UsageError when there is no URL to use.
 */
export async function resolveTarget(options: { global: GlobalOptions; defaultRole: DefaultRole; cwd: string; env: Readonly<Record<string, string | undefined>> }): Promise<Target> {
  const { global, env } = options;
  const envToken = env[TOKEN_ENV] === "" ? undefined : env[TOKEN_ENV];
  const explicitToken = global.token !== undefined ? { token: global.token, tokenSource: "flag" as const } : envToken !== undefined ? { token: envToken, tokenSource: "env" as const } : undefined;
  if (global.url !== undefined) {
    return Object.freeze({ url: trimSlash(global.url), site: undefined, ...(explicitToken ?? { token: undefined, tokenSource: "none" as const }) });
  }
  const path = global.stackFile === undefined ? await findStackFile(options.cwd) : resolve(options.cwd, global.stackFile);
  if (path === undefined) {
    throw new UsageError(`no status service URL: --url is not given and there is no ${STACK_FILE} in ${options.cwd} or above`, {
      hint: "pass --url http://HOST:PORT, --stack-file PATH, or start the local stack (make up)",
    });
  }
  const stack = await readStackFile(path);
  const site = pickSite(stack, global.site, options.defaultRole);
  const token = explicitToken ?? (stack.adminToken === undefined ? { token: undefined, tokenSource: "none" as const } : { token: stack.adminToken, tokenSource: "stack" as const });
  return Object.freeze({ url: trimSlash(site.status), site: site.name, ...token });
}

/** Colours and JSON mode. */
export function outputSettings(options: { json: boolean; stdoutIsTTY: boolean; env: Readonly<Record<string, string | undefined>> }): OutputSettings {
  const noColor = options.env.NO_COLOR !== undefined && options.env.NO_COLOR !== "";
  return Object.freeze({ json: options.json, color: options.stdoutIsTTY && !noColor && !options.json });
}

/**
 * The config loader: the one place that reads the environment.
 */
import { readFileSync } from "node:fs";
import type { Static, TObject, TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { compile, problemsOf } from "@georep/schema";
import { ConfigError } from "./errors.js";
import type { ConfigProblem } from "./errors.js";

/** An environment: variable name → value (`process.env` by default). */
export type Env = Readonly<Record<string, string | undefined>>;

/** Suffix of the variables that name a file holding another variable's value. */
export const FILE_SUFFIX = "_FILE";

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /** Reads a `<NAME>_FILE` path; defaults to `fs.readFileSync(path, "utf8")`. */
  readonly readFile?: (path: string) => string;
}

/**
 * Coerces one string to the type its schema declares. Only exact spellings
 * convert (`"2.5"` is not an integer, `"yes"` is not a boolean); anything
 * else is left as a string so validation reports it.
 */
function coerce(schema: TSchema | undefined, value: string): unknown {
  const type = (schema as { type?: unknown } | undefined)?.type;
  switch (type) {
    case "integer":
      return /^[+-]?\d+$/.test(value) ? Number(value) : value;
    case "number":
      return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(value) ? Number(value) : value;
    case "boolean":
      if (/^(true|1)$/i.test(value)) return true;
      if (/^(false|0)$/i.test(value)) return false;
      return value;
    default:
      return value;
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Reads the variables named by the properties of `schema` from `env`,
 * coerces strings to the declared numbers and booleans (exact spellings
 * only: integers `-?\d+`, booleans `true|false|1|0`), applies defaults,
 * and validates.
 *
 * - Any variable `X` may instead be given as `X_FILE`, a path whose content
 *   (trimmed) is the value: the usual way to pass secrets. Setting both is
 *   a problem.
 * - An empty variable counts as unset (so `X=` falls back to the default).
 * - Variables the schema does not name are ignored.
 *
 * @returns a deeply frozen object typed by the schema.
 * @throws {ConfigError} listing EVERY problem (variable name and what is
 * wrong; never the offending value, which may be a secret).
 */
export function loadConfig<T extends TObject>(
  schema: T,
  env: Env = process.env,
  options: LoadConfigOptions = {},
): Readonly<Static<T>> {
  const readFile = options.readFile ?? ((path: string) => readFileSync(path, "utf8"));
  const problems: ConfigProblem[] = [];
  const raw: Record<string, unknown> = {};
  // Variables whose problem is already reported (a bad _FILE) are not
  // reported again as "required".
  const reported = new Set<string>();

  for (const name of Object.keys(schema.properties)) {
    const direct = env[name];
    const fileVar = `${name}${FILE_SUFFIX}`;
    const file = env[fileVar];
    const hasDirect = direct !== undefined && direct !== "";
    const hasFile = file !== undefined && file !== "";
    if (hasDirect && hasFile) {
      problems.push({ variable: name, message: `set either ${name} or ${fileVar}, not both` });
      reported.add(name);
      continue;
    }
    if (hasFile) {
      let content: string;
      try {
        content = readFile(file).trim();
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        problems.push({
          variable: fileVar,
          message: `cannot read ${JSON.stringify(file)}${typeof code === "string" ? ` (${code})` : ""}`,
        });
        reported.add(name);
        continue;
      }
      if (content === "") {
        problems.push({ variable: fileVar, message: `file ${JSON.stringify(file)} is empty` });
        reported.add(name);
        continue;
      }
      raw[name] = coerce(schema.properties[name], content);
    } else if (hasDirect) {
      raw[name] = coerce(schema.properties[name], direct);
    }
  }

  const converted: unknown = Value.Default(schema, raw);
  for (const problem of problemsOf(compile(schema), converted)) {
    const variable = problem.path.replace(/^\//, "").split("/")[0] ?? problem.path;
    if (reported.has(variable)) continue;
    const message =
      problem.message === "required" ? `required: set ${variable} or ${variable}${FILE_SUFFIX}` : problem.message;
    problems.push({ variable: variable === "" ? "(environment)" : variable, message });
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(converted as Static<T>);
}

/**
 * Validation with compiled TypeBox checkers. Each schema is compiled once
 * (on first use) and cached by identity.
 */
import { TypeCompiler } from "@sinclair/typebox/compiler";
import type { TypeCheck } from "@sinclair/typebox/compiler";
import type { Static, TSchema } from "@sinclair/typebox";
import { ValueErrorType } from "@sinclair/typebox/errors";
import type { ValueError } from "@sinclair/typebox/errors";
import { ValidationError } from "./errors.js";
import type { Problem } from "./errors.js";

/** The outcome of {@link validate}: the typed value, or every problem found. */
export type ValidationResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly problems: readonly Problem[] };

const cache = new WeakMap<TSchema, TypeCheck<TSchema>>();

/** The compiled checker for `schema` (compiled on first call, then cached). */
export function compile<T extends TSchema>(schema: T): TypeCheck<T> {
  let check = cache.get(schema);
  if (check === undefined) {
    check = TypeCompiler.Compile(schema);
    cache.set(schema, check);
  }
  return check as TypeCheck<T>;
}

/** At most this many problems are reported for one value. */
export const MAX_PROBLEMS = 50;

function describe(error: ValueError): string {
  const s = error.schema as { anyOf?: { const?: unknown }[]; pattern?: string; title?: string };
  if (error.type === ValueErrorType.Union && Array.isArray(s.anyOf) && s.anyOf.every((m) => m.const !== undefined)) {
    return `expected one of: ${s.anyOf.map((m) => String(m.const)).join(", ")}`;
  }
  if (error.type === ValueErrorType.StringPattern && s.title !== undefined) {
    return `not a valid ${s.title} (must match ${s.pattern ?? "?"})`;
  }
  if (error.type === ValueErrorType.ObjectRequiredProperty) return "required";
  if (error.type === ValueErrorType.ObjectAdditionalProperties) return "unknown property";
  return error.message;
}

/** Every problem of `value` against a compiled checker, one per path, in document order. */
export function problemsOf(check: TypeCheck<TSchema>, value: unknown): Problem[] {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  for (const error of check.Errors(value)) {
    // A required property yields both "required" and "expected <type>" at the
    // same path; report the first, most specific, one only.
    if (seen.has(error.path)) continue;
    seen.add(error.path);
    problems.push({ path: error.path, message: describe(error) });
    if (problems.length >= MAX_PROBLEMS) break;
  }
  return problems;
}

/**
 * Checks `value` against `schema` without modifying it.
 *
 * @returns `{ ok: true, value }` typed as the schema's static type, or
 * `{ ok: false, problems }` with a JSON-pointer path and a message per problem.
 */
export function validate<T extends TSchema>(schema: T, value: unknown): ValidationResult<Static<T>> {
  const check = compile(schema);
  if (check.Check(value)) return { ok: true, value };
  return { ok: false, problems: problemsOf(check, value) };
}

function schemaName(schema: TSchema): string | undefined {
  const s = schema as { $id?: unknown; title?: unknown };
  if (typeof s.$id === "string") return s.$id;
  if (typeof s.title === "string") return s.title;
  return undefined;
}

/**
 * Like {@link validate}, but returns the typed value or throws.
 *
 * @throws {ValidationError} listing every problem.
 */
export function assertValid<T extends TSchema>(schema: T, value: unknown): Static<T> {
  const result = validate(schema, value);
  if (result.ok) return result.value;
  const name = schemaName(schema);
  throw new ValidationError(result.problems, name === undefined ? {} : { schemaId: name });
}

const textDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses a JSON message payload (a NATS message's `data` or a string) and
 * validates it. Bad UTF-8 and bad JSON are reported as a problem at the
 * root, so a consumer can `term()` a poison message with one code path.
 */
export function decodeJson<T extends TSchema>(schema: T, data: Uint8Array | string): ValidationResult<Static<T>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof data === "string" ? data : textDecoder.decode(data));
  } catch (err) {
    return { ok: false, problems: [{ path: "", message: `not JSON: ${err instanceof Error ? err.message : String(err)}` }] };
  }
  return validate(schema, parsed);
}

const textEncoder = new TextEncoder();

/**
 * Validates `value` and serialises it as UTF-8 JSON, for publishing.
 *
 * @throws {ValidationError} when the value does not match: georep never publishes a payload its consumers would reject.
 */
export function encodeJson<T extends TSchema>(schema: T, value: Static<T>): Uint8Array {
  return textEncoder.encode(JSON.stringify(assertValid(schema, value)));
}

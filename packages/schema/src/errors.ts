/**
 * Errors raised by `@georep/schema`. Every class carries a stable `code` that
 * callers may match on; messages are for humans and may change.
 */

/** Stable error codes of this package. */
export const SCHEMA_ERROR_CODES = {
  validation: "SCHEMA_ERR_VALIDATION",
  subject: "SCHEMA_ERR_SUBJECT",
} as const;

/** One of {@link SCHEMA_ERROR_CODES}. */
export type SchemaErrorCode = (typeof SCHEMA_ERROR_CODES)[keyof typeof SCHEMA_ERROR_CODES];

/** One thing wrong with a value: where (JSON pointer, `""` for the root) and what. */
export interface Problem {
  /** JSON pointer to the offending value, e.g. `/events/0/target/repository`. */
  readonly path: string;
  /** What is wrong, in words. */
  readonly message: string;
}

/** A value did not match its schema; `problems` lists every mismatch found. */
export class ValidationError extends Error {
  override readonly name = "ValidationError";
  readonly code = SCHEMA_ERROR_CODES.validation;
  readonly problems: readonly Problem[];
  /** Which schema (its `$id` or `title`) the value was checked against, when known. */
  readonly schemaId: string | undefined;

  constructor(problems: readonly Problem[], options: { schemaId?: string; cause?: unknown } = {}) {
    const what = options.schemaId ?? "value";
    const lines = problems.map((p) => `${p.path === "" ? "(root)" : p.path}: ${p.message}`);
    super(`invalid ${what}: ${lines.join("; ")}`, { cause: options.cause });
    this.problems = problems;
    this.schemaId = options.schemaId;
  }
}

/** A subject or subject token could not be built or decoded (bad site name, bad encoding). */
export class SubjectError extends Error {
  override readonly name = "SubjectError";
  readonly code = SCHEMA_ERROR_CODES.subject;
  /** The input that was refused. */
  readonly input: string;

  constructor(message: string, input: string) {
    super(message);
    this.input = input;
  }
}

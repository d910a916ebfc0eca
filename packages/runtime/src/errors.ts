/**
 * Errors raised by `@georep/runtime`. Every class carries a stable `code`;
 * the original error, when there is one, is in `cause`.
 */

/** Stable error codes of this package. */
export const RUNTIME_ERROR_CODES = {
  config: "RUNTIME_ERR_CONFIG",
  migration: "RUNTIME_ERR_MIGRATION",
  stream: "RUNTIME_ERR_STREAM",
  nats: "RUNTIME_ERR_NATS",
  http: "RUNTIME_ERR_HTTP",
} as const;

/** One of {@link RUNTIME_ERROR_CODES}. */
export type RuntimeErrorCode = (typeof RUNTIME_ERROR_CODES)[keyof typeof RUNTIME_ERROR_CODES];

/** One problem with the environment: the variable and what is wrong with it. */
export interface ConfigProblem {
  /** The environment variable, e.g. `HTTP_PORT` or `DATABASE_URL_FILE`. */
  readonly variable: string;
  /** What is wrong (never the value itself, which may be a secret). */
  readonly message: string;
}

/** The environment does not satisfy the service's config schema; `problems` lists every problem at once. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly code = RUNTIME_ERROR_CODES.config;
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const n = problems.length;
    super(
      `invalid configuration (${n} problem${n === 1 ? "" : "s"}):\n` +
        problems.map((p) => `  ${p.variable}: ${p.message}`).join("\n"),
    );
    this.problems = problems;
  }
}

/**
 * A database migration failed; `migration` names it when known. Pending
 * migrations run in one transaction, so none of the failed run is applied.
 */
export class MigrationError extends Error {
  override readonly name = "MigrationError";
  readonly code = RUNTIME_ERROR_CODES.migration;
  /** The migration that failed, if the failure was inside one. */
  readonly migration: string | undefined;

  constructor(message: string, options: { migration?: string; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.migration = options.migration;
  }
}

/** A JetStream stream could not be created or updated (e.g. an immutable setting such as retention changed). */
export class StreamConfigError extends Error {
  override readonly name = "StreamConfigError";
  readonly code = RUNTIME_ERROR_CODES.stream;
  readonly stream: string;

  constructor(stream: string, message: string, options: { cause?: unknown } = {}) {
    super(`stream ${stream}: ${message}`, { cause: options.cause });
    this.stream = stream;
  }
}

/** Connecting to NATS failed before the first connection (e.g. unreadable credentials). */
export class NatsConnectError extends Error {
  override readonly name = "NatsConnectError";
  readonly code = RUNTIME_ERROR_CODES.nats;

  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
  }
}

/**
 * An error a route handler throws to answer with a specific status.
 * {@link createHttpErrorHandler} turns it into `{statusCode, code, error, message}`;
 * `message` is shown to the client even for 5xx (unlike unexpected errors).
 */
export class HttpError extends Error {
  override readonly name = "HttpError";
  readonly statusCode: number;
  readonly code: string;

  constructor(statusCode: number, code: string, message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.statusCode = statusCode;
    this.code = code;
  }
}

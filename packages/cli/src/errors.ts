/**
 * Errors of the georep CLI. Each class carries the exit code the process
 * ends with, a stable `code` (the status service's own code for API errors)
 * and the original error in `cause`; messages are for humans.
 */

/** Exit codes scripts can rely on (documented in `georep --help` and the README). */
export const EXIT_CODES = {
  ok: 0,
  /** `verify` found drifted or failed repositories, or any other failure (API error, bad stack.json…). */
  failure: 1,
  /** `wait`: the content was not replicated before the timeout. */
  timeout: 2,
  /** Unknown command or option, bad value, bad reference. */
  usage: 3,
  /** The status service could not be reached (or did not answer in time). */
  unreachable: 4,
  /** The status service refused the admin token (401 missing, 403 wrong). */
  auth: 5,
} as const;

/** One of {@link EXIT_CODES}. */
export type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES];

/** Base class of every error the CLI reports; `main` prints `message` (and `hint`) and exits with `exitCode`. */
export abstract class CliError extends Error {
  abstract readonly exitCode: ExitCode;
  abstract readonly code: string;
  /** A second line telling the user what to do about it. */
  readonly hint: string | undefined;

  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.hint = options.hint;
  }
}

/** The command line is wrong: unknown command or option, missing or bad value, bad reference. */
export class UsageError extends CliError {
  override readonly name = "UsageError";
  readonly exitCode = EXIT_CODES.usage;
  readonly code = "usage";
}

/** The CLI's own configuration (stack.json) is unusable. */
export class ConfigError extends CliError {
  override readonly name = "ConfigError";
  readonly exitCode = EXIT_CODES.failure;
  readonly code = "config";
}

/** The status service did not answer: connection refused, DNS failure, or no answer within the request timeout. */
export class UnreachableError extends CliError {
  override readonly name = "UnreachableError";
  readonly exitCode = EXIT_CODES.unreachable;
  readonly code = "unreachable";
  /** The URL that was requested. */
  readonly url: string;

  constructor(url: string, reason: string, cause?: unknown) {
    super(`status service unreachable at ${url}: ${reason}`, { cause, hint: "check --url / --site, or that the stack runs (make status)" });
    this.url = url;
  }
}

/** Where the admin token came from; named in authentication errors. */
export const TOKEN_SOURCES = { flag: "--token", env: "GEOREP_ADMIN_TOKEN", stack: "stack.json admin_token", none: "none" } as const;

/** One of {@link TOKEN_SOURCES}' keys. */
export type TokenSource = keyof typeof TOKEN_SOURCES;

/** The status service refused an admin call: 401 (no token sent) or 403 (wrong token). */
export class AuthError extends CliError {
  override readonly name = "AuthError";
  readonly exitCode = EXIT_CODES.auth;
  readonly code: "unauthorized" | "forbidden";
  readonly status: 401 | 403;
  readonly url: string;

  constructor(options: { status: 401 | 403; url: string; tokenSource: TokenSource; serviceMessage: string | undefined }) {
    const said = options.serviceMessage === undefined ? "" : ` (${options.serviceMessage})`;
    const message =
      options.status === 401
        ? `authentication refused by ${options.url}: the admin token is missing${said}`
        : `authentication refused by ${options.url}: the admin token from ${TOKEN_SOURCES[options.tokenSource]} is wrong${said}`;
    super(message, {
      hint: options.status === 401 ? "pass --token TOKEN or set GEOREP_ADMIN_TOKEN" : "check the token against the service's STATUS_ADMIN_TOKEN",
    });
    this.status = options.status;
    this.code = options.status === 401 ? "unauthorized" : "forbidden";
    this.url = options.url;
  }
}

/**
 * The status service answered with an error body `{code, message}` (any
 * 4xx/5xx other than 401/403). A `408 timeout` from the replication wait
 * exits with {@link EXIT_CODES.timeout}.
 */
export class ApiError extends CliError {
  override readonly name = "ApiError";
  readonly exitCode: ExitCode;
  /** The service's `code`, e.g. `not_found`, `wrong_role`, `invalid_request`. */
  readonly code: string;
  readonly status: number;
  readonly url: string;
  /** The service's `message`, unchanged. */
  readonly serviceMessage: string;

  constructor(options: { status: number; code: string; message: string; url: string }) {
    super(`${options.message} [${options.code}, HTTP ${options.status}]`);
    this.status = options.status;
    this.code = options.code;
    this.serviceMessage = options.message;
    this.url = options.url;
    this.exitCode = options.status === 408 ? EXIT_CODES.timeout : EXIT_CODES.failure;
  }
}

/** The answer is not what the contract says (not JSON, wrong shape): probably not a status service at that URL. */
export class ResponseError extends CliError {
  override readonly name = "ResponseError";
  readonly exitCode = EXIT_CODES.failure;
  readonly code = "bad_response";
  readonly url: string;
  readonly status: number;

  constructor(url: string, status: number, problem: string) {
    super(`unexpected answer from ${url} (HTTP ${status}): ${problem}`, { hint: "is this the status service's base URL?" });
    this.url = url;
    this.status = status;
  }
}

/** `keys generate` could not write the key material (exists already, unwritable directory). */
export class KeysError extends CliError {
  override readonly name = "KeysError";
  readonly exitCode = EXIT_CODES.failure;
  readonly code = "keys";
}

/** Exit code for anything thrown: a {@link CliError}'s own, {@link EXIT_CODES.failure} for the rest (bugs included). */
export function exitCodeOf(error: unknown): ExitCode {
  return error instanceof CliError ? error.exitCode : EXIT_CODES.failure;
}

/**
 * Errors raised by `@georep/registry-client`. Every class carries a stable
 * `code`, the repository and digest it concerns when known (and names them
 * in its message), and the original error, when there is one, in `cause`.
 */
import { isRecord } from "./json.js";

/** Stable error codes of this package. */
export const REGISTRY_ERROR_CODES = {
  invalidReference: "REGISTRY_ERR_INVALID_REFERENCE",
  invalidManifest: "REGISTRY_ERR_INVALID_MANIFEST",
  digestMismatch: "REGISTRY_ERR_DIGEST_MISMATCH",
  sizeMismatch: "REGISTRY_ERR_SIZE_MISMATCH",
  http: "REGISTRY_ERR_HTTP",
  auth: "REGISTRY_ERR_AUTH",
  network: "REGISTRY_ERR_NETWORK",
  timeout: "REGISTRY_ERR_TIMEOUT",
  tooLarge: "REGISTRY_ERR_TOO_LARGE",
  unsupported: "REGISTRY_ERR_UNSUPPORTED",
} as const;

/** One of {@link REGISTRY_ERROR_CODES}. */
export type RegistryErrorCode = (typeof REGISTRY_ERROR_CODES)[keyof typeof REGISTRY_ERROR_CODES];

/**
 * The error codes a registry puts in an error body
 * (OCI distribution-spec, "Error Codes").
 */
export const OCI_ERROR_CODES = {
  BLOB_UNKNOWN: "BLOB_UNKNOWN",
  BLOB_UPLOAD_INVALID: "BLOB_UPLOAD_INVALID",
  BLOB_UPLOAD_UNKNOWN: "BLOB_UPLOAD_UNKNOWN",
  DIGEST_INVALID: "DIGEST_INVALID",
  MANIFEST_BLOB_UNKNOWN: "MANIFEST_BLOB_UNKNOWN",
  MANIFEST_INVALID: "MANIFEST_INVALID",
  MANIFEST_UNKNOWN: "MANIFEST_UNKNOWN",
  NAME_INVALID: "NAME_INVALID",
  NAME_UNKNOWN: "NAME_UNKNOWN",
  SIZE_INVALID: "SIZE_INVALID",
  UNAUTHORIZED: "UNAUTHORIZED",
  DENIED: "DENIED",
  UNSUPPORTED: "UNSUPPORTED",
  TOOMANYREQUESTS: "TOOMANYREQUESTS",
} as const;

/** One of {@link OCI_ERROR_CODES}. */
export type OciErrorCode = (typeof OCI_ERROR_CODES)[keyof typeof OCI_ERROR_CODES];

/**
 * A code from a registry error body. Registries also send codes outside the
 * spec (e.g. `TAG_INVALID`), so any string is accepted; the spec's codes
 * still autocomplete.
 */
export type OciErrorCodeLike = OciErrorCode | (string & {});

/** Structured context every {@link RegistryError} may carry. */
export interface RegistryErrorOptions {
  /** Repository path (without the registry host), e.g. `library/alpine`. */
  readonly repository?: string | undefined;
  /** Digest of the manifest or blob concerned. */
  readonly digest?: string | undefined;
  /** HTTP status of the response that caused the error. */
  readonly status?: number | undefined;
  /** OCI error code from the registry's error body. */
  readonly ociCode?: OciErrorCodeLike | undefined;
  readonly cause?: unknown;
}

/** Base class of every error this package raises. */
export class RegistryError extends Error {
  override readonly name: string = "RegistryError";
  readonly code: RegistryErrorCode;
  readonly repository: string | undefined;
  readonly digest: string | undefined;
  readonly status: number | undefined;
  readonly ociCode: OciErrorCodeLike | undefined;

  constructor(code: RegistryErrorCode, message: string, options: RegistryErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.repository = options.repository;
    this.digest = options.digest;
    this.status = options.status;
    this.ociCode = options.ociCode;
  }
}

/** `repo@digest`, `repo`, `digest` or "" for message prefixes. */
function subjectOf(repository: string | undefined, digest: string | undefined): string {
  if (repository !== undefined && digest !== undefined) return `${repository}@${digest}`;
  return repository ?? digest ?? "";
}

/** A reference, repository name, tag or digest string does not follow the distribution grammar. */
export class InvalidReferenceError extends RegistryError {
  override readonly name: string = "InvalidReferenceError";
  /** The string that failed to parse. */
  readonly input: string;

  /** `problem` says what is wrong, e.g. `repository name must be lowercase`. */
  constructor(input: string, problem: string, options: RegistryErrorOptions = {}) {
    super(REGISTRY_ERROR_CODES.invalidReference, `invalid reference ${JSON.stringify(input)}: ${problem}`, options);
    this.input = input;
  }
}

/** A manifest is not valid JSON, has an unsupported media type, or holds an invalid descriptor. */
export class InvalidManifestError extends RegistryError {
  override readonly name: string = "InvalidManifestError";

  /** `problem` says what is wrong, e.g. `layers[1].size must be a non-negative integer`. */
  constructor(problem: string, options: RegistryErrorOptions = {}) {
    const subject = subjectOf(options.repository, options.digest);
    super(REGISTRY_ERROR_CODES.invalidManifest, `invalid manifest${subject ? ` ${subject}` : ""}: ${problem}`, options);
  }
}

/** Content does not hash to the digest it was fetched or pushed by. `digest` is the expected one. */
export class DigestMismatchError extends RegistryError {
  override readonly name: string = "DigestMismatchError";
  readonly expected: string;
  readonly actual: string;

  constructor(expected: string, actual: string, options: Omit<RegistryErrorOptions, "digest"> = {}) {
    const where = options.repository === undefined ? "" : ` in ${options.repository}`;
    super(
      REGISTRY_ERROR_CODES.digestMismatch,
      `digest mismatch${where}: expected ${expected}, content hashes to ${actual}`,
      { ...options, digest: expected },
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/** Content is not the size its descriptor announced. */
export class SizeMismatchError extends RegistryError {
  override readonly name: string = "SizeMismatchError";
  readonly expected: number;
  readonly actual: number;

  constructor(expected: number, actual: number, options: RegistryErrorOptions = {}) {
    const subject = subjectOf(options.repository, options.digest);
    super(
      REGISTRY_ERROR_CODES.sizeMismatch,
      `size mismatch${subject ? ` for ${subject}` : ""}: expected ${expected} bytes, got ${actual}`,
      options,
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/** What {@link RegistryHttpError} is built from. */
export interface RegistryHttpErrorInit {
  readonly method: string;
  /** Request URL; userinfo, query and fragment are removed before it is stored (signed blob URLs carry secrets). */
  readonly url: string;
  readonly status: number;
  /** First OCI error code of the body, if any. */
  readonly ociCode?: OciErrorCodeLike | undefined;
  /** The registry's own message (first entry of the error body), shown in the error message. */
  readonly registryMessage?: string | undefined;
  /** Every entry of the error body. */
  readonly ociErrors?: readonly OciErrorEntry[] | undefined;
  /** Defaults to {@link isRetryableStatus}(status) or a `TOOMANYREQUESTS` code. */
  readonly retryable?: boolean | undefined;
  /** From `Retry-After`, see {@link parseRetryAfter}. */
  readonly retryAfterMs?: number | undefined;
  readonly repository?: string | undefined;
  readonly digest?: string | undefined;
  readonly cause?: unknown;
}

/** The registry answered with an unexpected HTTP status. */
export class RegistryHttpError extends RegistryError {
  override readonly name: string = "RegistryHttpError";
  override readonly status: number;
  readonly method: string;
  /** Request URL without userinfo, query or fragment. */
  readonly url: string;
  /** True when the same request may succeed later (429, 5xx gateway/unavailable, 408). */
  readonly retryable: boolean;
  /** How long the registry asked us to wait, when it said. */
  readonly retryAfterMs: number | undefined;
  /** Every entry of the registry's error body (empty when it had none or was not JSON). */
  readonly ociErrors: readonly OciErrorEntry[];

  constructor(init: RegistryHttpErrorInit) {
    const url = redactUrl(init.url);
    const subject = subjectOf(init.repository, init.digest);
    const detail = [init.ociCode, init.registryMessage].filter((s) => s !== undefined && s !== "").join(": ");
    super(
      REGISTRY_ERROR_CODES.http,
      `${subject ? `${subject}: ` : ""}${init.method} ${url} answered ${init.status}${detail ? ` ${detail}` : ""}`,
      init,
    );
    this.status = init.status;
    this.method = init.method;
    this.url = url;
    this.retryable =
      init.retryable ?? (isRetryableStatus(init.status) || init.ociCode === OCI_ERROR_CODES.TOOMANYREQUESTS);
    this.retryAfterMs = init.retryAfterMs;
    this.ociErrors = init.ociErrors ?? [];
  }
}

/** The registry refused our credentials (401) or denied the operation (403). */
export class AuthError extends RegistryHttpError {
  override readonly name: string = "AuthError";
  override readonly code: RegistryErrorCode = REGISTRY_ERROR_CODES.auth;
  /** The `WWW-Authenticate` challenge of a 401, when sent. */
  readonly challenge: string | undefined;

  constructor(init: RegistryHttpErrorInit & { readonly challenge?: string | undefined }) {
    super(init);
    this.challenge = init.challenge;
  }
}

/** HTTP statuses worth retrying with backoff. 501 and other 5xx mean the request itself is unsupported or broken. */
const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

/** Whether a response with this status may succeed when retried later. */
export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUSES.has(status);
}

/** One entry of a registry error body `{"errors": [{code, message, detail}]}`. */
export interface OciErrorEntry {
  readonly code: OciErrorCodeLike;
  /** "" when the registry sent none. */
  readonly message: string;
  /** Free-form; whatever the registry put there. */
  readonly detail: unknown;
}

/**
 * Parses a registry error body (distribution-spec "Error Codes"). Never
 * throws: a body that is not JSON, or JSON without an `errors` array (proxies,
 * HTML error pages, `{"errors": null}`), yields `[]`; entries without a
 * string `code` are skipped.
 */
export function parseOciErrorBody(text: string): OciErrorEntry[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return [];
  }
  if (!isRecord(body) || !Array.isArray(body.errors)) return [];
  const entries: OciErrorEntry[] = [];
  for (const entry of body.errors as unknown[]) {
    if (!isRecord(entry) || typeof entry.code !== "string") continue;
    entries.push({
      code: entry.code,
      message: typeof entry.message === "string" ? entry.message : "",
      detail: entry.detail,
    });
  }
  return entries;
}

/**
 * Milliseconds to wait from a `Retry-After` header: delta-seconds or an
 * HTTP-date (RFC 9110 §10.2.3). A date in the past gives 0; anything else
 * unparseable gives `undefined`.
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // Date.parse would accept "1.5" or "-3" as dates; an HTTP-date always has letters.
  if (!/[a-z]/i.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** A failed response, as the transport sees it. */
export interface FailedResponse {
  readonly method: string;
  readonly url: string;
  readonly status: number;
  /** Response headers with lower-case names (undici's `IncomingHttpHeaders` fits). */
  readonly headers?: Readonly<Record<string, string | string[] | undefined>> | undefined;
  /** Response body text, if read. */
  readonly body?: string | undefined;
  readonly repository?: string | undefined;
  readonly digest?: string | undefined;
  /** Clock for an HTTP-date `Retry-After`; defaults to `Date.now()`. */
  readonly now?: number | undefined;
}

/**
 * Maps a failed response to its error, so the transport does it in one
 * place: {@link AuthError} for 401/403, {@link RegistryHttpError} otherwise,
 * with the OCI code and message from the body and `Retry-After` honoured.
 */
export function errorFromResponse(response: FailedResponse): RegistryHttpError {
  const ociErrors = response.body === undefined ? [] : parseOciErrorBody(response.body);
  const first = ociErrors[0];
  const init: RegistryHttpErrorInit = {
    method: response.method,
    url: response.url,
    status: response.status,
    ociCode: first?.code,
    registryMessage: first?.message,
    ociErrors,
    retryAfterMs: parseRetryAfter(header(response.headers, "retry-after"), response.now),
    repository: response.repository,
    digest: response.digest,
  };
  if (response.status === 401 || response.status === 403) {
    return new AuthError({ ...init, challenge: header(response.headers, "www-authenticate") });
  }
  return new RegistryHttpError(init);
}

function header(
  headers: Readonly<Record<string, string | string[] | undefined>> | undefined,
  name: string,
): string | undefined {
  const value = headers?.[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Drops userinfo, query and fragment: presigned storage URLs carry credentials in the query. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    // A relative upload Location, say: cut at the first "?" or "#".
    return url.replace(/[?#].*$/s, "");
  }
}

/**
 * The connection failed before a complete response (refused, reset, closed
 * mid-body, timed out). Retryable: nothing says the registry acted on it.
 */
export class NetworkError extends RegistryError {
  override readonly name: string = "NetworkError";
  readonly method: string;
  readonly url: string;
  /** The undici / Node error code (ECONNRESET, UND_ERR_SOCKET, …). */
  readonly causeCode: string | undefined;

  constructor(init: { method: string; url: string; cause: unknown; repository?: string | undefined; digest?: string | undefined; timeout?: boolean }) {
    const causeCode = (init.cause as { code?: unknown } | undefined)?.code;
    const what = init.cause instanceof Error ? init.cause.message : String(init.cause);
    super(
      init.timeout === true ? REGISTRY_ERROR_CODES.timeout : REGISTRY_ERROR_CODES.network,
      `${init.method} ${redactUrl(init.url)} failed: ${what}${typeof causeCode === "string" ? ` (${causeCode})` : ""}`,
      { repository: init.repository, digest: init.digest, cause: init.cause },
    );
    this.method = init.method;
    this.url = redactUrl(init.url);
    this.causeCode = typeof causeCode === "string" ? causeCode : undefined;
  }
}

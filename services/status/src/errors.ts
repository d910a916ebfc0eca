/**
 * The status API's errors: the contract's snake_case codes (docs/status-api.md),
 * raised as the runtime's {@link HttpError} so the one error handler answers
 * them, and the translation of what is not one (fastify's validation errors,
 * Postgres and NATS failures) into them.
 */
import { STATUS_CODES } from "node:http";
import { HttpError } from "@georep/runtime";
import type { FastifyError } from "fastify";

/** The `code` of every error answer the contract names. */
export const STATUS_ERROR_CODES = {
  invalidRequest: "invalid_request",
  unauthorized: "unauthorized",
  forbidden: "forbidden",
  notFound: "not_found",
  wrongRole: "wrong_role",
  timeout: "timeout",
  unavailable: "unavailable",
  internal: "internal_error",
} as const;

/** One of {@link STATUS_ERROR_CODES}. */
export type StatusErrorCode = (typeof STATUS_ERROR_CODES)[keyof typeof STATUS_ERROR_CODES];

/** 400 `invalid_request`; the message names the offending field. */
export const invalidRequest = (message: string): HttpError => new HttpError(400, STATUS_ERROR_CODES.invalidRequest, message);
/** 404 `not_found`. */
export const notFound = (message: string): HttpError => new HttpError(404, STATUS_ERROR_CODES.notFound, message);
/** 409 `wrong_role`. */
export const wrongRole = (message: string): HttpError => new HttpError(409, STATUS_ERROR_CODES.wrongRole, message);
/** 503 `unavailable`: a dependency (Postgres, NATS, a registry) cannot answer now. */
export const unavailable = (message: string, cause?: unknown): HttpError =>
  new HttpError(503, STATUS_ERROR_CODES.unavailable, message, cause === undefined ? {} : { cause });

/** SQLSTATEs that mean "the database cannot answer now", not "the query is wrong". */
const UNAVAILABLE_SQLSTATE = /^(08|53|57P0[1-4])/;
/** Node socket errors. */
const NETWORK_CODES: ReadonlySet<string> = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"]);
/** Messages of node-postgres and its pool that carry no code. */
const PG_CONNECTION_MESSAGES = [
  "Connection terminated",
  "timeout exceeded when trying to connect",
  "Client has encountered a connection error",
  "Cannot use a pool after calling end on the pool",
];
/** NATS client errors (by class name: the connection is down, closed or draining). */
const NATS_UNAVAILABLE_NAMES: ReadonlySet<string> = new Set(["ClosedConnectionError", "DrainingConnectionError", "ConnectionError", "TimeoutError"]);

/** `undefined_table`: the table is not there (yet): the owning service has not migrated. */
const UNDEFINED_TABLE = "42P01";

/**
 * The 503 an error of Postgres or NATS amounts to, or `undefined` when it is
 * something else (a bug, which stays a 500).
 */
export function unavailableFrom(error: unknown): HttpError | undefined {
  if (error instanceof HttpError) return undefined;
  const err = error as { code?: unknown; message?: unknown; name?: unknown; errors?: unknown } | null;
  if (err === null || typeof err !== "object") return undefined;
  const code = typeof err.code === "string" ? err.code : "";
  const message = typeof err.message === "string" ? err.message : "";
  if (code === UNDEFINED_TABLE) return unavailable(`the database is not ready: ${message}`, error);
  if (/^[0-9A-Z]{5}$/.test(code) && UNAVAILABLE_SQLSTATE.test(code)) return unavailable(`Postgres is unavailable: ${message}`, error);
  if (NETWORK_CODES.has(code)) return unavailable(`a dependency is unreachable (${code})`, error);
  if (PG_CONNECTION_MESSAGES.some((m) => message.includes(m))) return unavailable(`Postgres is unavailable: ${message}`, error);
  if (typeof err.name === "string" && NATS_UNAVAILABLE_NAMES.has(err.name)) return unavailable(`NATS is unavailable: ${message}`, error);
  return undefined;
}

/** Turns an ajv error as fastify reports it into "<where> field "<name>" <what>". */
function describeValidation(error: FastifyError): string {
  const first = error.validation?.[0];
  const contexts: Record<string, string> = { querystring: "query", params: "path", body: "body", headers: "header" };
  const where = contexts[error.validationContext ?? ""] ?? "request";
  if (first === undefined) return error.message;
  const params = first.params as { missingProperty?: unknown; additionalProperty?: unknown; allowedValues?: unknown } | undefined;
  let field = first.instancePath.replace(/^\//, "").replaceAll("/", ".");
  if (first.keyword === "required" && typeof params?.missingProperty === "string") {
    field = field === "" ? params.missingProperty : `${field}.${params.missingProperty}`;
  }
  if (first.keyword === "additionalProperties" && typeof params?.additionalProperty === "string") {
    return `${where} field "${params.additionalProperty}" is not allowed`;
  }
  if (field === "*") field = "repository";
  if (field === "") {
    const type = (first.params as { type?: unknown }).type;
    return first.keyword === "type" ? `${where} must be a JSON ${typeof type === "string" ? type : "object"}` : `${where} ${first.message ?? "is invalid"}`;
  }
  // ajv's `verbose` option (set in app.ts) puts the failing schema in `parentSchema`.
  const schema = (first as { parentSchema?: { title?: unknown } }).parentSchema;
  let what = first.message ?? "is invalid";
  if (first.keyword === "pattern" && typeof schema?.title === "string") what = `is not a valid ${schema.title}`;
  if (first.keyword === "enum" && Array.isArray(params?.allowedValues)) what = `must be one of: ${params.allowedValues.map(String).join(", ")}`;
  if (first.keyword === "required") what = "is required";
  return `${where} field "${field}" ${what}`;
}

/**
 * What the one error handler answers for `error`: an {@link HttpError} with
 * a contract code. Validation errors become 400 `invalid_request` naming the
 * field; other 4xx keep their status with a snake_case code; Postgres and
 * NATS failures become 503 `unavailable`; the rest is a 500 `internal_error`
 * (its message stays in the log).
 */
export function toHttpError(error: FastifyError | Error): HttpError | Error {
  if (error instanceof HttpError) return error;
  const fe = error as Partial<FastifyError> & Error;
  if (fe.validation !== undefined) return invalidRequest(describeValidation(fe as FastifyError));
  const status = typeof fe.statusCode === "number" ? fe.statusCode : 500;
  if (status >= 400 && status < 500) {
    const code = status === 400 ? STATUS_ERROR_CODES.invalidRequest : (STATUS_CODES[status] ?? "error").toLowerCase().replace(/[^a-z0-9]+/g, "_");
    return new HttpError(status, code, fe.message, { cause: error });
  }
  const down = unavailableFrom(error);
  if (down !== undefined) return down;
  // Not an HttpError: the runtime's handler answers a generic message and logs this one.
  return Object.assign(new Error(fe.message, { cause: error }), { statusCode: 500, code: STATUS_ERROR_CODES.internal, stack: fe.stack });
}

/**
 * The one fastify error handler of a service.
 */
import { STATUS_CODES } from "node:http";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { HttpError } from "./errors.js";
import type { Logger } from "./logger.js";

/** Body of every error response. */
export interface HttpErrorBody {
  readonly statusCode: number;
  /** Stable machine-readable code, e.g. `FST_ERR_VALIDATION`, `INGEST_ERR_UNAUTHORIZED`, `INTERNAL_ERROR`. */
  readonly code: string;
  /** The HTTP reason phrase. */
  readonly error: string;
  readonly message: string;
}

/** Code of unexpected errors. */
export const INTERNAL_ERROR_CODE = "INTERNAL_ERROR";

function statusOf(error: Partial<FastifyError>): number {
  const s = error.statusCode;
  return typeof s === "number" && Number.isInteger(s) && s >= 400 && s <= 599 ? s : 500;
}

/**
 * A fastify error handler answering `{statusCode, code, error, message}`.
 * 5xx are logged at `error` with the stack and, unless thrown as an
 * {@link HttpError}, answered with a generic message (internals stay in the
 * log); 4xx are logged at `info` and keep their message (e.g. which field
 * failed validation).
 *
 * `app.setErrorHandler(createHttpErrorHandler(logger))`
 */
export function createHttpErrorHandler(
  logger: Logger,
): (error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) => FastifyReply {
  return (error, request, reply) => {
    const err = error as Partial<FastifyError> & Error;
    const statusCode = statusOf(err);
    const log = logger.child({ reqId: request.id, method: request.method, url: request.url });
    const fallbackCode = statusCode >= 500 ? INTERNAL_ERROR_CODE : `HTTP_${statusCode}`;
    const code = typeof err.code === "string" && err.code !== "" ? err.code : fallbackCode;
    const exposeMessage = statusCode < 500 || error instanceof HttpError;
    const body: HttpErrorBody = {
      statusCode,
      code,
      error: STATUS_CODES[statusCode] ?? "Error",
      message: exposeMessage ? err.message : (STATUS_CODES[statusCode] ?? "Internal Server Error"),
    };
    if (statusCode >= 500) log.error({ err: error, statusCode, code }, "request failed");
    else log.info({ statusCode, code, message: err.message }, "request rejected");
    return reply.code(statusCode).send(body);
  };
}

/** Code of the 404 answered by {@link notFoundHandler}. */
export const NOT_FOUND_CODE = "NOT_FOUND";

/**
 * A fastify not-found handler answering 404 in the same
 * `{statusCode, code, error, message}` shape as {@link createHttpErrorHandler}.
 *
 * `app.setNotFoundHandler(notFoundHandler)`
 */
export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const body: HttpErrorBody = {
    statusCode: 404,
    code: NOT_FOUND_CODE,
    error: "Not Found",
    message: `no route for ${request.method} ${request.url.split("?")[0] ?? ""}`,
  };
  return reply.code(404).send(body);
}

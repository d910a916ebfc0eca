/**
 * Resync requests to a secondary's dispatcher, over core NATS request/reply
 * on `georep.<site>.resync` (the dispatcher's contract: payload
 * `{repository?, only_failed?, requested_by?}`, reply `{accepted}` or `{error}`).
 * The status service never writes resync rows itself.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { HttpError } from "@georep/runtime";
import { resyncSubject } from "@georep/schema";
import { STATUS_ERROR_CODES, invalidRequest, unavailable } from "./errors.js";

/** What to resync. */
export type ResyncScope = { readonly repository: string } | "all" | "failed";

/** The request payload for a scope. */
export function resyncPayload(scope: ResyncScope, requestedBy: string): Record<string, unknown> {
  const base = { requested_at: new Date().toISOString(), requested_by: requestedBy.slice(0, 256) };
  if (typeof scope === "object") return { ...base, repository: scope.repository };
  return scope === "failed" ? { ...base, only_failed: true } : base;
}

/** Raised when no dispatcher subscribes to the site's resync subject. */
export class NoDispatcherError extends HttpError {
  constructor(subject: string) {
    super(503, STATUS_ERROR_CODES.unavailable, `no dispatcher answered on ${subject}`);
  }
}

function isNoResponders(error: unknown): boolean {
  const e = error as { name?: unknown; cause?: unknown; isNoResponders?: () => boolean } | null;
  if (e === null || typeof e !== "object") return false;
  if (e.name === "NoRespondersError") return true;
  if (typeof e.isNoResponders === "function" && e.isNoResponders()) return true;
  return isNoResponders(e.cause);
}

function isTimeout(error: unknown): boolean {
  const e = error as { name?: unknown; cause?: unknown } | null;
  if (e === null || typeof e !== "object") return false;
  return e.name === "TimeoutError" || isTimeout(e.cause);
}

/**
 * Sends a resync request to `site`'s dispatcher and returns how many rows
 * it will sync again.
 *
 * @throws {NoDispatcherError} when nothing subscribes to the subject;
 * 503 `unavailable` when NATS is down or the dispatcher does not answer in
 * time or cannot record the request; 400 `invalid_request` when the
 * dispatcher refuses the request as invalid.
 */
export async function requestResync(nc: NatsConnection, site: string, scope: ResyncScope, requestedBy: string, timeoutMs: number): Promise<number> {
  const subject = resyncSubject(site);
  let data: unknown;
  try {
    const reply = await nc.request(subject, JSON.stringify(resyncPayload(scope, requestedBy)), { timeout: timeoutMs });
    data = JSON.parse(reply.string());
  } catch (error) {
    if (isNoResponders(error)) throw new NoDispatcherError(subject);
    if (isTimeout(error)) throw unavailable(`the dispatcher did not answer on ${subject} within ${timeoutMs} ms`, error);
    if (error instanceof SyntaxError) throw unavailable(`the dispatcher's answer on ${subject} is not JSON`, error);
    throw unavailable(`NATS is unavailable: ${error instanceof Error ? error.message : String(error)}`, error);
  }
  const answer = data as { accepted?: unknown; error?: unknown } | null;
  if (answer !== null && typeof answer === "object" && typeof answer.accepted === "number" && Number.isInteger(answer.accepted) && answer.accepted >= 0) {
    return answer.accepted;
  }
  if (answer !== null && typeof answer === "object" && typeof answer.error === "string") {
    if (answer.error.startsWith("invalid")) throw invalidRequest(`the dispatcher refused the request: ${answer.error}`);
    throw unavailable(`the dispatcher cannot take the request now: ${answer.error}`);
  }
  throw unavailable(`unexpected answer from the dispatcher on ${subject}`);
}

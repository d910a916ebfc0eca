/**
 * Resync requests on `georep.<site>.resync` (core NATS request/reply): one
 * repository, every repository, or every failed one.
 */
import { Type } from "@sinclair/typebox";
import type { Static } from "@sinclair/typebox";
import type { Kysely } from "kysely";
import { ResyncRequest, decodeJson } from "@georep/schema";
import { requestSync } from "@georep/tracking";
import type { TrackingDatabase } from "@georep/tracking";
import { resyncMany } from "./db.js";

/**
 * The request the dispatcher accepts: `ResyncRequest` of `@georep/schema`
 * plus `only_failed` (with no repository: only the failed rows), and with
 * `requested_at` optional so an operator can type
 * `nats req georep.<site>.resync '{"only_failed":true}'`.
 */
export const DispatcherResyncRequest = Type.Object(
  {
    repository: Type.Optional(ResyncRequest.properties.repository),
    requested_at: Type.Optional(ResyncRequest.properties.requested_at),
    requested_by: Type.Optional(ResyncRequest.properties.requested_by),
    only_failed: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, title: "ResyncRequest" },
);
/** A resync request as the dispatcher reads it. */
export type DispatcherResyncRequest = Static<typeof DispatcherResyncRequest>;

/** The reply: how many rows will be synced again, or why nothing was done. */
export type ResyncReply = { readonly accepted: number } | { readonly error: string };

/** What was asked, once parsed. */
export type ParsedResync =
  | { readonly ok: true; readonly scope: { readonly repository: string } | "all" | "failed"; readonly requestedBy: string | undefined }
  | { readonly ok: false; readonly error: string };

/** Parses and checks a request payload (an empty payload means "all"). */
export function parseResyncRequest(data: Uint8Array): ParsedResync {
  const decoded = decodeJson(DispatcherResyncRequest, data.length === 0 ? "{}" : data);
  if (!decoded.ok) {
    return { ok: false, error: `invalid resync request: ${decoded.problems.map((p) => `${p.path === "" ? "(root)" : p.path}: ${p.message}`).join("; ")}` };
  }
  const request = decoded.value;
  if (request.repository !== undefined && request.only_failed === true) {
    return { ok: false, error: "invalid resync request: give a repository or only_failed, not both" };
  }
  const scope = request.repository !== undefined ? { repository: request.repository } : request.only_failed === true ? ("failed" as const) : ("all" as const);
  return { ok: true, scope, requestedBy: request.requested_by };
}

/** Carries out a parsed request; returns how many rows will be synced again. */
export async function applyResync(db: Kysely<TrackingDatabase>, scope: Extract<ParsedResync, { ok: true }>["scope"]): Promise<number> {
  if (typeof scope === "object") {
    await requestSync(db, scope.repository, "resync");
    return 1;
  }
  return resyncMany(db, scope);
}

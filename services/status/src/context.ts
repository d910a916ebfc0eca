/**
 * What the route modules share: dependencies, settings and the guards of
 * admin and role-specific endpoints.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import type { NatsConnection } from "@nats-io/transport-node";
import { HttpError } from "@georep/runtime";
import type { Logger } from "@georep/runtime";
import type { SiteRole } from "@georep/schema";
import type { RegistryClient } from "@georep/registry-client";
import type { StatusDatabase } from "./db.js";
import { STATUS_ERROR_CODES, wrongRole } from "./errors.js";
import type { Metrics } from "./metrics.js";
import type { SiteReports } from "./reports.js";

/** The two registries a secondary reads (both pull-only). */
export interface StatusRegistries {
  readonly primary: RegistryClient;
  readonly secondary: RegistryClient;
}

/** Settings every route module reads (defaults applied). */
export interface ResolvedOptions {
  readonly site: string;
  readonly role: SiteRole;
  readonly reportIntervalMs: number;
  readonly staleAfterMs: number;
  readonly resyncTimeoutMs: number;
  readonly tagConcurrency: number;
  readonly waitPollMs: number;
  readonly recentSyncs: number;
}

/** The shared state of the route modules. */
export interface RouteContext {
  readonly db: Kysely<StatusDatabase>;
  readonly nc: NatsConnection;
  readonly logger: Logger;
  readonly options: ResolvedOptions;
  readonly registries: StatusRegistries | undefined;
  readonly metrics: Metrics;
  readonly reports: SiteReports;
  /** `onRequest` hook: the admin bearer token (401 without, 403 wrong). */
  readonly requireAdmin: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  /** `onRequest` hook: 409 `wrong_role` unless this site has `role`. */
  readonly requireRole: (role: SiteRole) => (request: FastifyRequest) => Promise<void>;
  /** Aborted when the app closes (long waits answer at once). */
  readonly closing: AbortSignal;
}

const digestOf = (value: string): Buffer => createHash("sha256").update(value, "utf8").digest();

/** The realm of the `WWW-Authenticate` challenge of admin endpoints. */
export const ADMIN_REALM = "georep status";

/**
 * The admin guard. Both tokens are hashed to a fixed length before a
 * constant-time comparison, so neither the token's content nor its length
 * leaks through timing.
 */
export function createAdminGuard(adminToken: string): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const want = digestOf(adminToken);
  return async (request, reply) => {
    const header = request.headers.authorization;
    const match = typeof header === "string" ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header) : null;
    if (match?.[1] === undefined) {
      reply.header("www-authenticate", `Bearer realm="${ADMIN_REALM}"`);
      throw new HttpError(401, STATUS_ERROR_CODES.unauthorized, "this action needs the admin token: send Authorization: Bearer <token>");
    }
    if (!timingSafeEqual(digestOf(match[1]), want)) {
      throw new HttpError(403, STATUS_ERROR_CODES.forbidden, "the admin token is wrong");
    }
  };
}

/** The role guard of endpoints that only one role serves. */
export function createRoleGuard(site: string, role: SiteRole): (wanted: SiteRole) => (request: FastifyRequest) => Promise<void> {
  return (wanted) => async (request) => {
    if (role !== wanted) {
      throw wrongRole(`${request.method} ${request.routeOptions.url ?? request.url.split("?")[0]} is served by ${wanted} sites; ${site} is the ${role}`);
    }
  };
}

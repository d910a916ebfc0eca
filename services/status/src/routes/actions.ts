/**
 * The admin actions (docs/status-api.md, "Actions"): resyncs go to the
 * dispatcher over NATS, pause and resume flip the site's control row.
 * Every action needs the admin bearer token.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { HttpError } from "@georep/runtime";
import { REPOSITORY_PATTERN } from "@georep/schema";
import { setPaused } from "@georep/tracking";
import type { RouteContext } from "../context.js";
import { repositoryRow, trackingDb } from "../db.js";
import { invalidRequest, notFound } from "../errors.js";
import type { ActionKind } from "../metrics.js";
import { NoDispatcherError, requestResync } from "../resync.js";
import type { ResyncScope } from "../resync.js";
import {
  Accepted,
  Paused,
  RepositoryActionParams,
  RepositoryNameParam,
  ResyncBody,
  SiteParams,
  SiteResyncBody,
  errorResponses,
} from "../schemas.js";

const REPOSITORY_RE = new RegExp(REPOSITORY_PATTERN);
const SECURITY = [{ admin: [] }];
/** Suffix of the repository resync route. */
const RESYNC_SUFFIX = "/resync";

/** Who asked, for the dispatcher's and our audit logs. */
const requester = (request: FastifyRequest): string => `status api (${request.ip})`;

/** Registers the action routes. */
export function actionRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { db, nc, options, metrics, logger } = ctx;

  /** Runs an action, counting it by kind and outcome and logging it. */
  async function act<T>(kind: ActionKind, request: FastifyRequest, detail: Record<string, unknown>, run: () => Promise<T>): Promise<T> {
    try {
      const result = await run();
      metrics.inc("actions", [kind, "accepted"]);
      logger.info({ action: kind, ...detail, by: requester(request), result }, "admin action done");
      return result;
    } catch (error) {
      const status = error instanceof HttpError ? error.statusCode : 500;
      metrics.inc("actions", [kind, status < 500 ? "rejected" : "error"]);
      logger.info({ action: kind, ...detail, by: requester(request), status, err: error }, "admin action refused");
      throw error;
    }
  }

  app.post<{ Params: RepositoryActionParams }>(
    "/api/v1/repositories/*",
    {
      onRequest: [ctx.requireAdmin, ctx.requireRole("secondary")],
      schema: {
        tags: ["actions"],
        summary: "POST /api/v1/repositories/<name>/resync: resync one repository (secondary, admin)",
        description: "The path is the repository name followed by `/resync`; the request goes to the dispatcher over NATS.",
        security: SECURITY,
        params: RepositoryActionParams,
        response: { 202: Accepted, ...errorResponses(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const path = request.params["*"];
      if (!path.endsWith(RESYNC_SUFFIX)) throw notFound(`no route for POST ${request.url.split("?")[0]}`);
      const repository = path.slice(0, -RESYNC_SUFFIX.length);
      if (repository.length > (RepositoryNameParam.maxLength ?? 255) || !REPOSITORY_RE.test(repository)) {
        throw invalidRequest('path field "repository" is not a valid repository name');
      }
      const accepted = await act("resync_repository", request, { repository }, async () => {
        if ((await repositoryRow(db, repository)) === undefined) throw notFound(`repository "${repository}" is not tracked at ${options.site}`);
        return requestResync(nc, options.site, { repository }, requester(request), options.resyncTimeoutMs);
      });
      return reply.code(202).send({ accepted });
    },
  );

  app.post<{ Body: ResyncBody }>(
    "/api/v1/resync",
    {
      onRequest: [ctx.requireAdmin, ctx.requireRole("secondary")],
      schema: {
        tags: ["actions"],
        summary: "Resync every repository, or every failed one (secondary, admin)",
        security: SECURITY,
        body: ResyncBody,
        response: { 202: Accepted, ...errorResponses(400, 401, 403, 409, 503) },
      },
    },
    async (request, reply) => {
      const scope = request.body.scope;
      const accepted = await act(scope === "all" ? "resync_all" : "resync_failed", request, { scope }, () =>
        requestResync(nc, options.site, scope, requester(request), options.resyncTimeoutMs),
      );
      return reply.code(202).send({ accepted });
    },
  );

  for (const [path, paused] of [
    ["/api/v1/pause", true],
    ["/api/v1/resume", false],
  ] as const) {
    app.post(
      path,
      {
        onRequest: [ctx.requireAdmin, ctx.requireRole("secondary")],
        schema: {
          tags: ["actions"],
          summary: paused
            ? "Pause replication at this site: nothing is dispatched or claimed, events are still recorded (secondary, admin)"
            : "Resume replication at this site (secondary, admin)",
          security: SECURITY,
          response: { 200: Paused, ...errorResponses(401, 403, 409, 503) },
        },
      },
      async (request) => {
        const state = await act(paused ? "pause" : "resume", request, {}, () => setPaused(trackingDb(db), paused, requester(request)));
        // The primary's sites view learns it with the next report; send that one now.
        void ctx.reports.publishNow();
        return { paused: state.paused };
      },
    );
  }

  app.post<{ Params: SiteParams; Body: SiteResyncBody }>(
    "/api/v1/sites/:site/resync",
    {
      onRequest: [ctx.requireAdmin, ctx.requireRole("primary")],
      schema: {
        tags: ["actions"],
        summary: "Forward a resync request to a secondary's dispatcher over NATS (primary, admin)",
        security: SECURITY,
        params: SiteParams,
        body: SiteResyncBody,
        response: { 202: Accepted, ...errorResponses(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const { site } = request.params;
      const body = request.body;
      const accepted = await act("site_resync", request, { site, ...body }, async () => {
        if ((body.scope === undefined) === (body.repository === undefined)) {
          throw invalidRequest('body needs exactly one of "scope" ("all" or "failed") and "repository"');
        }
        if (site === options.site) throw invalidRequest(`path field "site": ${site} is this primary site; name a secondary`);
        const scope: ResyncScope = body.repository !== undefined ? { repository: body.repository } : body.scope!;
        try {
          return await requestResync(nc, site, scope, requester(request), options.resyncTimeoutMs);
        } catch (error) {
          if (error instanceof NoDispatcherError && ctx.reports.get(site) === undefined) {
            throw notFound(`unknown site "${site}": it never reported its status and no dispatcher answers for it`);
          }
          throw error;
        }
      });
      return reply.code(202).send({ accepted });
    },
  );
}

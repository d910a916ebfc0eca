/**
 * The read endpoints: site summary, repositories (list and detail), the
 * primary's event log and the sites view (docs/status-api.md).
 */
import type { FastifyInstance } from "fastify";
import { recentSyncs } from "@georep/tracking";
import type { RouteContext } from "../context.js";
import { decodeCursor, encodeCursor } from "../cursor.js";
import type { RepositoryCursor } from "../cursor.js";
import { listEvents, listRepositories, repositoryRow, trackingDb } from "../db.js";
import { invalidRequest, notFound } from "../errors.js";
import {
  EventsPage,
  EventsQuery,
  RepositoriesPage,
  RepositoriesQuery,
  RepositoryDetail,
  RepositoryParams,
  SiteSummarySchema,
  SitesList,
  errorResponses,
} from "../schemas.js";
import { siteSummary } from "../site.js";
import { compareTags } from "../tags.js";

/** Registers the read routes. */
export function readRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { db, nc, options } = ctx;

  app.get(
    "/api/v1/site",
    {
      schema: {
        tags: ["site"],
        summary: "This site: counts per state, progress, lag, totals; the event log on the primary",
        response: { 200: SiteSummarySchema, ...errorResponses(503) },
      },
    },
    async () => siteSummary({ db, nc, site: options.site, role: options.role }),
  );

  app.get<{ Querystring: RepositoriesQuery }>(
    "/api/v1/repositories",
    {
      onRequest: [ctx.requireRole("secondary")],
      schema: {
        tags: ["repositories"],
        summary: "Tracking rows, filtered and sorted, a page at a time (secondary)",
        querystring: RepositoriesQuery,
        response: { 200: RepositoriesPage, ...errorResponses(400, 409, 503) },
      },
    },
    async (request) => {
      const query = request.query;
      let after: RepositoryCursor | undefined;
      if (query.cursor !== undefined) {
        const decoded = decodeCursor(query.cursor, query.sort, query.order);
        if (!decoded.ok) {
          throw invalidRequest(
            decoded.problem === "mismatch"
              ? `query field "cursor" was made for another sort or order than sort=${query.sort}&order=${query.order}`
              : 'query field "cursor" is not a cursor this API made (pass next_cursor as it was given)',
          );
        }
        after = decoded.cursor;
      }
      const page = await listRepositories(db, { state: query.state, name: query.name, sort: query.sort, order: query.order, limit: query.limit, after });
      return { items: page.items, next_cursor: page.next === undefined ? null : encodeCursor(page.next) };
    },
  );

  app.get<{ Params: RepositoryParams }>(
    "/api/v1/repositories/*",
    {
      onRequest: [ctx.requireRole("secondary")],
      schema: {
        tags: ["repositories"],
        summary: "One repository: its tracking row, its tags on both registries, its recent syncs (secondary)",
        description: "The repository name may contain `/`.",
        params: RepositoryParams,
        response: { 200: RepositoryDetail, ...errorResponses(400, 404, 409, 503) },
      },
    },
    async (request) => {
      const repository = request.params["*"];
      const row = await repositoryRow(db, repository);
      if (row === undefined) throw notFound(`repository "${repository}" is not tracked at ${options.site}`);
      const [tags, syncs] = await Promise.all([
        ctx.registries === undefined
          ? Promise.resolve({ tags: [], error: "registries are not configured at this site" })
          : compareTags(ctx.registries, repository, options.tagConcurrency),
        recentSyncs(trackingDb(db), repository, options.recentSyncs),
      ]);
      return {
        repository: row,
        tags: tags.tags,
        tags_error: tags.error,
        recent_syncs: syncs.map((s) => ({
          started_at: s.startedAt === null ? null : s.startedAt.toISOString(),
          finished_at: s.finishedAt.toISOString(),
          outcome: s.outcome,
          generation: s.generation,
          reason: s.reason,
          duration_ms: s.durationMs,
          bytes_copied: s.bytesCopied,
          blobs_copied: s.blobsCopied,
          blobs_mounted: s.blobsMounted,
          error: s.error,
        })),
      };
    },
  );

  app.get<{ Querystring: EventsQuery }>(
    "/api/v1/events",
    {
      onRequest: [ctx.requireRole("primary")],
      schema: {
        tags: ["events"],
        summary: "The primary's event log (geo_events), newest first by default (primary)",
        description: "`after` is exclusive; with `order=desc` it means \"before\". `next_cursor` is the value to pass as `after` for the next page.",
        querystring: EventsQuery,
        response: { 200: EventsPage, ...errorResponses(400, 409, 503) },
      },
    },
    async (request) => {
      const { repository, after, limit, order } = request.query;
      const page = await listEvents(db, { repository, after, limit, order });
      return { items: page.items, next_cursor: page.next ?? null };
    },
  );

  app.get(
    "/api/v1/sites",
    {
      schema: {
        tags: ["sites"],
        summary: "Every site known from its status reports, sorted by name",
        response: { 200: SitesList },
      },
    },
    async () => ({ items: ctx.reports.list() }),
  );
}

/**
 * The status service of one site, without the process around it: the REST
 * API of docs/status-api.md, the site reports over NATS, `/metrics`,
 * health, the OpenAPI document and Swagger UI, the dashboard's static files
 * and, when configured, the Docker token endpoint. `main.ts` wires it to
 * the real config and signals; tests build it on real servers and inject.
 */
import { existsSync } from "node:fs";
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import { fileURLToPath } from "node:url";
import fastify from "fastify";
import type { ConnectionError, FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { NatsConnection } from "@nats-io/transport-node";
import { sql } from "kysely";
import type { Kysely } from "kysely";
import fastifyStatic from "@fastify/static";
import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import { tokenEndpoint } from "@georep/jwt";
import type { TokenEndpointOptions } from "@georep/jwt";
import { createHealth, createHttpErrorHandler, healthPlugin } from "@georep/runtime";
import type { Health, Logger } from "@georep/runtime";
import type { SiteRole } from "@georep/schema";
import { createAdminGuard, createRoleGuard } from "./context.js";
import type { ResolvedOptions, RouteContext, StatusRegistries } from "./context.js";
import type { StatusDatabase } from "./db.js";
import { STATUS_ERROR_CODES, invalidRequest, notFound, toHttpError } from "./errors.js";
import { PROMETHEUS_CONTENT_TYPE, createMetrics } from "./metrics.js";
import type { Metrics } from "./metrics.js";
import { createSiteReports } from "./reports.js";
import type { SiteReports } from "./reports.js";
import { actionRoutes } from "./routes/actions.js";
import { readRoutes } from "./routes/read.js";
import { DEFAULT_WAIT_POLL_MS, waitRoutes } from "./routes/wait.js";
import { reportOf, siteSummary } from "./site.js";
import { DEFAULT_TAG_CONCURRENCY } from "./tags.js";

/** Where the dashboard's files are: `services/status/public` (from `src/` and from `dist/`). */
export const DEFAULT_PUBLIC_DIR = fileURLToPath(new URL("../public", import.meta.url));
/** Largest request body (the actions' bodies are tiny). */
export const BODY_LIMIT = 16 * 1024;
/** Recent syncs shown in a repository's detail. */
export const DEFAULT_RECENT_SYNCS = 20;

/** Settings of the status service (see `config.ts` for the env variables and defaults). */
export interface StatusOptions {
  /** This site's name (reports, resync subject). */
  readonly site: string;
  readonly role: SiteRole;
  /** Period of this site's status report. */
  readonly reportIntervalMs: number;
  /** A site without a report for this long is stale. */
  readonly staleAfterMs: number;
  /** How long an action waits for the dispatcher's answer. */
  readonly resyncTimeoutMs: number;
  /** Tags resolved at once per registry in a repository's detail; default 8. */
  readonly tagConcurrency?: number;
  /** Poll period of the replication wait; default 250 ms (the contract's). */
  readonly waitPollMs?: number;
  /** Recent syncs in a repository's detail; default 20. */
  readonly recentSyncs?: number;
}

/** Dependencies of {@link buildStatusApp}; the caller owns (and closes) the connection, the pool and the clients. */
export interface StatusDeps {
  /** The site's NATS (on a secondary, a leafnode of the primary's, so reports reach the primary). */
  readonly nc: NatsConnection;
  /** The site's Postgres: tracking tables on a secondary, `geo_events` on the primary. */
  readonly db: Kysely<StatusDatabase>;
  readonly logger: Logger;
  readonly options: StatusOptions;
  /** Bearer token of the actions. */
  readonly adminToken: string;
  /** The primary's and this site's registries (secondary); without them detail tags and waits are unavailable. */
  readonly registries?: StatusRegistries | undefined;
  /** Mounts the Docker token endpoint at `/token` when given. */
  readonly tokenEndpoint?: TokenEndpointOptions | undefined;
  /** The dashboard's directory; {@link DEFAULT_PUBLIC_DIR} by default, `false` for none. */
  readonly publicDir?: string | false;
  /** Counters; fresh ones by default. */
  readonly metrics?: Metrics;
  /** Health checks to add to; a fresh set by default. */
  readonly health?: Health;
}

/** What the app decorates itself with (for main.ts and tests). */
export interface StatusAppState {
  readonly health: Health;
  readonly metrics: Metrics;
  readonly reports: SiteReports;
}

declare module "fastify" {
  interface FastifyInstance {
    /** The status service's health checks, counters and site reports. */
    readonly status: StatusAppState;
  }
}

/** How long a refused connection may go on sending before it is cut (see {@link clientErrorHandler}). */
const CLIENT_ERROR_DRAIN_MS = 1000;

/**
 * Answers what Node's HTTP parser refuses before fastify sees a request (a
 * control character in the request line, a URL and headers over 16 KiB, a
 * request that never completes) in the API's error shape: fastify's default
 * answer has no `code`. The answer is followed by a FIN, and what the client
 * still sends is read and dropped for a moment: destroying the socket with
 * unread bytes (fastify's default) sends a RST, which loses the answer at
 * the client about half the time (ECONNRESET instead of the 431).
 */
function clientErrorHandler(error: ConnectionError, socket: Socket): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  const status = error.code === "HPE_HEADER_OVERFLOW" ? 431 : error.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
  const [code, message] =
    status === 431
      ? ["request_header_fields_too_large", "the request's URL and headers are larger than the server accepts"]
      : status === 408
        ? [STATUS_ERROR_CODES.timeout, "the request did not arrive in time"]
        : [STATUS_ERROR_CODES.invalidRequest, "the request is not valid HTTP (a control character or a byte outside ASCII in its request line or headers)"];
  const reason = STATUS_CODES[status] ?? "Error";
  const body = JSON.stringify({ statusCode: status, code, error: reason, message });
  if (!socket.writable) {
    socket.destroy(error);
    return;
  }
  socket.on("error", () => undefined); // the client may reset meanwhile; nothing is left to tell it
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  socket.resume();
  setTimeout(() => socket.destroy(), CLIENT_ERROR_DRAIN_MS).unref();
}

/**
 * Builds the status app; it does not listen. Site reports start when the
 * app is ready (`listen()`, `ready()` or the first `inject()`) and stop on
 * `close()`, which also ends replication waits in progress.
 */
export async function buildStatusApp(deps: StatusDeps): Promise<FastifyInstance> {
  const { db, nc } = deps;
  const logger = deps.logger.child({ component: "status" });
  const metrics = deps.metrics ?? createMetrics();
  const health = deps.health ?? createHealth();
  const options: ResolvedOptions = {
    site: deps.options.site,
    role: deps.options.role,
    reportIntervalMs: deps.options.reportIntervalMs,
    staleAfterMs: deps.options.staleAfterMs,
    resyncTimeoutMs: deps.options.resyncTimeoutMs,
    tagConcurrency: deps.options.tagConcurrency ?? DEFAULT_TAG_CONCURRENCY,
    waitPollMs: deps.options.waitPollMs ?? DEFAULT_WAIT_POLL_MS,
    recentSyncs: deps.options.recentSyncs ?? DEFAULT_RECENT_SYNCS,
  };
  if (deps.adminToken === "") throw new Error("buildStatusApp: adminToken must not be empty");

  health.register("postgres", async () => {
    await sql`select 1`.execute(db);
  });
  health.register("nats", () => {
    if (nc.isClosed()) throw new Error("NATS connection closed");
  });

  const reports = createSiteReports({
    nc,
    site: options.site,
    intervalMs: options.reportIntervalMs,
    staleAfterMs: options.staleAfterMs,
    buildReport: async () => reportOf(await siteSummary({ db, nc, site: options.site, role: options.role })),
    logger,
    metrics,
  });
  const closing = new AbortController();

  const loggerInstance: FastifyBaseLogger = logger;
  const handleError = createHttpErrorHandler(logger);
  const app = fastify({
    loggerInstance,
    bodyLimit: BODY_LIMIT,
    // A URL that is not valid percent-encoding (FST_ERR_BAD_URL) gets the API's error shape too.
    frameworkErrors: (error, request, reply) => {
      void handleError(toHttpError(error), request, reply);
    },
    clientErrorHandler,
    // Unknown body fields are refused (400 naming them), not silently dropped.
    // `verbose` keeps the failing schema in each error, so a message can name a pattern by its title.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: "array", useDefaults: true, allErrors: false, verbose: true } },
  });
  app.decorate("status", { health, metrics, reports });

  // Dashboards and probes poll: GET routes log at warn; actions keep their request lines.
  app.addHook("onRoute", (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (methods.every((m) => m === "GET" || m === "HEAD")) route.logLevel ??= "warn";
  });

  app.setErrorHandler((error: Error, request: FastifyRequest, reply: FastifyReply) => handleError(toHttpError(error), request, reply));
  app.setNotFoundHandler((request, reply) => handleError(notFound(`no route for ${request.method} ${request.url.split("?")[0] ?? ""}`), request, reply));

  // An empty JSON body is no body (`POST /api/v1/pause` with a JSON content type); bad JSON is a 400.
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (_request, body, done) => {
    const text = (body as string).trim();
    if (text === "") {
      done(null, undefined);
      return;
    }
    try {
      done(null, JSON.parse(text) as unknown);
    } catch (error) {
      done(invalidRequest(`body is not JSON: ${(error as Error).message}`), undefined);
    }
  });

  // ajv coerces "Infinity", "-Infinity" and "1e999" to ±Infinity and then skips minimum and maximum
  // (it checks ranges only for finite numbers): a limit of Infinity would reach Postgres (a 500).
  app.addHook("preHandler", async (request) => {
    const query = request.query as Record<string, unknown> | null | undefined;
    if (query === null || typeof query !== "object") return;
    for (const [field, value] of Object.entries(query)) {
      if (typeof value === "number" && !Number.isFinite(value)) throw invalidRequest(`query field "${field}" must be a finite number`);
    }
  });
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    metrics.inc("httpRequests", [route, String(reply.statusCode)]);
    metrics.observeRequest(route, reply.elapsedTime / 1000);
  });
  // Answers describe "now": no cache between the API and the dashboard or the CLI.
  app.addHook("onSend", async (request, reply, payload) => {
    if (request.url.startsWith("/api/")) reply.header("cache-control", "no-store");
    return payload;
  });
  app.addHook("onReady", async () => {
    await reports.start();
  });
  // Before the server waits for open requests: replication waits answer now instead of at their timeout.
  app.addHook("preClose", async () => {
    closing.abort();
  });
  app.addHook("onClose", async () => {
    await reports.stop();
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "georep status API",
        version: "1",
        description: "The status service of one georep site; the contract is docs/status-api.md. Errors are {code, message}.",
      },
      tags: [
        { name: "site", description: "This site" },
        { name: "repositories", description: "Tracking rows of a secondary" },
        { name: "actions", description: "State-changing calls (admin bearer token)" },
        { name: "events", description: "The primary's event log" },
        { name: "replication", description: "Replication wait" },
        { name: "sites", description: "Every site, from their status reports" },
      ],
      components: { securitySchemes: { admin: { type: "http", scheme: "bearer", description: "STATUS_ADMIN_TOKEN" } } },
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: "/docs" });
  await app.register(healthPlugin, { health });

  metrics.watchSites(() => reports.healthCounts());
  app.get("/metrics", { schema: { hide: true } }, async (_request, reply) => reply.header("content-type", PROMETHEUS_CONTENT_TYPE).send(await metrics.render()));

  const ctx: RouteContext = {
    db,
    nc,
    logger,
    options,
    registries: deps.registries,
    metrics,
    reports,
    requireAdmin: createAdminGuard(deps.adminToken),
    requireRole: createRoleGuard(options.site, options.role),
    closing: closing.signal,
  };
  readRoutes(app, ctx);
  actionRoutes(app, ctx);
  waitRoutes(app, ctx);

  if (deps.tokenEndpoint !== undefined) await app.register(tokenEndpoint, deps.tokenEndpoint);

  const publicDir = deps.publicDir ?? DEFAULT_PUBLIC_DIR;
  if (publicDir !== false) {
    if (existsSync(publicDir)) {
      await app.register(fastifyStatic, { root: publicDir, prefix: "/", index: ["index.html"], wildcard: true });
    } else {
      logger.warn({ publicDir }, "dashboard directory missing; / is not served");
    }
  }
  return app;
}

/**
 * `GET /api/v1/replication/wait` (docs/status-api.md, "Replication wait"):
 * answers once the secondary's registry serves the content: a digest's
 * manifest exists there, or a tag resolves to the same digest as the
 * primary's tag right now. Polls both registries.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { FastifyInstance } from "fastify";
import { HttpError } from "@georep/runtime";
import type { RouteContext } from "../context.js";
import { STATUS_ERROR_CODES, invalidRequest, unavailable } from "../errors.js";
import type { WaitOutcome } from "../metrics.js";
import { WaitQuery, WaitResult, errorResponses } from "../schemas.js";

/** Poll period of the contract. */
export const DEFAULT_WAIT_POLL_MS = 250;

/** One look at the registries: done with the digest, or what is still missing. */
type Check = { readonly done: true; readonly digest: string } | { readonly done: false; readonly why: string };

const TIMED_OUT = Symbol("timed out");

/** Registers the wait route. */
export function waitRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { options, metrics } = ctx;

  app.get<{ Querystring: WaitQuery }>(
    "/api/v1/replication/wait",
    {
      onRequest: [ctx.requireRole("secondary")],
      schema: {
        tags: ["replication"],
        summary: "Wait until this site's registry serves a tag (same digest as the primary's) or a digest (secondary)",
        description: "Exactly one of `tag` and `digest`. Polls every 250 ms; 408 `timeout` after `timeout` seconds.",
        querystring: WaitQuery,
        response: { 200: WaitResult, ...errorResponses(400, 408, 409, 503) },
      },
    },
    async (request, reply) => {
      const { repository, tag, digest, timeout } = request.query;
      if ((tag === undefined) === (digest === undefined)) throw invalidRequest('query needs exactly one of "tag" and "digest"');
      const registries = ctx.registries;
      const count = (outcome: WaitOutcome): void => metrics.inc("waits", [outcome]);
      if (registries === undefined) {
        count("unavailable");
        throw unavailable("registries are not configured at this site");
      }

      // Stops on client disconnect and on shutdown.
      const abort = new AbortController();
      const onClose = (): void => {
        if (!reply.raw.writableFinished) abort.abort();
      };
      reply.raw.once("close", onClose);
      const signal = AbortSignal.any([abort.signal, ctx.closing]);

      const check = async (): Promise<Check> => {
        if (digest !== undefined) {
          const found = await registries.secondary.headManifest(repository, digest);
          return found !== undefined ? { done: true, digest } : { done: false, why: `${digest} is not on the secondary` };
        }
        const [p, s] = await Promise.all([registries.primary.headManifest(repository, tag!), registries.secondary.headManifest(repository, tag!)]);
        if (p === undefined) return { done: false, why: `tag ${tag} is not on the primary` };
        if (s === undefined) return { done: false, why: `tag ${tag} is not on the secondary yet (primary: ${p.digest})` };
        if (s.digest !== p.digest) return { done: false, why: `tag ${tag} points at ${s.digest} on the secondary, ${p.digest} on the primary` };
        return { done: true, digest: p.digest };
      };

      const started = Date.now();
      const deadline = started + timeout * 1000;
      let why = "nothing checked yet";
      let lastError: unknown;
      try {
        for (;;) {
          if (signal.aborted) {
            count("aborted");
            throw unavailable(ctx.closing.aborted ? "the status service is shutting down" : "the client went away");
          }
          const pending = check();
          // A registry slower than the deadline must not hold the answer past it.
          pending.catch(() => undefined);
          let timer: NodeJS.Timeout | undefined;
          const result = await Promise.race([
            pending,
            new Promise<typeof TIMED_OUT>((resolve) => {
              timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, deadline - Date.now()));
            }),
          ])
            .catch((error: unknown) => {
              lastError = error;
              return undefined;
            })
            .finally(() => clearTimeout(timer));
          if (result !== undefined && result !== TIMED_OUT) {
            lastError = undefined;
            if (result.done) {
              count("ok");
              return { repository, tag: tag ?? null, digest: result.digest, waited_ms: Date.now() - started };
            }
            why = result.why;
          }
          const remaining = deadline - Date.now();
          if (result === TIMED_OUT || remaining <= 0) break;
          await sleep(Math.min(options.waitPollMs, remaining), undefined, { signal }).catch(() => undefined);
        }
      } finally {
        reply.raw.removeListener("close", onClose);
      }
      const what = tag !== undefined ? `tag ${tag}` : digest!;
      if (lastError !== undefined) {
        count("unavailable");
        throw unavailable(`cannot read the registries for ${repository} ${what}: ${lastError instanceof Error ? lastError.message : "unknown error"}`, lastError);
      }
      count("timeout");
      throw new HttpError(408, STATUS_ERROR_CODES.timeout, `${repository} ${what} was not replicated here within ${timeout} s: ${why}`);
    },
  );
}

/**
 * Liveness and readiness checks and the fastify routes that expose them.
 */
import type { FastifyPluginAsync } from "fastify";

/** Default time one check may take before it counts as failed. */
export const DEFAULT_CHECK_TIMEOUT_MS = 2_000;

/** Whether a check (or the whole probe) passed. */
export const HEALTH_STATUS = { OK: "ok", FAIL: "fail" } as const;
/** One of {@link HEALTH_STATUS}. */
export type HealthStatus = (typeof HEALTH_STATUS)[keyof typeof HEALTH_STATUS];

/** Resolves when healthy; throws (or rejects) with the reason when not. */
export type HealthCheck = () => void | Promise<void>;

/** Options of one registered check. */
export interface HealthCheckOptions {
  /**
   * Also part of liveness (default false: readiness only). Liveness failing
   * makes the orchestrator RESTART the process, so only checks that a
   * restart would fix belong there, never a dependency such as Postgres.
   */
  readonly liveness?: boolean;
  /** Default {@link DEFAULT_CHECK_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
}

/** Outcome of one check. */
export interface CheckResult {
  readonly status: HealthStatus;
  readonly durationMs: number;
  /** The failure's message, when it failed. */
  readonly error?: string;
}

/** Outcome of a probe. */
export interface HealthReport {
  readonly status: HealthStatus;
  readonly checks: Readonly<Record<string, CheckResult>>;
  /** Names of the failing checks (empty when ok). */
  readonly failing: readonly string[];
}

/** Named health checks; see {@link createHealth}. */
export interface Health {
  /** Adds a check; a name may be registered once. */
  register(name: string, check: HealthCheck, options?: HealthCheckOptions): void;
  /** Runs the liveness checks (all in parallel). */
  liveness(): Promise<HealthReport>;
  /** Runs every check (in parallel); fails while draining. */
  readiness(): Promise<HealthReport>;
  /**
   * Marks the process as going away: readiness fails from now on so load
   * balancers stop sending work, while liveness stays green. Call it from
   * the first shutdown hook.
   */
  drain(): void;
}

interface Registered {
  readonly check: HealthCheck;
  readonly liveness: boolean;
  readonly timeoutMs: number;
}

async function runCheck(entry: Registered): Promise<CheckResult> {
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.resolve().then(entry.check),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${entry.timeoutMs} ms`)), entry.timeoutMs);
      }),
    ]);
    return { status: "ok", durationMs: Date.now() - t0 };
  } catch (err) {
    return { status: "fail", durationMs: Date.now() - t0, error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}

/** Creates an empty set of health checks. */
export function createHealth(): Health {
  const checks = new Map<string, Registered>();
  let draining = false;

  const report = async (entries: [string, Registered][], extra: Record<string, CheckResult>): Promise<HealthReport> => {
    const results = await Promise.all(entries.map(async ([name, entry]) => [name, await runCheck(entry)] as const));
    const all: Record<string, CheckResult> = { ...extra, ...Object.fromEntries(results) };
    const failing = Object.entries(all)
      .filter(([, r]) => r.status === "fail")
      .map(([name]) => name);
    return { status: failing.length === 0 ? "ok" : "fail", checks: all, failing };
  };

  return {
    register(name, check, options = {}) {
      if (checks.has(name)) throw new Error(`health check ${JSON.stringify(name)} is already registered`);
      checks.set(name, {
        check,
        liveness: options.liveness ?? false,
        timeoutMs: options.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS,
      });
    },
    liveness() {
      return report([...checks].filter(([, e]) => e.liveness), {});
    },
    readiness() {
      const extra: Record<string, CheckResult> = draining
        ? { shutdown: { status: "fail", durationMs: 0, error: "shutting down" } }
        : {};
      return report([...checks], extra);
    },
    drain() {
      draining = true;
    },
  };
}

/** Options of {@link healthPlugin}. */
export interface HealthPluginOptions {
  readonly health: Health;
}

/**
 * Fastify plugin: `GET /health/live` and `GET /health/ready`, answering 200
 * `{status: "ok", checks, failing: []}` or 503 `{status: "fail", checks, failing: [names]}`.
 * Register it with `app.register(healthPlugin, { health })`; a `prefix`
 * option moves the routes.
 */
export const healthPlugin: FastifyPluginAsync<HealthPluginOptions> = async (app, options) => {
  const { health } = options;
  const route = (path: string, probe: () => Promise<HealthReport>): void => {
    app.get(path, { logLevel: "warn" }, async (_request, reply) => {
      const result = await probe();
      return reply
        .code(result.status === "ok" ? 200 : 503)
        .header("cache-control", "no-store")
        .send(result);
    });
  };
  route("/health/live", () => health.liveness());
  route("/health/ready", () => health.readiness());
};

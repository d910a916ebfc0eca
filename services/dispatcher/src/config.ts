/**
 * The dispatcher's configuration: the only module that reads `process.env`.
 */
import { Type } from "@sinclair/typebox";
import type { Static } from "@sinclair/typebox";
import { HttpConfig, LogConfig, NatsConfig, PostgresConfig, SiteConfig } from "@georep/schema";
import { ConfigError, loadConfig } from "@georep/runtime";
import type { ConfigProblem, Env } from "@georep/runtime";
import type { DispatcherOptions } from "./app.js";

/** Defaults of the dispatcher's own settings. */
export const DISPATCHER_CONFIG_DEFAULTS = {
  /** JetStream domain of the primary site's NATS (the mirror reads `$JS.<domain>.API` across the leafnode). */
  PRIMARY_JS_DOMAIN: "primary",
  /** `iss` of the tokens minted for the primary registry; must equal its `auth.token.issuer`. */
  REGISTRY_TOKEN_ISSUER: "georep",
  /** 30 days, like the primary's GEO_EVENTS: a dispatcher that was down that long still sees every event. */
  DISPATCHER_GEO_EVENTS_MAX_AGE_SECONDS: 30 * 24 * 3600,
  /** JetStream replicas of the secondary's streams (1 for a single server, 3 for a cluster). */
  DISPATCHER_STREAM_REPLICAS: 1,
  /** Syncs dispatched and not finished, at most, across every dispatcher replica. */
  DISPATCHER_MAX_CONCURRENT_SYNCS: 10,
  /** How often the dispatch loop looks for work (it also runs right after events). */
  DISPATCHER_TICK_MS: 500,
  /** Events arriving within this delay are dispatched together (a burst becomes one round). */
  DISPATCHER_EVENT_DISPATCH_DELAY_MS: 25,
  /** 10 minutes between walks of the primary's catalog (0: only at start-up). */
  DISPATCHER_BACKFILL_INTERVAL_MS: 600_000,
  /** Known repositories not verified for this long are re-synced by the next backfill (0: never). */
  DISPATCHER_REVERIFY_AFTER_MS: 3_600_000,
  /** Entries asked for per catalog page (Distribution refuses more than 1000). */
  DISPATCHER_CATALOG_PAGE_SIZE: 1000,
  /** How often expired leases are released and lost jobs looked for. */
  DISPATCHER_SWEEP_INTERVAL_MS: 5_000,
  /** A row dispatched this long ago, still unclaimed and with no job left in TRANSFER_JOBS, is dispatched again. */
  DISPATCHER_LOST_JOB_AFTER_MS: 60_000,
  /** How long a TRANSFER_JOBS publish may wait for its ack. */
  DISPATCHER_PUBLISH_TIMEOUT_MS: 5_000,
  /** Messages buffered per pull from the `dispatcher` consumer. */
  DISPATCHER_BATCH_SIZE: 256,
  /** The consumer's `ack_wait`. */
  DISPATCHER_ACK_WAIT_SECONDS: 30,
  /** The consumer's `max_ack_pending`, across every replica. */
  DISPATCHER_MAX_ACK_PENDING: 1_000,
  /** `nak` delay and consumer pause when Postgres is unavailable. */
  DISPATCHER_RETRY_DELAY_MS: 5_000,
  /** Deadline of graceful shutdown (keep it below the orchestrator's grace period). */
  DISPATCHER_SHUTDOWN_TIMEOUT_MS: 25_000,
} as const;

const D = DISPATCHER_CONFIG_DEFAULTS;

/** The primary registry and how to authenticate to it (token, basic or anonymous). */
export const PrimaryRegistryConfig = Type.Object({
  PRIMARY_REGISTRY_URL: Type.String({ pattern: "^https?://", title: "registry URL", description: "Origin of the primary site's registry" }),
  PRIMARY_JS_DOMAIN: Type.String({ pattern: "^[A-Za-z0-9_-]+$", title: "JetStream domain", default: D.PRIMARY_JS_DOMAIN }),
  REGISTRY_TOKEN_KEY_FILE: Type.Optional(Type.String({ minLength: 1, description: "PEM private key shared by the sites (token auth)" })),
  REGISTRY_TOKEN_CERT_FILE: Type.Optional(Type.String({ minLength: 1, description: "Its certificate (checked against the key)" })),
  REGISTRY_TOKEN_ISSUER: Type.String({ minLength: 1, default: D.REGISTRY_TOKEN_ISSUER }),
  REGISTRY_TOKEN_SERVICE: Type.Optional(Type.String({ minLength: 1, description: "Audience before the registry named its service" })),
  REGISTRY_TOKEN_TTL_SECONDS: Type.Integer({ minimum: 1, maximum: 86_400, default: 300, description: "Lifetime of the minted registry tokens (renewed before they expire)" }),
  PRIMARY_REGISTRY_USERNAME: Type.Optional(Type.String({ minLength: 1 })),
  PRIMARY_REGISTRY_PASSWORD: Type.Optional(Type.String({ minLength: 1 })),
});

/** The `DISPATCHER_*` settings. */
export const DispatcherSettings = Type.Object({
  DISPATCHER_GEO_EVENTS_MAX_AGE_SECONDS: Type.Integer({ minimum: 60, default: D.DISPATCHER_GEO_EVENTS_MAX_AGE_SECONDS }),
  DISPATCHER_STREAM_REPLICAS: Type.Integer({ minimum: 1, maximum: 5, default: D.DISPATCHER_STREAM_REPLICAS }),
  DISPATCHER_MAX_CONCURRENT_SYNCS: Type.Integer({ minimum: 1, maximum: 100_000, default: D.DISPATCHER_MAX_CONCURRENT_SYNCS }),
  DISPATCHER_TICK_MS: Type.Integer({ minimum: 10, default: D.DISPATCHER_TICK_MS }),
  DISPATCHER_EVENT_DISPATCH_DELAY_MS: Type.Integer({ minimum: 0, default: D.DISPATCHER_EVENT_DISPATCH_DELAY_MS }),
  DISPATCHER_BACKFILL_INTERVAL_MS: Type.Integer({ minimum: 0, default: D.DISPATCHER_BACKFILL_INTERVAL_MS }),
  DISPATCHER_REVERIFY_AFTER_MS: Type.Integer({ minimum: 0, default: D.DISPATCHER_REVERIFY_AFTER_MS }),
  DISPATCHER_CATALOG_PAGE_SIZE: Type.Integer({ minimum: 1, maximum: 1000, default: D.DISPATCHER_CATALOG_PAGE_SIZE }),
  DISPATCHER_SWEEP_INTERVAL_MS: Type.Integer({ minimum: 10, default: D.DISPATCHER_SWEEP_INTERVAL_MS }),
  DISPATCHER_LOST_JOB_AFTER_MS: Type.Integer({ minimum: 1_000, default: D.DISPATCHER_LOST_JOB_AFTER_MS }),
  DISPATCHER_PUBLISH_TIMEOUT_MS: Type.Integer({ minimum: 100, default: D.DISPATCHER_PUBLISH_TIMEOUT_MS }),
  DISPATCHER_BATCH_SIZE: Type.Integer({ minimum: 1, maximum: 10_000, default: D.DISPATCHER_BATCH_SIZE }),
  DISPATCHER_ACK_WAIT_SECONDS: Type.Integer({ minimum: 1, default: D.DISPATCHER_ACK_WAIT_SECONDS }),
  DISPATCHER_MAX_ACK_PENDING: Type.Integer({ minimum: 1, default: D.DISPATCHER_MAX_ACK_PENDING }),
  DISPATCHER_RETRY_DELAY_MS: Type.Integer({ minimum: 10, default: D.DISPATCHER_RETRY_DELAY_MS }),
  DISPATCHER_SHUTDOWN_TIMEOUT_MS: Type.Integer({ minimum: 1_000, default: D.DISPATCHER_SHUTDOWN_TIMEOUT_MS }),
});

/** Everything the dispatcher reads from the environment. */
export const DispatcherConfig = Type.Composite([NatsConfig, PostgresConfig, LogConfig, HttpConfig, SiteConfig, PrimaryRegistryConfig, DispatcherSettings]);
/** The loaded configuration (deeply frozen). */
export type DispatcherConfig = Static<typeof DispatcherConfig>;

/**
 * Loads and checks the configuration: every variable against the schema,
 * then the rules that span variables. All problems are reported at once.
 *
 * @throws {ConfigError} listing every problem.
 */
export function loadDispatcherConfig(env: Env = process.env): Readonly<DispatcherConfig> {
  const problems: ConfigProblem[] = [];
  let config: Readonly<DispatcherConfig> | undefined;
  try {
    config = loadConfig(DispatcherConfig, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  const value = (name: keyof DispatcherConfig): unknown => (config === undefined ? env[name] ?? env[`${name}_FILE`] : config[name]);
  const set = (name: keyof DispatcherConfig): boolean => {
    const v = value(name);
    return v !== undefined && v !== "";
  };
  if ((config?.SITE_ROLE ?? env.SITE_ROLE) === "primary") {
    problems.push({ variable: "SITE_ROLE", message: "the dispatcher runs on secondary sites only" });
  }
  if (set("REGISTRY_TOKEN_KEY_FILE") && (set("PRIMARY_REGISTRY_USERNAME") || set("PRIMARY_REGISTRY_PASSWORD"))) {
    problems.push({ variable: "PRIMARY_REGISTRY_USERNAME", message: "give either REGISTRY_TOKEN_KEY_FILE or PRIMARY_REGISTRY_USERNAME/PASSWORD, not both" });
  }
  if (set("PRIMARY_REGISTRY_USERNAME") !== set("PRIMARY_REGISTRY_PASSWORD")) {
    problems.push({ variable: set("PRIMARY_REGISTRY_USERNAME") ? "PRIMARY_REGISTRY_PASSWORD" : "PRIMARY_REGISTRY_USERNAME", message: "PRIMARY_REGISTRY_USERNAME and PRIMARY_REGISTRY_PASSWORD go together" });
  }
  if (set("REGISTRY_TOKEN_CERT_FILE") && !set("REGISTRY_TOKEN_KEY_FILE")) {
    problems.push({ variable: "REGISTRY_TOKEN_CERT_FILE", message: "needs REGISTRY_TOKEN_KEY_FILE" });
  }
  if (config !== undefined && config.DISPATCHER_PUBLISH_TIMEOUT_MS >= config.DISPATCHER_ACK_WAIT_SECONDS * 1000) {
    problems.push({ variable: "DISPATCHER_PUBLISH_TIMEOUT_MS", message: "must be shorter than DISPATCHER_ACK_WAIT_SECONDS" });
  }
  if (problems.length > 0 || config === undefined) throw new ConfigError(problems);
  return config;
}

/** The {@link DispatcherOptions} a configuration asks for. */
export function dispatcherOptions(config: Readonly<DispatcherConfig>): DispatcherOptions {
  return {
    site: config.SITE_NAME,
    primaryJsDomain: config.PRIMARY_JS_DOMAIN,
    geoEventsMaxAgeMs: config.DISPATCHER_GEO_EVENTS_MAX_AGE_SECONDS * 1000,
    streamReplicas: config.DISPATCHER_STREAM_REPLICAS,
    maxConcurrentSyncs: config.DISPATCHER_MAX_CONCURRENT_SYNCS,
    tickMs: config.DISPATCHER_TICK_MS,
    eventDispatchDelayMs: config.DISPATCHER_EVENT_DISPATCH_DELAY_MS,
    backfillIntervalMs: config.DISPATCHER_BACKFILL_INTERVAL_MS,
    reverifyAfterMs: config.DISPATCHER_REVERIFY_AFTER_MS,
    catalogPageSize: config.DISPATCHER_CATALOG_PAGE_SIZE,
    sweepIntervalMs: config.DISPATCHER_SWEEP_INTERVAL_MS,
    lostJobAfterMs: config.DISPATCHER_LOST_JOB_AFTER_MS,
    publishTimeoutMs: config.DISPATCHER_PUBLISH_TIMEOUT_MS,
    batchSize: config.DISPATCHER_BATCH_SIZE,
    ackWaitMs: config.DISPATCHER_ACK_WAIT_SECONDS * 1000,
    maxAckPending: config.DISPATCHER_MAX_ACK_PENDING,
    retryDelayMs: config.DISPATCHER_RETRY_DELAY_MS,
  };
}

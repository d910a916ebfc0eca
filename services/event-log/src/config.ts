/**
 * The event-log's configuration: the only module that reads `process.env`.
 */
import { Type } from "@sinclair/typebox";
import type { Static } from "@sinclair/typebox";
import { HttpConfig, LogConfig, NatsConfig, PostgresConfig, SiteConfig } from "@georep/schema";
import { ConfigError, loadConfig } from "@georep/runtime";
import type { ConfigProblem, Env } from "@georep/runtime";
import type { EventLogOptions } from "./app.js";

/** Defaults of the `EVENT_LOG_*` settings. */
export const EVENT_LOG_CONFIG_DEFAULTS = {
  /** 30 days: how long REGISTRY_EVENTS, its DLQ and GEO_EVENTS keep messages. */
  EVENT_LOG_STREAM_MAX_AGE_SECONDS: 30 * 24 * 3600,
  /**
   * 2 hours, longer than the registry's retry horizon: a notification that
   * ingest published but answered 503 for is retried by Distribution with
   * the same event id, and must still be a JetStream duplicate. The outbox's
   * republications of a row (same `Nats-Msg-Id`) also fall inside it.
   */
  EVENT_LOG_DUPLICATE_WINDOW_SECONDS: 2 * 3600,
  /** JetStream replicas of the streams (1 for a single server, 3 for a cluster). */
  EVENT_LOG_STREAM_REPLICAS: 1,
  /** Messages pulled per request from the `event-log` consumer. */
  EVENT_LOG_BATCH_SIZE: 64,
  /** How often the outbox looks for rows whose publication was not confirmed. */
  EVENT_LOG_OUTBOX_INTERVAL_MS: 5_000,
  /** Rows younger than this are left to the replica that inserted them (it is probably publishing them right now). */
  EVENT_LOG_OUTBOX_GRACE_MS: 10_000,
  /** Rows republished per outbox transaction. */
  EVENT_LOG_OUTBOX_BATCH_SIZE: 500,
  /** Delay of a `nak` when Postgres or JetStream is unavailable; also the consumer's pause. */
  EVENT_LOG_RETRY_DELAY_MS: 5_000,
  /** The consumer's `ack_wait`: a message not acked by then is redelivered (to any replica). */
  EVENT_LOG_ACK_WAIT_SECONDS: 30,
  /** The consumer's `max_ack_pending`, across all replicas. 1 gives strict stream order at the cost of throughput. */
  EVENT_LOG_MAX_ACK_PENDING: 1_000,
  /** How long a JetStream publish may wait for its ack. */
  EVENT_LOG_PUBLISH_TIMEOUT_MS: 5_000,
  /** Deadline of graceful shutdown (keep it below the orchestrator's grace period). */
  EVENT_LOG_SHUTDOWN_TIMEOUT_MS: 25_000,
} as const;

const D = EVENT_LOG_CONFIG_DEFAULTS;

/** The `EVENT_LOG_*` settings. */
export const EventLogSettings = Type.Object({
  EVENT_LOG_STREAM_MAX_AGE_SECONDS: Type.Integer({ minimum: 60, default: D.EVENT_LOG_STREAM_MAX_AGE_SECONDS }),
  EVENT_LOG_DUPLICATE_WINDOW_SECONDS: Type.Integer({ minimum: 1, default: D.EVENT_LOG_DUPLICATE_WINDOW_SECONDS }),
  EVENT_LOG_STREAM_REPLICAS: Type.Integer({ minimum: 1, maximum: 5, default: D.EVENT_LOG_STREAM_REPLICAS }),
  EVENT_LOG_BATCH_SIZE: Type.Integer({ minimum: 1, maximum: 10_000, default: D.EVENT_LOG_BATCH_SIZE }),
  EVENT_LOG_OUTBOX_INTERVAL_MS: Type.Integer({ minimum: 10, default: D.EVENT_LOG_OUTBOX_INTERVAL_MS }),
  EVENT_LOG_OUTBOX_GRACE_MS: Type.Integer({ minimum: 0, default: D.EVENT_LOG_OUTBOX_GRACE_MS }),
  EVENT_LOG_OUTBOX_BATCH_SIZE: Type.Integer({ minimum: 1, maximum: 100_000, default: D.EVENT_LOG_OUTBOX_BATCH_SIZE }),
  EVENT_LOG_RETRY_DELAY_MS: Type.Integer({ minimum: 10, default: D.EVENT_LOG_RETRY_DELAY_MS }),
  EVENT_LOG_ACK_WAIT_SECONDS: Type.Integer({ minimum: 1, default: D.EVENT_LOG_ACK_WAIT_SECONDS }),
  EVENT_LOG_MAX_ACK_PENDING: Type.Integer({ minimum: 1, default: D.EVENT_LOG_MAX_ACK_PENDING }),
  EVENT_LOG_PUBLISH_TIMEOUT_MS: Type.Integer({ minimum: 100, default: D.EVENT_LOG_PUBLISH_TIMEOUT_MS }),
  EVENT_LOG_SHUTDOWN_TIMEOUT_MS: Type.Integer({ minimum: 1_000, default: D.EVENT_LOG_SHUTDOWN_TIMEOUT_MS }),
});

/** Everything event-log reads from the environment. */
export const EventLogConfig = Type.Composite([NatsConfig, PostgresConfig, LogConfig, HttpConfig, SiteConfig, EventLogSettings]);
/** The loaded configuration (deeply frozen). */
export type EventLogConfig = Static<typeof EventLogConfig>;

/**
 * Loads and checks the configuration: every variable against the schema,
 * then the rules that span variables. All problems are reported at once.
 *
 * @throws {ConfigError} listing every problem.
 */
export function loadEventLogConfig(env: Env = process.env): Readonly<EventLogConfig> {
  const problems: ConfigProblem[] = [];
  let config: Readonly<EventLogConfig> | undefined;
  try {
    config = loadConfig(EventLogConfig, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  // Checked even when other variables are wrong, so one run reports everything.
  if ((config?.SITE_ROLE ?? env.SITE_ROLE) === "secondary") {
    problems.push({
      variable: "SITE_ROLE",
      message: "event-log runs on the primary site only (a secondary's GEO_EVENTS is a mirror)",
    });
  }
  if (config !== undefined && config.EVENT_LOG_DUPLICATE_WINDOW_SECONDS > config.EVENT_LOG_STREAM_MAX_AGE_SECONDS) {
    problems.push({
      variable: "EVENT_LOG_DUPLICATE_WINDOW_SECONDS",
      message: "must not exceed EVENT_LOG_STREAM_MAX_AGE_SECONDS (JetStream refuses it)",
    });
  }
  if (config !== undefined && config.EVENT_LOG_PUBLISH_TIMEOUT_MS >= config.EVENT_LOG_ACK_WAIT_SECONDS * 1000) {
    problems.push({
      variable: "EVENT_LOG_PUBLISH_TIMEOUT_MS",
      message: "must be shorter than EVENT_LOG_ACK_WAIT_SECONDS, or messages are redelivered while still in flight",
    });
  }
  if (problems.length > 0 || config === undefined) throw new ConfigError(problems);
  return config;
}

/** The {@link EventLogOptions} a configuration asks for. */
export function eventLogOptions(config: Readonly<EventLogConfig>): EventLogOptions {
  return {
    streamMaxAgeMs: config.EVENT_LOG_STREAM_MAX_AGE_SECONDS * 1000,
    duplicateWindowMs: config.EVENT_LOG_DUPLICATE_WINDOW_SECONDS * 1000,
    streamReplicas: config.EVENT_LOG_STREAM_REPLICAS,
    batchSize: config.EVENT_LOG_BATCH_SIZE,
    outboxIntervalMs: config.EVENT_LOG_OUTBOX_INTERVAL_MS,
    outboxGraceMs: config.EVENT_LOG_OUTBOX_GRACE_MS,
    outboxBatchSize: config.EVENT_LOG_OUTBOX_BATCH_SIZE,
    retryDelayMs: config.EVENT_LOG_RETRY_DELAY_MS,
    ackWaitMs: config.EVENT_LOG_ACK_WAIT_SECONDS * 1000,
    maxAckPending: config.EVENT_LOG_MAX_ACK_PENDING,
    publishTimeoutMs: config.EVENT_LOG_PUBLISH_TIMEOUT_MS,
  };
}

/**
 * @georep/runtime: the kit every georep service uses: config loading,
 * logging, NATS and Postgres connections, migrations, graceful shutdown,
 * health checks and the HTTP error handler.
 */
export {
  ConfigError,
  HttpError,
  MigrationError,
  NatsConnectError,
  RUNTIME_ERROR_CODES,
  StreamConfigError,
} from "./errors.js";
export type { ConfigProblem, RuntimeErrorCode } from "./errors.js";

export { FILE_SUFFIX, loadConfig } from "./config.js";
export type { Env, LoadConfigOptions } from "./config.js";

export { DEFAULT_REDACT_PATHS, REDACTED, createLogger, redactUrl } from "./logger.js";
export type { Logger, LoggerOptions } from "./logger.js";

export { DEFAULT_RECONNECT_BASE_MS, DEFAULT_RECONNECT_MAX_MS, connectNats, ensureConsumer, natsConnectOptions, ensureStream, reconnectDelay } from "./nats.js";
export type { ConnectNatsOptions, EnsureConsumerAction, EnsureStreamConfig, EnsureStreamResult, NatsSettings } from "./nats.js";

export {
  DEFAULT_CONNECTION_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_POOL_SIZE,
  createDatabase,
  migrate,
} from "./database.js";
export type { Database, DatabaseOptions, MigrateOptions, Migrations } from "./database.js";

export {
  DEFAULT_SHUTDOWN_SIGNALS,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  SHUTDOWN_EXIT_CODES,
  createShutdown,
} from "./shutdown.js";
export type { Shutdown, ShutdownHook, ShutdownOptions, ShutdownProcess, ShutdownResult } from "./shutdown.js";

export { DEFAULT_CHECK_TIMEOUT_MS, HEALTH_STATUS, createHealth, healthPlugin } from "./health.js";
export type {
  CheckResult,
  Health,
  HealthCheck,
  HealthCheckOptions,
  HealthPluginOptions,
  HealthReport,
  HealthStatus,
} from "./health.js";

export { INTERNAL_ERROR_CODE, NOT_FOUND_CODE, createHttpErrorHandler, notFoundHandler } from "./http.js";
export type { HttpErrorBody } from "./http.js";

export { DURATION_BUCKETS_SECONDS, PROMETHEUS_CONTENT_TYPE, createMetricsRegistry } from "./metrics.js";
export type { Counter, Gauge, Histogram, Labels, MetricOptions, MetricsRegistry } from "./metrics.js";

export {
  SpanKind,
  activeTraceFields,
  contextFromCarrier,
  currentTraceCarrier,
  extractTraceHeaders,
  injectTraceHeaders,
  shutdownTelemetry,
  startTelemetry,
  telemetryRequested,
  withSpan,
} from "./telemetry.js";
export type { HeaderCarrier, Span, Telemetry, TelemetryOptions, TraceCarrier, TraceContextValue, WithSpanOptions } from "./telemetry.js";

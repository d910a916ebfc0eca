/**
 * Config schema pieces, one TypeBox object per concern, keyed by the
 * environment variable name. A service composes the pieces it needs:
 *
 * ```ts
 * const ServiceConfig = Type.Composite([NatsConfig, PostgresConfig, LogConfig, HttpConfig, SiteConfig]);
 * const config = loadConfig(ServiceConfig); // @georep/runtime
 * ```
 *
 * Values arrive as strings; the loader coerces numbers and booleans and
 * applies the defaults declared here. Any variable may instead be given as
 * `<NAME>_FILE` (a path whose trimmed content is the value), the usual way
 * to pass secrets such as `DATABASE_URL`.
 */
import { Type } from "@sinclair/typebox";
import type { Static } from "@sinclair/typebox";
import { SITE_NAME_PATTERN } from "./subjects.js";

/** Defaults of the config pieces. */
export const CONFIG_DEFAULTS = {
  NATS_URL: "nats://127.0.0.1:4222",
  DATABASE_POOL_SIZE: 10,
  LOG_LEVEL: "info",
  HTTP_HOST: "0.0.0.0",
  HTTP_PORT: 8080,
} as const;

/** pino log levels, plus `silent`. */
export const LOG_LEVELS = {
  FATAL: "fatal",
  ERROR: "error",
  WARN: "warn",
  INFO: "info",
  DEBUG: "debug",
  TRACE: "trace",
  SILENT: "silent",
} as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[keyof typeof LOG_LEVELS];

/** Schema of {@link LogLevel}. */
export const LogLevelSchema = Type.Union(
  [
    Type.Literal("fatal"),
    Type.Literal("error"),
    Type.Literal("warn"),
    Type.Literal("info"),
    Type.Literal("debug"),
    Type.Literal("trace"),
    Type.Literal("silent"),
  ],
  { title: "log level" },
);

/**
 * NATS connection: `NATS_URL` (comma-separated list allowed), `NATS_NAME` (client name), and the
 * service's credentials: `NATS_USER` with `NATS_PASSWORD` (what the shipped nats-server configs
 * use, one user per service), or `NATS_CREDS` (path to a .creds file, decentralized auth).
 */
export const NatsConfig = Type.Object({
  NATS_URL: Type.String({
    minLength: 1,
    default: CONFIG_DEFAULTS.NATS_URL,
    description: "NATS server URL(s), comma-separated",
  }),
  NATS_CREDS: Type.Optional(Type.String({ minLength: 1, description: "Path to the NATS user credentials (.creds) file" })),
  NATS_USER: Type.Optional(Type.String({ minLength: 1, description: "This service's NATS user (with NATS_PASSWORD)" })),
  NATS_PASSWORD: Type.Optional(Type.String({ minLength: 1, description: "This service's NATS password (secret; prefer NATS_PASSWORD_FILE)" })),
  NATS_NAME: Type.Optional(Type.String({ minLength: 1, description: "Connection name shown by the server" })),
});
/** NATS connection config. */
export type NatsConfig = Static<typeof NatsConfig>;

/** Postgres: `DATABASE_URL` (secret; prefer `DATABASE_URL_FILE`) and `DATABASE_POOL_SIZE`. */
export const PostgresConfig = Type.Object({
  DATABASE_URL: Type.String({
    pattern: "^postgres(ql)?://",
    title: "postgres URL",
    description: "postgres://user:password@host:port/database",
  }),
  DATABASE_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 1000, default: CONFIG_DEFAULTS.DATABASE_POOL_SIZE }),
});
/** Postgres config. */
export type PostgresConfig = Static<typeof PostgresConfig>;

/** Logging: `LOG_LEVEL`. */
export const LogConfig = Type.Object({
  LOG_LEVEL: Type.Union(LogLevelSchema.anyOf, { title: "log level", default: CONFIG_DEFAULTS.LOG_LEVEL }),
});
/** Logging config. */
export type LogConfig = Static<typeof LogConfig>;

/** HTTP listener: `HTTP_HOST`, `HTTP_PORT` (0 picks a free port). */
export const HttpConfig = Type.Object({
  HTTP_HOST: Type.String({ minLength: 1, default: CONFIG_DEFAULTS.HTTP_HOST }),
  HTTP_PORT: Type.Integer({ minimum: 0, maximum: 65535, default: CONFIG_DEFAULTS.HTTP_PORT }),
});
/** HTTP listener config. */
export type HttpConfig = Static<typeof HttpConfig>;

/** Site identity: `SITE_NAME` (a subject-safe token) and `SITE_ROLE` (primary | secondary). */
export const SiteConfig = Type.Object({
  SITE_NAME: Type.String({ pattern: SITE_NAME_PATTERN, title: "site name" }),
  SITE_ROLE: Type.Union([Type.Literal("primary"), Type.Literal("secondary")], { title: "site role" }),
});
/** Site identity config. */
export type SiteConfig = Static<typeof SiteConfig>;

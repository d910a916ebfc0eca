/**
 * pino loggers with secrets redacted.
 */
import pino from "pino";
import type { DestinationStream, Logger, LevelWithSilent } from "pino";
import { activeTraceFields } from "./telemetry.js";

/** A georep logger (pino). */
export type { Logger } from "pino";

const SECRET_KEYS = [
  "password",
  "passwd",
  "pass",
  "secret",
  "token",
  "accessToken",
  "access_token",
  "refreshToken",
  "refresh_token",
  "apiKey",
  "api_key",
  "authorization",
  "Authorization",
  "cookie",
  "Cookie",
  "credentials",
  "creds",
  "privateKey",
  "private_key",
  "DATABASE_URL",
  "NATS_PASSWORD",
  "connectionString",
] as const;

/**
 * Paths pino censors in every log line: the secret-looking keys above at the
 * top level and one or two levels deep (`*.password`, `*.*.password`), plus
 * the HTTP header spots fastify and undici use.
 */
export const DEFAULT_REDACT_PATHS: readonly string[] = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => `*.${k}`),
  ...SECRET_KEYS.map((k) => `*.*.${k}`),
  'req.headers["set-cookie"]',
  'res.headers["set-cookie"]',
  'headers["set-cookie"]',
  'req.headers["x-registry-token"]',
  'req.headers["proxy-authorization"]',
];

/** What redacted values are replaced with. */
export const REDACTED = "[REDACTED]";

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Service or component name, logged as `name`. */
  readonly name: string;
  /** Minimum level; default `info`. */
  readonly level?: LevelWithSilent;
  /** Where lines go; default stdout. Tests pass a stream to capture output. */
  readonly destination?: DestinationStream;
  /** More paths to redact, in pino's path syntax. */
  readonly redact?: readonly string[];
  /** Fields added to every line (e.g. `{ site: "eu-1" }`). */
  readonly base?: Readonly<Record<string, unknown>>;
}

/**
 * A JSON logger: ISO timestamps, level names instead of numbers, secrets
 * replaced by `[REDACTED]`. Use `logger.child({ reqId })` /
 * `logger.child({ subject, seq })` per request or message.
 */
export function createLogger(options: LoggerOptions): Logger {
  const opts: pino.LoggerOptions = {
    name: options.name,
    level: options.level ?? "info",
    base: { pid: process.pid, ...options.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: [...DEFAULT_REDACT_PATHS, ...(options.redact ?? [])], censor: REDACTED },
    // Lines logged inside a span carry its ids, so logs and traces join up.
    mixin: activeTraceFields,
  };
  return options.destination === undefined ? pino(opts) : pino(opts, options.destination);
}

/**
 * A URL with its password (and username token) replaced, for logging
 * connection strings: `postgres://u:pw@h/db` → `postgres://u:***@h/db`.
 * Strings that are not URLs are returned as `[unparsable url]`.
 */
export function redactUrl(url: string): string {
  // Credentials before an `@` that URL parsing does not see as such (`user:pw@host:4222`) go too.
  const opaque = (text: string) => (text.includes("@") ? `***@${text.slice(text.lastIndexOf("@") + 1)}` : text);
  try {
    const u = new URL(url);
    if (u.host === "") return opaque(url);
    if (u.password !== "") u.password = "***";
    return u.toString();
  } catch {
    // `host:port` (how nats reports a server) has nothing to hide; anything else is not echoed.
    const plain = opaque(url);
    return /^(\*\*\*@)?[A-Za-z0-9.-]+:\d+$/.test(plain) || /^\[[0-9A-Fa-f:.]+\]:\d+$/.test(plain) ? plain : "[unparsable url]";
  }
}

/**
 * The status service's configuration: the only module that reads
 * `process.env` (docs/status-api.md, "Configuration").
 */
import { Type } from "@sinclair/typebox";
import type { Static } from "@sinclair/typebox";
import { HttpConfig, LogConfig, NatsConfig, PostgresConfig, SiteConfig } from "@georep/schema";
import { ConfigError, loadConfig } from "@georep/runtime";
import type { ConfigProblem, Env } from "@georep/runtime";
import type { StatusOptions } from "./app.js";

/** Defaults of the status service's own settings. */
export const STATUS_CONFIG_DEFAULTS = {
  /** How often this site publishes its SiteStatusReport. */
  STATUS_REPORT_INTERVAL_MS: 5_000,
  /** `iss` of the tokens minted with REGISTRY_TOKEN_KEY_FILE (the registries' `auth.token.issuer`). */
  REGISTRY_TOKEN_ISSUER: "georep",
  /** Requests in flight to each registry at once (repository detail, replication wait). */
  STATUS_REGISTRY_MAX_REQUESTS: 8,
  /** How long an action waits for the dispatcher's answer over NATS. */
  STATUS_RESYNC_TIMEOUT_MS: 5_000,
  /** Deadline of graceful shutdown. */
  STATUS_SHUTDOWN_TIMEOUT_MS: 10_000,
} as const;

const D = STATUS_CONFIG_DEFAULTS;
const optional = (description: string) => Type.Optional(Type.String({ minLength: 1, description }));
const registryUrl = (description: string) => Type.Optional(Type.String({ pattern: "^https?://[^/]+/?$", title: "registry URL (http(s)://host[:port])", description }));

/** The status service's own variables. */
export const StatusSettings = Type.Object({
  STATUS_ADMIN_TOKEN: Type.String({ minLength: 16, description: "bearer token of the actions (prefer STATUS_ADMIN_TOKEN_FILE); at least 16 characters" }),
  STATUS_REPORT_INTERVAL_MS: Type.Integer({ minimum: 50, default: D.STATUS_REPORT_INTERVAL_MS }),
  STATUS_STALE_AFTER_MS: Type.Optional(Type.Integer({ minimum: 100, description: "a site without a report for this long is stale; default 3 × STATUS_REPORT_INTERVAL_MS" })),
  STATUS_REGISTRY_MAX_REQUESTS: Type.Integer({ minimum: 1, maximum: 256, default: D.STATUS_REGISTRY_MAX_REQUESTS }),
  STATUS_RESYNC_TIMEOUT_MS: Type.Integer({ minimum: 100, default: D.STATUS_RESYNC_TIMEOUT_MS }),
  STATUS_SHUTDOWN_TIMEOUT_MS: Type.Integer({ minimum: 1_000, default: D.STATUS_SHUTDOWN_TIMEOUT_MS }),
  PRIMARY_REGISTRY_URL: registryUrl("the primary site's registry (secondary only), read with pull access"),
  SECONDARY_REGISTRY_URL: registryUrl("this site's registry (secondary only), read with pull access"),
  PRIMARY_REGISTRY_USERNAME: optional("basic credentials for the primary registry"),
  PRIMARY_REGISTRY_PASSWORD: optional("password for PRIMARY_REGISTRY_USERNAME (prefer PRIMARY_REGISTRY_PASSWORD_FILE)"),
  SECONDARY_REGISTRY_USERNAME: optional("basic credentials for this site's registry"),
  SECONDARY_REGISTRY_PASSWORD: optional("password for SECONDARY_REGISTRY_USERNAME (prefer SECONDARY_REGISTRY_PASSWORD_FILE)"),
  REGISTRY_TOKEN_KEY_FILE: optional("PEM private key shared by the sites: pull-only registry tokens are minted locally; also signs the /token endpoint's tokens"),
  REGISTRY_TOKEN_CERT_FILE: optional("certificate of REGISTRY_TOKEN_KEY_FILE (checked against the key)"),
  REGISTRY_TOKEN_ISSUER: Type.String({ minLength: 1, default: D.REGISTRY_TOKEN_ISSUER, description: "`iss` the registries trust" }),
  REGISTRY_TOKEN_SERVICE: optional("audience of minted tokens before a registry named its service"),
  STATUS_TOKEN_USERS_FILE: optional("users file of the /token endpoint (mounted with REGISTRY_TOKEN_KEY_FILE and STATUS_TOKEN_SERVICE)"),
  STATUS_TOKEN_SERVICE: optional("service name(s), comma-separated, the /token endpoint issues tokens for (the registries' auth.token.service)"),
});

/** Everything the status service reads from the environment. */
export const StatusConfig = Type.Composite([NatsConfig, PostgresConfig, LogConfig, HttpConfig, SiteConfig, StatusSettings]);
/** The loaded configuration (deeply frozen). */
export type StatusConfig = Static<typeof StatusConfig>;

/**
 * Loads and checks the configuration: every variable against the schema,
 * then the rules between variables. All problems are reported at once.
 *
 * @throws {ConfigError} listing every problem (never a value).
 */
export function loadStatusConfig(env: Env = process.env): Readonly<StatusConfig> {
  const problems: ConfigProblem[] = [];
  let config: Readonly<StatusConfig> | undefined;
  try {
    config = loadConfig(StatusConfig, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  const set = (name: string): boolean => (env[name] ?? "") !== "" || (env[`${name}_FILE`] ?? "") !== "";
  const role = config?.SITE_ROLE ?? env.SITE_ROLE;
  if (role === "secondary") {
    for (const name of ["PRIMARY_REGISTRY_URL", "SECONDARY_REGISTRY_URL"]) {
      if (!set(name)) problems.push({ variable: name, message: "required on a secondary site" });
    }
  }
  for (const side of ["PRIMARY", "SECONDARY"] as const) {
    const user = `${side}_REGISTRY_USERNAME`;
    const password = `${side}_REGISTRY_PASSWORD`;
    if (set(user) !== set(password)) problems.push({ variable: set(user) ? password : user, message: `set both ${user} and ${password}, or neither` });
  }
  if (set("REGISTRY_TOKEN_CERT_FILE") && !set("REGISTRY_TOKEN_KEY_FILE")) {
    problems.push({ variable: "REGISTRY_TOKEN_KEY_FILE", message: "required with REGISTRY_TOKEN_CERT_FILE" });
  }
  if (set("STATUS_TOKEN_USERS_FILE") || set("STATUS_TOKEN_SERVICE")) {
    for (const name of ["STATUS_TOKEN_USERS_FILE", "STATUS_TOKEN_SERVICE", "REGISTRY_TOKEN_KEY_FILE"]) {
      if (!set(name)) problems.push({ variable: name, message: "required for the /token endpoint (STATUS_TOKEN_USERS_FILE, STATUS_TOKEN_SERVICE and REGISTRY_TOKEN_KEY_FILE go together)" });
    }
  }
  if (config !== undefined) {
    const staleAfter = config.STATUS_STALE_AFTER_MS;
    if (staleAfter !== undefined && staleAfter <= config.STATUS_REPORT_INTERVAL_MS) {
      problems.push({ variable: "STATUS_STALE_AFTER_MS", message: "must be longer than STATUS_REPORT_INTERVAL_MS" });
    }
    const primary = config.PRIMARY_REGISTRY_URL?.replace(/\/$/, "");
    if (role === "secondary" && primary !== undefined && primary === config.SECONDARY_REGISTRY_URL?.replace(/\/$/, "")) {
      problems.push({ variable: "SECONDARY_REGISTRY_URL", message: "must differ from PRIMARY_REGISTRY_URL" });
    }
  }
  if (problems.length > 0 || config === undefined) throw new ConfigError(problems);
  return config;
}

/** The {@link StatusOptions} a configuration asks for. */
export function statusOptions(config: Readonly<StatusConfig>): StatusOptions {
  return {
    site: config.SITE_NAME,
    role: config.SITE_ROLE,
    reportIntervalMs: config.STATUS_REPORT_INTERVAL_MS,
    staleAfterMs: config.STATUS_STALE_AFTER_MS ?? 3 * config.STATUS_REPORT_INTERVAL_MS,
    resyncTimeoutMs: config.STATUS_RESYNC_TIMEOUT_MS,
  };
}

/** How one registry is reached: basic credentials, tokens minted with the shared key, or anonymous. */
export type RegistryAuthConfig =
  | { readonly type: "anonymous" }
  | { readonly type: "basic"; readonly username: string; readonly password: string }
  | {
      readonly type: "token-key";
      readonly keyFile: string;
      readonly certFile: string | undefined;
      readonly issuer: string;
      readonly subject: string;
      readonly service: string | undefined;
    };

/** Where a registry is and how to authenticate to it (always read-only: pull). */
export interface RegistryEndpointConfig {
  readonly url: string;
  readonly auth: RegistryAuthConfig;
  readonly maxConcurrentRequests: number;
}

/**
 * The two registries a secondary's status service reads, or `undefined` on
 * the primary. Per side: basic credentials win, else the shared signing key
 * mints pull-only tokens (subject = the site name), else anonymous.
 */
export function registryEndpoints(config: Readonly<StatusConfig>): { primary: RegistryEndpointConfig; secondary: RegistryEndpointConfig } | undefined {
  if (config.SITE_ROLE !== "secondary" || config.PRIMARY_REGISTRY_URL === undefined || config.SECONDARY_REGISTRY_URL === undefined) return undefined;
  const side = (url: string, username: string | undefined, password: string | undefined): RegistryEndpointConfig => {
    let auth: RegistryAuthConfig = { type: "anonymous" };
    if (username !== undefined && password !== undefined) auth = { type: "basic", username, password };
    else if (config.REGISTRY_TOKEN_KEY_FILE !== undefined) {
      auth = {
        type: "token-key",
        keyFile: config.REGISTRY_TOKEN_KEY_FILE,
        certFile: config.REGISTRY_TOKEN_CERT_FILE,
        issuer: config.REGISTRY_TOKEN_ISSUER,
        subject: config.SITE_NAME,
        service: config.REGISTRY_TOKEN_SERVICE,
      };
    }
    return { url: url.replace(/\/$/, ""), auth, maxConcurrentRequests: config.STATUS_REGISTRY_MAX_REQUESTS };
  };
  return {
    primary: side(config.PRIMARY_REGISTRY_URL, config.PRIMARY_REGISTRY_USERNAME, config.PRIMARY_REGISTRY_PASSWORD),
    secondary: side(config.SECONDARY_REGISTRY_URL, config.SECONDARY_REGISTRY_USERNAME, config.SECONDARY_REGISTRY_PASSWORD),
  };
}

/** What the /token endpoint needs, when it is configured. */
export interface TokenEndpointConfig {
  readonly usersFile: string;
  readonly keyFile: string;
  readonly certFile: string | undefined;
  readonly issuer: string;
  readonly services: readonly string[];
}

/** The /token endpoint's settings, or `undefined` when it is not mounted. */
export function tokenEndpointConfig(config: Readonly<StatusConfig>): TokenEndpointConfig | undefined {
  if (config.STATUS_TOKEN_USERS_FILE === undefined || config.STATUS_TOKEN_SERVICE === undefined || config.REGISTRY_TOKEN_KEY_FILE === undefined) return undefined;
  return {
    usersFile: config.STATUS_TOKEN_USERS_FILE,
    keyFile: config.REGISTRY_TOKEN_KEY_FILE,
    certFile: config.REGISTRY_TOKEN_CERT_FILE,
    issuer: config.REGISTRY_TOKEN_ISSUER,
    services: config.STATUS_TOKEN_SERVICE.split(",").map((s) => s.trim()).filter((s) => s !== ""),
  };
}

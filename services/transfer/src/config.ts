/**
 * The transfer service's configuration: the only module that reads
 * `process.env`.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { Type } from "@sinclair/typebox";
import type { Static } from "@sinclair/typebox";
import { HttpConfig, LogConfig, NatsConfig, PostgresConfig, SiteConfig } from "@georep/schema";
import { ConfigError, loadConfig } from "@georep/runtime";
import type { ConfigProblem, Env } from "@georep/runtime";
import type { TransferOptions } from "./app.js";

/** Defaults of the transfer settings. */
export const TRANSFER_CONFIG_DEFAULTS = {
  /** Repository syncs one process runs at once. */
  TRANSFER_CONCURRENCY: 8,
  /** Blobs one sync copies at once. */
  TRANSFER_BLOB_CONCURRENCY: 4,
  /** Lease on a repository's tracking row; renewed every third of it while the sync runs. */
  TRANSFER_LEASE_MS: 60_000,
  /** The `transfer` consumer's `ack_wait`; long syncs send `working()` every third of it. */
  TRANSFER_ACK_WAIT_MS: 60_000,
  /** First retry delay after a failed sync (exponential, with jitter). */
  TRANSFER_BACKOFF_BASE_MS: 10_000,
  /** Longest retry delay (1 hour, DESIGN.md). */
  TRANSFER_BACKOFF_CAP_MS: 3_600_000,
  /** Requests in flight to each registry at once. */
  TRANSFER_REGISTRY_MAX_REQUESTS: 8,
  /** Deadline of graceful shutdown; in-flight syncs get most of it, then are handed back. */
  TRANSFER_SHUTDOWN_TIMEOUT_MS: 25_000,
  /** `iss` of the registry tokens minted with `REGISTRY_TOKEN_KEY_FILE`. */
  REGISTRY_TOKEN_ISSUER: "georep",
  /** Event syncs may be incremental while the last full sync is younger than this. */
  TRANSFER_FULL_SYNC_AFTER_MS: 300_000,
  /** Lifetime of the tokens minted (the jwt package's default, 5 minutes). */
  REGISTRY_TOKEN_TTL_SECONDS: 300,
  /** Blobs copied at once on the primary's blob push hints. */
  TRANSFER_PREFETCH_CONCURRENCY: 4,
} as const;

const D = TRANSFER_CONFIG_DEFAULTS;
const url = (description: string) => Type.String({ pattern: "^https?://[^/]+/?$", title: "registry URL (http(s)://host[:port])", description });
const optional = (description: string) => Type.Optional(Type.String({ minLength: 1, description }));

/** The transfer service's own variables. */
export const TransferSettings = Type.Object({
  PRIMARY_REGISTRY_URL: url("the primary site's registry, read (pull) only"),
  SECONDARY_REGISTRY_URL: url("this site's registry, written"),
  PRIMARY_REGISTRY_USERNAME: optional("basic credentials for the primary (also sent to its token endpoint)"),
  PRIMARY_REGISTRY_PASSWORD: optional("password for PRIMARY_REGISTRY_USERNAME (prefer PRIMARY_REGISTRY_PASSWORD_FILE)"),
  SECONDARY_REGISTRY_USERNAME: optional("basic credentials for the secondary (also sent to its token endpoint)"),
  SECONDARY_REGISTRY_PASSWORD: optional("password for SECONDARY_REGISTRY_USERNAME (prefer SECONDARY_REGISTRY_PASSWORD_FILE)"),
  REGISTRY_TOKEN_KEY_FILE: optional("PEM private key shared by the sites: registry tokens are minted locally (pull for the primary, pull+push+delete for the secondary)"),
  REGISTRY_TOKEN_CERT_FILE: optional("certificate of REGISTRY_TOKEN_KEY_FILE (checked against the key)"),
  REGISTRY_TOKEN_ISSUER: Type.String({ minLength: 1, default: D.REGISTRY_TOKEN_ISSUER, description: "`iss` the registries trust" }),
  REGISTRY_TOKEN_SUBJECT: optional("`sub` of minted tokens; default SITE_NAME"),
  REGISTRY_TOKEN_TTL_SECONDS: Type.Integer({ minimum: 1, maximum: 86_400, default: D.REGISTRY_TOKEN_TTL_SECONDS, description: "lifetime of minted registry tokens (renewed before they expire)" }),
  TRANSFER_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, default: D.TRANSFER_CONCURRENCY }),
  TRANSFER_BLOB_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 64, default: D.TRANSFER_BLOB_CONCURRENCY }),
  TRANSFER_BLOB_PREFETCH: Type.Boolean({ default: true, description: "copy the blobs the primary's ingest announces (georep.blobs.pushed) before their manifest arrives" }),
  TRANSFER_PREFETCH_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 64, default: D.TRANSFER_PREFETCH_CONCURRENCY }),
  // An event sync that trusts the last verified tag map costs a few requests instead of two per
  // tag; a full sync every TRANSFER_FULL_SYNC_AFTER_MS still finds what no event told.
  TRANSFER_INCREMENTAL_SYNCS: Type.Boolean({ default: true, description: "event syncs resolve only the tags events named, trusting the last verified tag map" }),
  TRANSFER_FULL_SYNC_AFTER_MS: Type.Integer({
    minimum: 0,
    default: D.TRANSFER_FULL_SYNC_AFTER_MS,
    description: "an event sync is full when the repository's last full sync is older than this (0: always full)",
  }),
  TRANSFER_LEASE_MS: Type.Integer({ minimum: 1_000, default: D.TRANSFER_LEASE_MS }),
  TRANSFER_ACK_WAIT_MS: Type.Integer({ minimum: 1_000, default: D.TRANSFER_ACK_WAIT_MS }),
  TRANSFER_BACKOFF_BASE_MS: Type.Integer({ minimum: 1, default: D.TRANSFER_BACKOFF_BASE_MS }),
  TRANSFER_BACKOFF_CAP_MS: Type.Integer({ minimum: 1, default: D.TRANSFER_BACKOFF_CAP_MS }),
  TRANSFER_CHUNK_SIZE: Type.Optional(Type.Integer({ minimum: 1024 * 1024, description: "upload PATCH size in bytes; unset: one request per blob" })),
  TRANSFER_REGISTRY_MAX_REQUESTS: Type.Integer({ minimum: 1, maximum: 1024, default: D.TRANSFER_REGISTRY_MAX_REQUESTS }),
  TRANSFER_SHUTDOWN_TIMEOUT_MS: Type.Integer({ minimum: 1_000, default: D.TRANSFER_SHUTDOWN_TIMEOUT_MS }),
  TRANSFER_WORKER_ID: optional("lease owner name; default <SITE_NAME>/<hostname>/<pid>/<random>"),
});

/** Everything transfer reads from the environment. */
export const TransferConfig = Type.Composite([NatsConfig, PostgresConfig, LogConfig, HttpConfig, SiteConfig, TransferSettings]);
/** The loaded configuration (deeply frozen). */
export type TransferConfig = Static<typeof TransferConfig>;

/**
 * Loads and checks the configuration, every variable against the schema,
 * then the rules between variables, reporting all problems at once.
 *
 * @throws {ConfigError} listing every problem (never a value).
 */
export function loadTransferConfig(env: Env = process.env): Readonly<TransferConfig> {
  const problems: ConfigProblem[] = [];
  let config: Readonly<TransferConfig> | undefined;
  try {
    config = loadConfig(TransferConfig, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  const set = (name: string) => (env[name] ?? "") !== "" || (env[`${name}_FILE`] ?? "") !== "";
  if ((config?.SITE_ROLE ?? env.SITE_ROLE) === "primary") {
    problems.push({ variable: "SITE_ROLE", message: "transfer runs on secondary sites only" });
  }
  for (const side of ["PRIMARY", "SECONDARY"] as const) {
    const user = `${side}_REGISTRY_USERNAME`;
    const password = `${side}_REGISTRY_PASSWORD`;
    if (set(user) !== set(password)) problems.push({ variable: set(user) ? password : user, message: `set both ${user} and ${password}, or neither` });
  }
  if (set("REGISTRY_TOKEN_CERT_FILE") && !set("REGISTRY_TOKEN_KEY_FILE")) {
    problems.push({ variable: "REGISTRY_TOKEN_KEY_FILE", message: "required with REGISTRY_TOKEN_CERT_FILE" });
  }
  if (config !== undefined) {
    if (config.TRANSFER_BACKOFF_CAP_MS < config.TRANSFER_BACKOFF_BASE_MS) {
      problems.push({ variable: "TRANSFER_BACKOFF_CAP_MS", message: "must not be less than TRANSFER_BACKOFF_BASE_MS" });
    }
    if (config.PRIMARY_REGISTRY_URL.replace(/\/$/, "") === config.SECONDARY_REGISTRY_URL.replace(/\/$/, "")) {
      problems.push({ variable: "SECONDARY_REGISTRY_URL", message: "must differ from PRIMARY_REGISTRY_URL" });
    }
  }
  if (problems.length > 0 || config === undefined) throw new ConfigError(problems);
  return config;
}

/** How one side authenticates: basic (also at its token endpoint), locally minted tokens, or anonymous. */
export type RegistryAuthConfig =
  | { readonly type: "anonymous" }
  | { readonly type: "basic"; readonly username: string; readonly password: string }
  | {
      readonly type: "token-key";
      readonly keyFile: string;
      readonly certFile: string | undefined;
      readonly issuer: string;
      readonly subject: string;
      /** Lifetime of each minted token. */
      readonly ttlSeconds?: number;
      /** The actions minted tokens may grant. */
      readonly allowedActions: readonly string[];
    };

/** Where a registry is and how to authenticate to it. */
export interface RegistryEndpointConfig {
  readonly url: string;
  readonly auth: RegistryAuthConfig;
  readonly maxConcurrentRequests: number;
}

/**
 * Each side's endpoint. Basic credentials of that side win; else the shared
 * signing key mints tokens (pull-only for the primary, so a bug can never
 * write there; pull, push and delete for the secondary); else anonymous.
 */
export function registryEndpoints(config: Readonly<TransferConfig>): { primary: RegistryEndpointConfig; secondary: RegistryEndpointConfig } {
  const side = (url: string, username: string | undefined, password: string | undefined, allowedActions: readonly string[]): RegistryEndpointConfig => {
    let auth: RegistryAuthConfig = { type: "anonymous" };
    if (username !== undefined && password !== undefined) auth = { type: "basic", username, password };
    else if (config.REGISTRY_TOKEN_KEY_FILE !== undefined) {
      auth = {
        type: "token-key",
        keyFile: config.REGISTRY_TOKEN_KEY_FILE,
        certFile: config.REGISTRY_TOKEN_CERT_FILE,
        issuer: config.REGISTRY_TOKEN_ISSUER,
        subject: config.REGISTRY_TOKEN_SUBJECT ?? config.SITE_NAME,
        ttlSeconds: config.REGISTRY_TOKEN_TTL_SECONDS,
        allowedActions,
      };
    }
    return { url, auth, maxConcurrentRequests: config.TRANSFER_REGISTRY_MAX_REQUESTS };
  };
  return {
    primary: side(config.PRIMARY_REGISTRY_URL, config.PRIMARY_REGISTRY_USERNAME, config.PRIMARY_REGISTRY_PASSWORD, ["pull"]),
    secondary: side(config.SECONDARY_REGISTRY_URL, config.SECONDARY_REGISTRY_USERNAME, config.SECONDARY_REGISTRY_PASSWORD, ["pull", "push", "delete"]),
  };
}

/** The {@link TransferOptions} a configuration asks for. */
export function transferOptions(config: Readonly<TransferConfig>, pid: number = process.pid): TransferOptions {
  return {
    workerId: config.TRANSFER_WORKER_ID ?? `${config.SITE_NAME}/${hostname()}/${pid}/${randomBytes(3).toString("hex")}`,
    site: config.SITE_NAME,
    concurrency: config.TRANSFER_CONCURRENCY,
    incrementalSyncs: config.TRANSFER_INCREMENTAL_SYNCS,
    fullSyncAfterMs: config.TRANSFER_FULL_SYNC_AFTER_MS,
    leaseMs: config.TRANSFER_LEASE_MS,
    ackWaitMs: config.TRANSFER_ACK_WAIT_MS,
    backoff: { baseMs: config.TRANSFER_BACKOFF_BASE_MS, capMs: config.TRANSFER_BACKOFF_CAP_MS },
    sync: {
      blobConcurrency: config.TRANSFER_BLOB_CONCURRENCY,
      deleteMissing: true,
      ...(config.TRANSFER_CHUNK_SIZE === undefined ? {} : { chunkSize: config.TRANSFER_CHUNK_SIZE }),
    },
    // In-flight syncs get most of the shutdown deadline; the rest closes NATS and Postgres.
    drainTimeoutMs: Math.max(500, config.TRANSFER_SHUTDOWN_TIMEOUT_MS - 5_000),
    ...(config.TRANSFER_BLOB_PREFETCH ? { prefetch: { concurrency: config.TRANSFER_PREFETCH_CONCURRENCY } } : {}),
  };
}

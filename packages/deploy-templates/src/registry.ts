/**
 * The CNCF Distribution 2.8 config georep runs its registries with: the local
 * stack (through `@georep/testing`'s `startRegistry`) and the compose files
 * (`deploy/generate.mjs`). Reference: Distribution's `docs/configuration.md`.
 */
import { commentLines, toYaml } from "./yaml.js";
import type { YamlValue } from "./yaml.js";

/** Docker token auth: Distribution trusts JWTs signed by a key whose certificate is in `rootCertBundle`. */
export interface TokenAuthOptions {
  /** Where clients get tokens (the status service's `/token`, as clients reach it). */
  readonly realm: string;
  /** The registry's name in tokens (`aud`). */
  readonly service: string;
  /** `iss` the registry accepts. */
  readonly issuer: string;
  /** Path of the PEM certificate(s) of the signing key, as the registry sees it. */
  readonly rootCertBundle: string;
}

/** Basic auth with a bcrypt htpasswd file. */
export interface HtpasswdAuthOptions {
  readonly realm: string;
  readonly path: string;
}

/** `auth:` of the config: token or htpasswd. */
export type RegistryAuthOptions = { readonly token: TokenAuthOptions } | { readonly htpasswd: HtpasswdAuthOptions };

/** One notification endpoint (`notifications.endpoints[]`). */
export interface NotificationEndpoint {
  readonly url: string;
  /** Default `endpoint-<n>` (1-based position). */
  readonly name?: string;
  /** One value per header (rendered as the one-element list Distribution expects). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Default {@link DEFAULT_NOTIFICATION_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
  /** Failures before the endpoint backs off; default {@link DEFAULT_NOTIFICATION_THRESHOLD}. */
  readonly threshold?: number;
  /** Default {@link DEFAULT_NOTIFICATION_BACKOFF_MS}. */
  readonly backoffMs?: number;
  /**
   * Media types not sent. Distribution 2.8 applies `ignoredActions` only
   * together with a non-empty list here.
   */
  readonly ignoredMediaTypes?: readonly string[];
  readonly ignoredActions?: readonly string[];
}

/** A scalar storage driver parameter. */
export type StorageParameter = string | number | boolean;

/** Where blobs live: a local directory, or S3 with its driver parameters passed through as given. */
export type RegistryStorage =
  | { readonly filesystem: { readonly rootDirectory: string } }
  /** Distribution's `storage.s3` parameters (`region`, `bucket`, `regionendpoint`, `rootdirectory`…), unchanged. */
  | { readonly s3: Readonly<Record<string, StorageParameter>> };

/** Options of {@link registryConfig}. */
export interface RegistryConfigOptions {
  /** `http.addr`: `host:port`, or `:port` for every interface. */
  readonly addr: string;
  readonly storage: RegistryStorage;
  /**
   * `storage.redirect.disable`: serve blobs through the registry instead of
   * redirecting clients to the storage backend (S3). Omitted when undefined.
   */
  readonly disableRedirect?: boolean;
  /**
   * `storage.cache.blobdescriptor`: where the registry caches blob
   * descriptors (size, media type) instead of reading them from storage on
   * every blob HEAD and manifest PUT. Default `inmemory` (per process,
   * unbounded in 2.8; use `redis` with `extraConfig` for large registries or
   * several replicas); `none` leaves it out.
   */
  readonly blobDescriptorCache?: "inmemory" | "none";
  /** `storage.maintenance.uploadpurging.enabled`; Distribution's default (on) when undefined. */
  readonly uploadPurging?: boolean;
  /** `http.secret` (replicas behind one load balancer need the same). Omitted when undefined. */
  readonly httpSecret?: string;
  /** Headers every response carries (`http.headers`), beside `X-Content-Type-Options: nosniff`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** `http.debug`: health (`/debug/health`) and, with `prometheus`, metrics at `/metrics`. */
  readonly debug?: { readonly addr: string; readonly prometheus?: boolean };
  /** Default {@link DEFAULT_REGISTRY_LOG}. */
  readonly log?: { readonly level: string; readonly formatter: "text" | "json" | "logstash" };
  readonly auth?: RegistryAuthOptions;
  readonly notifications?: readonly NotificationEndpoint[];
  /** Merged over the generated config (maps key by key, anything else replaced). */
  readonly extraConfig?: Readonly<Record<string, YamlValue>>;
  /** Comment lines at the top of the file. */
  readonly header?: string;
}

export const DEFAULT_NOTIFICATION_TIMEOUT_MS = 2000;
export const DEFAULT_NOTIFICATION_THRESHOLD = 5;
export const DEFAULT_NOTIFICATION_BACKOFF_MS = 500;
export const DEFAULT_REGISTRY_LOG = { level: "info", formatter: "text" } as const;

/**
 * Default log of a registry that sends notifications: Distribution 2.8 logs
 * every endpoint's headers at `info` when it starts (`configuring endpoint …
 * headers=map[Authorization:[<secret>]]`), which would put ingest's secret in
 * the log, so such a registry logs from `warn` up. Raise it only to debug,
 * knowing the secret is then in the log.
 */
export const NOTIFYING_REGISTRY_LOG = { level: "warn", formatter: "text" } as const;

/** Name of the notification endpoint that feeds ingest. */
export const INGEST_ENDPOINT_NAME = "georep-ingest";
/** The path ingest takes notifications on (the one GitLab operators already configure). */
export const INGEST_EVENTS_PATH = "/api/v4/container_registry_event/events";
/** Name of the second endpoint, which sends ingest the blob pushes only (for the blob prefetch). */
export const INGEST_BLOBS_ENDPOINT_NAME = "georep-ingest-blobs";
/** The path ingest takes blob pushes on: announced to the secondaries, never stored. */
export const INGEST_BLOB_EVENTS_PATH = "/api/v4/container_registry_event/blob-events";
/** Media types of manifest events: the blob endpoint leaves them to the main one. */
export const MANIFEST_EVENT_MEDIA_TYPES: readonly string[] = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.artifact.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/**
 * The endpoint that sends a primary registry's events to ingest, with the
 * settings georep runs with everywhere: pulls are most of the traffic and
 * useless to replication, so they are ignored (2.8 applies `ignore.actions`
 * only with a non-empty `ignore.mediatypes`, hence blob media types too:
 * blob pushes have an endpoint of their own, {@link ingestBlobNotificationEndpoint});
 * a 5 s timeout and 1 s backoff, since ingest answers 503 while JetStream
 * is unavailable and Distribution retries.
 *
 * @param ingestUrl ingest's origin (`http://ingest:8080`)
 * @param authorization the `Authorization` header value (ingest's `INGEST_SECRET`)
 */
export function ingestNotificationEndpoint(ingestUrl: string, authorization: string): NotificationEndpoint {
  return ingestEndpoint(INGEST_ENDPOINT_NAME, ingestUrl, INGEST_EVENTS_PATH, authorization, { ignoredMediaTypes: ["application/octet-stream"], ignoredActions: ["pull"] });
}

/** An endpoint on ingest: its path, the secret, the 5 s timeout and 1 s backoff, and what the registry leaves out. */
function ingestEndpoint(name: string, ingestUrl: string, path: string, authorization: string, ignore: Pick<NotificationEndpoint, "ignoredMediaTypes" | "ignoredActions">): NotificationEndpoint {
  return { name, url: `${ingestUrl.replace(/\/+$/, "")}${path}`, headers: { Authorization: authorization }, timeoutMs: 5000, backoffMs: 1000, ...ignore };
}

/**
 * The endpoint that sends ingest the blob pushes, which it announces to the
 * secondaries (the blob prefetch, docs/adr-004-blob-prefetch.md): manifest
 * media types, pulls, deletes and mounts ignored. Distribution sends each
 * endpoint's events one request at a time, from a queue of its own: a blob
 * per layer on the main endpoint would double its requests and delay the
 * manifest events behind them (measured: 20–80 ms became 0.3–2.3 s at 20
 * pushes/s); here a backlog only delays hints.
 */
export function ingestBlobNotificationEndpoint(ingestUrl: string, authorization: string): NotificationEndpoint {
  return ingestEndpoint(INGEST_BLOBS_ENDPOINT_NAME, ingestUrl, INGEST_BLOB_EVENTS_PATH, authorization, { ignoredMediaTypes: [...MANIFEST_EVENT_MEDIA_TYPES], ignoredActions: ["pull", "delete", "mount"] });
}

const duration = (ms: number) => `${ms}ms`;

function endpointValue(endpoint: NotificationEndpoint, index: number): YamlValue {
  return {
    name: endpoint.name ?? `endpoint-${index + 1}`,
    url: endpoint.url,
    headers: Object.fromEntries(Object.entries(endpoint.headers ?? {}).map(([k, v]) => [k, [v]])),
    timeout: duration(endpoint.timeoutMs ?? DEFAULT_NOTIFICATION_TIMEOUT_MS),
    threshold: endpoint.threshold ?? DEFAULT_NOTIFICATION_THRESHOLD,
    backoff: duration(endpoint.backoffMs ?? DEFAULT_NOTIFICATION_BACKOFF_MS),
    // Older 2.x spelling, still read by 2.8 next to `ignore`.
    ignoredmediatypes: [...(endpoint.ignoredMediaTypes ?? [])],
    ignore: { mediatypes: [...(endpoint.ignoredMediaTypes ?? [])], actions: [...(endpoint.ignoredActions ?? [])] },
  };
}

function storageValue(options: RegistryConfigOptions): Record<string, YamlValue> {
  const storage: Record<string, YamlValue> =
    "filesystem" in options.storage ? { filesystem: { rootdirectory: options.storage.filesystem.rootDirectory } } : { s3: { ...options.storage.s3 } };
  storage.delete = { enabled: true };
  const cache = options.blobDescriptorCache ?? "inmemory";
  if (cache !== "none") storage.cache = { blobdescriptor: cache };
  if (options.uploadPurging !== undefined) storage.maintenance = { uploadpurging: { enabled: options.uploadPurging } };
  if (options.disableRedirect !== undefined) storage.redirect = { disable: options.disableRedirect };
  return storage;
}

/**
 * The Distribution 2.8 config (YAML text): storage with deletes enabled
 * (replication removes what the primary removed), the HTTP listener, token
 * or htpasswd auth, and notification endpoints.
 */
export function registryConfig(options: RegistryConfigOptions): string {
  const log = options.log ?? ((options.notifications?.length ?? 0) > 0 ? NOTIFYING_REGISTRY_LOG : DEFAULT_REGISTRY_LOG);
  const http: Record<string, YamlValue> = { addr: options.addr };
  if (options.httpSecret !== undefined) http.secret = options.httpSecret;
  http.headers = { "X-Content-Type-Options": ["nosniff"], ...Object.fromEntries(Object.entries(options.headers ?? {}).map(([k, v]) => [k, [v]])) };
  if (options.debug !== undefined) {
    http.debug = { addr: options.debug.addr, ...(options.debug.prometheus === true ? { prometheus: { enabled: true, path: "/metrics" } } : {}) };
  }
  const config: Record<string, YamlValue> = {
    version: "0.1",
    log: { level: log.level, formatter: log.formatter, fields: { service: "registry" } },
    storage: storageValue(options),
    http,
  };
  if (options.auth !== undefined) {
    if ("token" in options.auth) {
      const t = options.auth.token;
      config.auth = { token: { realm: t.realm, service: t.service, issuer: t.issuer, rootcertbundle: t.rootCertBundle } };
    } else {
      config.auth = { htpasswd: { realm: options.auth.htpasswd.realm, path: options.auth.htpasswd.path } };
    }
  }
  const endpoints = options.notifications ?? [];
  if (endpoints.length > 0) {
    config.notifications = { events: { includereferences: true }, endpoints: endpoints.map(endpointValue) };
  }
  const merged = options.extraConfig === undefined ? config : merge(config, options.extraConfig);
  return `${commentLines(options.header)}${toYaml(merged)}`;
}

/**
 * The value of `REGISTRY_NOTIFICATIONS_ENDPOINTS`: the endpoint list as
 * {@link registryConfig} renders it, as one YAML document. Distribution 2.8
 * cannot override one element of a list from the environment (an indexed
 * `REGISTRY_NOTIFICATIONS_ENDPOINTS_0_HEADERS_…` is ignored), so a secret
 * header is set by replacing the whole list.
 */
export function registryNotificationEndpoints(endpoints: readonly NotificationEndpoint[], header?: string): string {
  return `${commentLines(header)}${toYaml(endpoints.map(endpointValue))}`;
}

function merge(base: Record<string, YamlValue>, over: Readonly<Record<string, YamlValue>>): Record<string, YamlValue> {
  const out: Record<string, YamlValue> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isRecord(current) && isRecord(value) ? merge(current, value) : value;
  }
  return out;
}

function isRecord(value: YamlValue | undefined): value is Record<string, YamlValue> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

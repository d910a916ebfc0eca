/**
 * @georep/deploy-templates: pure renderers of the server configs georep
 * runs with. The local stack (`@georep/testing`'s `startRegistry` and
 * `startNats`) and the compose deployment (`deploy/generate.mjs`) both
 * render through these functions, so the two cannot drift apart.
 * Depends on nothing of georep's (`@georep/testing` depends on it).
 */
export {
  DEFAULT_NOTIFICATION_BACKOFF_MS,
  DEFAULT_NOTIFICATION_THRESHOLD,
  DEFAULT_NOTIFICATION_TIMEOUT_MS,
  DEFAULT_REGISTRY_LOG,
  NOTIFYING_REGISTRY_LOG,
  INGEST_ENDPOINT_NAME,
  INGEST_EVENTS_PATH,
  INGEST_BLOBS_ENDPOINT_NAME,
  INGEST_BLOB_EVENTS_PATH,
  MANIFEST_EVENT_MEDIA_TYPES,
  ingestBlobNotificationEndpoint,
  ingestNotificationEndpoint,
  registryConfig,
  registryNotificationEndpoints,
} from "./registry.js";
export type {
  HtpasswdAuthOptions,
  NotificationEndpoint,
  RegistryAuthOptions,
  RegistryConfigOptions,
  RegistryStorage,
  StorageParameter,
  TokenAuthOptions,
} from "./registry.js";
export { DESTRUCTIVE_JETSTREAM_API, NATS_SERVICE_PERMISSIONS, NATS_SERVICE_USERS, SITE_LOCAL_SUBJECTS, envReference, natsConfig, natsPasswordVariable } from "./nats.js";
export type { EnvReference, LeafnodeAuthorization, LeafnodeListenTls, LeafnodeRemote, NatsConfigOptions, NatsPermissions, NatsServiceUser, NatsUser, NatsValue } from "./nats.js";
export { toYaml } from "./yaml.js";
export type { YamlValue } from "./yaml.js";

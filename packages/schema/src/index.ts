/**
 * @georep/schema: the shared vocabulary of georep services: stream and
 * subject names, message payload schemas with compiled validators, and
 * config schema pieces.
 */
export { SCHEMA_ERROR_CODES, SubjectError, ValidationError } from "./errors.js";
export type { Problem, SchemaErrorCode } from "./errors.js";

export {
  HEADERS,
  SITE_NAME_PATTERN,
  blobHintQueueGroup,
  STREAMS,
  STREAM_NAMES,
  SUBJECTS,
  decodeSubjectToken,
  encodeSubjectToken,
  geoEventSubject,
  isValidSiteName,
  registryEventDeadLetterSubject,
  registryEventSubject,
  repositoryFromSubject,
  resyncSubject,
  syncDoneSubject,
  siteStatusSubject,
  transferJobSubject,
} from "./subjects.js";
export type { Header, StreamDefinition, StreamName, StreamRetention, Subject } from "./subjects.js";

export {
  BlobPushedHint,
  DEFAULT_TRANSFER_PRIORITY,
  DIGEST_PATTERN,
  Digest,
  GEO_EVENT_TYPES,
  GeoEvent,
  NOTIFICATION_ACTIONS,
  NOTIFICATION_ENVELOPE_MEDIA_TYPE,
  NotificationEnvelope,
  NotificationEvent,
  NotificationTarget,
  REGISTRY_EVENT_ACTIONS,
  REPOSITORY_PATTERN,
  RegistryEvent,
  RepositoryName,
  ResyncRequest,
  SITE_ROLES,
  SYNC_STATES,
  SiteName,
  SiteRoleSchema,
  SiteStatusReport,
  TAG_PATTERN,
  TIMESTAMP_PATTERN,
  TRANSFER_PRIORITY,
  TRANSFER_REASONS,
  Tag,
  Timestamp,
  TraceContext,
  TransferJob,
  isNotificationAction,
} from "./messages.js";
export type {
  GeoEventType,
  NotificationAction,
  RegistryEventAction,
  SiteRole,
  SyncState,
  TransferReason,
} from "./messages.js";
// Value and type share a name for the payload schemas; the type is exported
// with the value above (TypeScript merges them), so `import type { GeoEvent }` works.

export { MAX_PROBLEMS, assertValid, compile, decodeJson, encodeJson, problemsOf, validate } from "./validate.js";
export type { ValidationResult } from "./validate.js";

export {
  CONFIG_DEFAULTS,
  HttpConfig,
  LOG_LEVELS,
  LogConfig,
  LogLevelSchema,
  NatsConfig,
  PostgresConfig,
  SiteConfig,
} from "./config.js";
export type { LogLevel } from "./config.js";

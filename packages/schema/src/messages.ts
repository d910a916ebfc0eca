/**
 * Message schemas (TypeBox). Field names of georep's own payloads are
 * snake_case, like the tables they come from and go to. Timestamps are
 * RFC 3339 strings; they are checked with a pattern rather than a `format`
 * so the same schema behaves identically under TypeBox and fastify's Ajv.
 */
import { Type } from "@sinclair/typebox";
import type { Static } from "@sinclair/typebox";
import { SITE_NAME_PATTERN } from "./subjects.js";

// ---------------------------------------------------------------------------
// Shared pieces

/** RFC 3339 date-time with a mandatory offset, fractional seconds allowed (Go emits nanoseconds). */
export const TIMESTAMP_PATTERN = "^\\d{4}-\\d{2}-\\d{2}[Tt]\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?([Zz]|[+-]\\d{2}:\\d{2})$";

/**
 * Repository name, OCI Distribution spec §"Pulling manifests":
 * `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
 */
export const REPOSITORY_PATTERN = "^[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*$";

/** Tag, OCI Distribution spec: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`. */
export const TAG_PATTERN = "^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$";

/** Digest, OCI image spec §"Digests": `algorithm ":" encoded`. */
export const DIGEST_PATTERN = "^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$";

/** An RFC 3339 timestamp string. */
export const Timestamp = Type.String({ pattern: TIMESTAMP_PATTERN, title: "RFC 3339 timestamp" });
/** A repository name (max 255 characters, the common registry limit). */
export const RepositoryName = Type.String({ pattern: REPOSITORY_PATTERN, minLength: 1, maxLength: 255, title: "repository name" });
/** A tag. */
export const Tag = Type.String({ pattern: TAG_PATTERN, title: "tag" });
/** A content digest, e.g. `sha256:…`. */
export const Digest = Type.String({ pattern: DIGEST_PATTERN, maxLength: 1024, title: "digest" });
/** A site name, usable as a subject token. */
export const SiteName = Type.String({ pattern: SITE_NAME_PATTERN, title: "site name" });

/** Site roles. */
export const SITE_ROLES = { PRIMARY: "primary", SECONDARY: "secondary" } as const;
/** One of {@link SITE_ROLES}. */
export type SiteRole = (typeof SITE_ROLES)[keyof typeof SITE_ROLES];
/** Schema of {@link SiteRole}. */
export const SiteRoleSchema = Type.Union([Type.Literal("primary"), Type.Literal("secondary")], { title: "site role" });

/** Optional W3C trace context carried in a payload (headers remain the primary carrier). */
export const TraceContext = Type.Object(
  {
    traceparent: Type.String({ minLength: 1 }),
    tracestate: Type.Optional(Type.String()),
  },
  { title: "TraceContext" },
);
/** W3C trace context. */
export type TraceContext = Static<typeof TraceContext>;

// ---------------------------------------------------------------------------
// Distribution notifications

/**
 * Actions of CNCF Distribution notifications (docs/notifications.md,
 * Distribution 2.8; Distribution 3 still uses these four).
 */
export const NOTIFICATION_ACTIONS = { PUSH: "push", PULL: "pull", DELETE: "delete", MOUNT: "mount" } as const;
/** One of {@link NOTIFICATION_ACTIONS}. */
export type NotificationAction = (typeof NOTIFICATION_ACTIONS)[keyof typeof NOTIFICATION_ACTIONS];

const notificationActions: ReadonlySet<string> = new Set(Object.values(NOTIFICATION_ACTIONS));
/** True when `action` is one of the four documented notification actions. */
export function isNotificationAction(action: string): action is NotificationAction {
  return notificationActions.has(action);
}

/** Media type of a Distribution notification envelope (v1; Distribution 3 may announce v2, same shape). */
export const NOTIFICATION_ENVELOPE_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json";

/**
 * The `target` of a notification event. Only `repository` is required:
 * delete events carry no media type or size, and a repository delete
 * (Distribution 3) carries the repository alone. Unknown fields are kept.
 */
export const NotificationTarget = Type.Object(
  {
    mediaType: Type.Optional(Type.String()),
    size: Type.Optional(Type.Number()),
    digest: Type.Optional(Type.String()),
    length: Type.Optional(Type.Number()),
    repository: Type.String({ minLength: 1 }),
    /** Mount events: the repository the blob was mounted from. */
    fromRepository: Type.Optional(Type.String()),
    url: Type.Optional(Type.String()),
    tag: Type.Optional(Type.String()),
    references: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }))),
  },
  { additionalProperties: true, title: "NotificationTarget" },
);
/** The `target` of a notification event. */
export type NotificationTarget = Static<typeof NotificationTarget>;

/**
 * One event of a Distribution notification envelope.
 *
 * `action` is any non-empty string on purpose: Distribution retries a
 * rejected envelope forever and blocks every later notification behind it,
 * so a future action must not make the whole envelope invalid. Ingest keeps
 * what {@link isNotificationAction} accepts and skips the rest.
 */
export const NotificationEvent = Type.Object(
  {
    id: Type.String({ minLength: 1 }),
    timestamp: Type.String({ minLength: 1 }),
    action: Type.String({ minLength: 1 }),
    target: NotificationTarget,
    request: Type.Optional(
      Type.Object(
        {
          id: Type.Optional(Type.String()),
          addr: Type.Optional(Type.String()),
          host: Type.Optional(Type.String()),
          method: Type.Optional(Type.String()),
          useragent: Type.Optional(Type.String()),
        },
        { additionalProperties: true },
      ),
    ),
    actor: Type.Optional(Type.Object({ name: Type.Optional(Type.String()) }, { additionalProperties: true })),
    source: Type.Optional(
      Type.Object(
        { addr: Type.Optional(Type.String()), instanceID: Type.Optional(Type.String()) },
        { additionalProperties: true },
      ),
    ),
  },
  { additionalProperties: true, title: "NotificationEvent" },
);
/** One event of a Distribution notification envelope. */
export type NotificationEvent = Static<typeof NotificationEvent>;

/** The body Distribution POSTs to a notification endpoint: `{ events: [...] }`. */
export const NotificationEnvelope = Type.Object(
  { events: Type.Array(NotificationEvent) },
  { additionalProperties: true, title: "NotificationEnvelope" },
);
/** The body Distribution POSTs to a notification endpoint. */
export type NotificationEnvelope = Static<typeof NotificationEnvelope>;

// ---------------------------------------------------------------------------
// RegistryEvent (ingest → REGISTRY_EVENTS)

/** Actions ingest forwards (pulls are not relevant to replication). */
export const REGISTRY_EVENT_ACTIONS = { PUSH: "push", DELETE: "delete", MOUNT: "mount" } as const;
/** One of {@link REGISTRY_EVENT_ACTIONS}. */
export type RegistryEventAction = (typeof REGISTRY_EVENT_ACTIONS)[keyof typeof REGISTRY_EVENT_ACTIONS];

/** What ingest publishes on `georep.registry.events.<action>.<repo>`, one per relevant notification event. */
export const RegistryEvent = Type.Object(
  {
    /** The registry's event id; also the `Nats-Msg-Id`. */
    id: Type.String({ minLength: 1, maxLength: 256 }),
    action: Type.Union([Type.Literal("push"), Type.Literal("delete"), Type.Literal("mount")]),
    repository: RepositoryName,
    digest: Type.Optional(Digest),
    tag: Type.Optional(Tag),
    media_type: Type.Optional(Type.String({ minLength: 1 })),
    size: Type.Optional(Type.Integer({ minimum: 0 })),
    /** Mount events: the source repository. */
    from_repository: Type.Optional(RepositoryName),
    /** The registry's own event timestamp, when it sent one. */
    occurred_at: Type.Optional(Timestamp),
    /** When ingest accepted the event. */
    received_at: Timestamp,
    trace: Type.Optional(TraceContext),
  },
  { additionalProperties: false, title: "RegistryEvent" },
);
/** A registry event as published by ingest. */
export type RegistryEvent = Static<typeof RegistryEvent>;

// ---------------------------------------------------------------------------
// GeoEvent (event-log → geo_events table and GEO_EVENTS)

/** Kinds of geo events. */
export const GEO_EVENT_TYPES = {
  PUSH: "push",
  DELETE: "delete",
  REPOSITORY_DELETE: "repository_delete",
  MOUNT: "mount",
} as const;
/** One of {@link GEO_EVENT_TYPES}. */
export type GeoEventType = (typeof GEO_EVENT_TYPES)[keyof typeof GEO_EVENT_TYPES];

/** A row of the primary's ordered event log, as published on `georep.geo.events.<type>.<repo>`. */
export const GeoEvent = Type.Object(
  {
    /** Sequence id of the `geo_events` row (strictly increasing). */
    id: Type.Integer({ minimum: 1 }),
    event_type: Type.Union([
      Type.Literal("push"),
      Type.Literal("delete"),
      Type.Literal("repository_delete"),
      Type.Literal("mount"),
    ]),
    repository: RepositoryName,
    digest: Type.Optional(Digest),
    tag: Type.Optional(Tag),
    media_type: Type.Optional(Type.String({ minLength: 1 })),
    /** The registry event this row came from, when there was one. */
    source_event_id: Type.Optional(Type.String({ minLength: 1 })),
    created_at: Timestamp,
    trace: Type.Optional(TraceContext),
  },
  { additionalProperties: false, title: "GeoEvent" },
);
/** A geo event. */
export type GeoEvent = Static<typeof GeoEvent>;

// ---------------------------------------------------------------------------
// TransferJob (dispatcher → TRANSFER_JOBS)

/** Why a transfer job was queued. */
export const TRANSFER_REASONS = { EVENT: "event", BACKFILL: "backfill", RETRY: "retry", RESYNC: "resync" } as const;
/** One of {@link TRANSFER_REASONS}. */
export type TransferReason = (typeof TRANSFER_REASONS)[keyof typeof TRANSFER_REASONS];

/** Job priorities: 0 is the most urgent, 9 the least. */
export const TRANSFER_PRIORITY = { MIN: 0, MAX: 9 } as const;

/** Default priority per reason: operator requests first, fresh events next, retries, then backfill. */
export const DEFAULT_TRANSFER_PRIORITY: Readonly<Record<TransferReason, number>> = {
  resync: 0,
  event: 2,
  retry: 5,
  backfill: 8,
};

/** One repository sync request, on `georep.transfer.jobs.<repo>`. */
export const TransferJob = Type.Object(
  {
    repository: RepositoryName,
    /** The tracking row's `pending_generation` when the job was queued. */
    generation: Type.Integer({ minimum: 0 }),
    reason: Type.Union([Type.Literal("event"), Type.Literal("backfill"), Type.Literal("retry"), Type.Literal("resync")]),
    priority: Type.Integer({ minimum: TRANSFER_PRIORITY.MIN, maximum: TRANSFER_PRIORITY.MAX }),
    requested_at: Timestamp,
    trace: Type.Optional(TraceContext),
  },
  { additionalProperties: false, title: "TransferJob" },
);
/** A transfer job. */
export type TransferJob = Static<typeof TransferJob>;

// ---------------------------------------------------------------------------
// BlobPushedHint (primary's ingest → georep.blobs.pushed, core NATS)

/**
 * A blob the primary registry just stored (its notification of a blob push):
 * secondaries may start copying it before the manifest that references it
 * arrives. Only a hint, never the record: a lost one costs time, not data,
 * since the manifest's sync copies every blob it lacks.
 */
export const BlobPushedHint = Type.Object(
  {
    repository: RepositoryName,
    digest: Digest,
    size: Type.Integer({ minimum: 0 }),
    media_type: Type.Optional(Type.String({ maxLength: 255 })),
    received_at: Timestamp,
    /** The trace of the registry's notification: the prefetch's copy joins it. */
    trace: Type.Optional(TraceContext),
  },
  { additionalProperties: false, title: "BlobPushedHint" },
);
/** A blob push hint. */
export type BlobPushedHint = Static<typeof BlobPushedHint>;

// ---------------------------------------------------------------------------
// ResyncRequest (operator/status → georep.<site>.resync)

/** Asks a secondary's dispatcher to resync one repository, or every repository when `repository` is absent. */
export const ResyncRequest = Type.Object(
  {
    repository: Type.Optional(RepositoryName),
    requested_at: Timestamp,
    /** Who asked (free text for the audit log). */
    requested_by: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: false, title: "ResyncRequest" },
);
/** A resync request. */
export type ResyncRequest = Static<typeof ResyncRequest>;

// ---------------------------------------------------------------------------
// SiteStatusReport (secondary → georep.sites.<site>.status)

/** Tracking-row states. */
export const SYNC_STATES = { PENDING: "pending", STARTED: "started", SYNCED: "synced", FAILED: "failed" } as const;
/** One of {@link SYNC_STATES}. */
export type SyncState = (typeof SYNC_STATES)[keyof typeof SYNC_STATES];

const Count = Type.Integer({ minimum: 0 });
const Seconds = Type.Union([Type.Number({ minimum: 0 }), Type.Null()]);

/** What a site reports about itself, periodically, on `georep.sites.<site>.status`. */
export const SiteStatusReport = Type.Object(
  {
    site: SiteName,
    role: SiteRoleSchema,
    /** Repositories per tracking state (zeros on a primary). */
    counts: Type.Object(
      { pending: Count, started: Count, synced: Count, failed: Count },
      { additionalProperties: false },
    ),
    /** Replication lag from push on the primary to available here; `null` when there is no sample yet. */
    lag_seconds: Type.Object({ p50: Seconds, p99: Seconds }, { additionalProperties: false }),
    /** Bytes copied since the process started. */
    bytes_copied: Count,
    /** Time of the newest geo event seen, `null` if none. */
    last_event_at: Type.Union([Timestamp, Type.Null()]),
    /** Replication paused at this site (no dispatch, no claims); absent in reports of older services. */
    paused: Type.Optional(Type.Boolean()),
    reported_at: Timestamp,
  },
  { additionalProperties: false, title: "SiteStatusReport" },
);
/** A site status report. */
export type SiteStatusReport = Static<typeof SiteStatusReport>;

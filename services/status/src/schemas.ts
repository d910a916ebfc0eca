/**
 * TypeBox schemas of the status API (docs/status-api.md): fastify validates
 * queries, params and bodies against them, serialises answers with them,
 * and @fastify/swagger builds the OpenAPI document from them.
 */
import { Type } from "@sinclair/typebox";
import type { Static, TSchema } from "@sinclair/typebox";
import { DIGEST_PATTERN, REPOSITORY_PATTERN, SITE_NAME_PATTERN, SiteStatusReport, TAG_PATTERN } from "@georep/schema";
import { REPOSITORY_SORTS, SORT_ORDERS } from "./cursor.js";

/** A string enum (ajv then names the allowed values when one is wrong). */
const literals = <const T extends string>(values: readonly T[], options: { default?: NoInfer<T>; description?: string } = {}) =>
  Type.Unsafe<T>({ type: "string", enum: [...values], ...options });
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const DateTime = Type.String({ description: "RFC 3339 timestamp (UTC)" });
const Count = Type.Integer({ minimum: 0 });

/** A repository name as the API accepts it (OCI Distribution grammar, at most 255 characters). */
export const RepositoryNameParam = Type.String({ pattern: REPOSITORY_PATTERN, minLength: 1, maxLength: 255, title: "repository name" });
/** A site name. */
export const SiteNameParam = Type.String({ pattern: SITE_NAME_PATTERN, title: "site name" });

/** Every error answer: `code` and `message` (the contract), plus the status and its reason phrase. */
export const ErrorBody = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String({ description: "invalid_request | unauthorized | forbidden | not_found | wrong_role | timeout | unavailable | internal_error" }),
    error: Type.String(),
    message: Type.String(),
  },
  { title: "Error" },
);

/** The error answers of a route, for its `response` schema. */
export const errorResponses = (...statuses: number[]): Record<number, typeof ErrorBody> => Object.fromEntries(statuses.map((s) => [s, ErrorBody]));

export const SyncStateSchema = literals(["pending", "started", "synced", "failed"]);
const Counts = Type.Object({ pending: Count, started: Count, synced: Count, failed: Count });
const Lag = Type.Object({ p50: Nullable(Type.Number()), p99: Nullable(Type.Number()) });

/** `GET /api/v1/site`. */
export const SiteSummarySchema = Type.Object(
  {
    site: Type.String(),
    role: literals(["primary", "secondary"]),
    paused: Type.Boolean(),
    counts: Counts,
    total: Count,
    progress: Type.Number({ minimum: 0, maximum: 1, description: "synced / total, 1 when total is 0" }),
    lag_seconds: Lag,
    bytes_copied: Count,
    blobs_copied: Count,
    blobs_mounted: Count,
    last_event_at: Nullable(DateTime),
    last_synced_at: Nullable(DateTime),
    missing_on_primary: Count,
    unremovable_tags: Count,
    events: Type.Union([
      Type.Object({ total: Count, last_id: Nullable(Type.String()), dead_letters: Nullable(Count) }),
      Type.Null(),
    ]),
    generated_at: DateTime,
  },
  { title: "SiteSummary" },
);

/** A tracking row. */
export const RepositoryRowSchema = Type.Object(
  {
    repository: Type.String(),
    state: SyncStateSchema,
    retry_count: Count,
    retry_at: Nullable(DateTime),
    last_sync_failure: Nullable(Type.String()),
    last_synced_at: Nullable(DateTime),
    last_event_at: Nullable(DateTime),
    updated_at: DateTime,
    pending_generation: Count,
    synced_generation: Count,
    verified_at: Nullable(DateTime),
    verification_checksum: Nullable(Type.String()),
    bytes_copied: Count,
    blobs_copied: Count,
    blobs_mounted: Count,
    last_duration_ms: Nullable(Type.Integer()),
    missing_on_primary: Type.Boolean(),
    unremovable_tags: Type.Array(Type.Unknown(), { description: "whatever the tracking row holds" }),
  },
  { title: "RepositoryRow" },
);

/** A substring filter: printable, no `..`, at most 255 characters. */
const NameFilter = Type.String({
  maxLength: 255,
  pattern: "^(?!.*\\.\\.)[^\\u0000-\\u001f\\u007f]*$",
  title: "name filter (no control characters, no '..')",
});

/** `GET /api/v1/repositories` query. */
export const RepositoriesQuery = Type.Object({
  state: Type.Optional(SyncStateSchema),
  name: Type.Optional(NameFilter),
  sort: literals(REPOSITORY_SORTS, { default: "repository" }),
  order: literals(SORT_ORDERS, { default: "asc" }),
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: "next_cursor of the previous page" })),
});
export type RepositoriesQuery = Static<typeof RepositoriesQuery>;

export const RepositoriesPage = Type.Object({ items: Type.Array(RepositoryRowSchema), next_cursor: Nullable(Type.String()) }, { title: "RepositoriesPage" });

/** The wildcard of `/api/v1/repositories/*`. */
export const RepositoryParams = Type.Object({ "*": RepositoryNameParam });
export type RepositoryParams = Static<typeof RepositoryParams>;

/** The wildcard of `POST /api/v1/repositories/<name>/resync` (checked by the handler once `/resync` is cut off). */
export const RepositoryActionParams = Type.Object({ "*": Type.String({ maxLength: 300, description: "<repository>/resync" }) });
export type RepositoryActionParams = Static<typeof RepositoryActionParams>;

export const TagComparisonSchema = Type.Object({
  tag: Type.String(),
  primary_digest: Nullable(Type.String()),
  secondary_digest: Nullable(Type.String()),
  in_sync: Type.Boolean(),
});

export const SyncRecordSchema = Type.Object({
  started_at: Nullable(DateTime),
  finished_at: DateTime,
  outcome: literals(["synced", "failed"]),
  generation: Count,
  reason: Nullable(Type.String()),
  duration_ms: Nullable(Type.Integer()),
  bytes_copied: Count,
  blobs_copied: Count,
  blobs_mounted: Count,
  error: Nullable(Type.String()),
});

export const RepositoryDetail = Type.Object(
  {
    repository: RepositoryRowSchema,
    tags: Type.Array(TagComparisonSchema),
    tags_error: Nullable(Type.String()),
    recent_syncs: Type.Array(SyncRecordSchema),
  },
  { title: "RepositoryDetail" },
);

/** `POST /api/v1/resync` body. */
export const ResyncBody = Type.Object({ scope: literals(["all", "failed"]) }, { additionalProperties: false });
export type ResyncBody = Static<typeof ResyncBody>;

/** `POST /api/v1/sites/<site>/resync` body: a scope or one repository. */
export const SiteResyncBody = Type.Object(
  { scope: Type.Optional(literals(["all", "failed"])), repository: Type.Optional(RepositoryNameParam) },
  { additionalProperties: false, description: 'exactly one of {"scope": "all" | "failed"} or {"repository": "<name>"}' },
);
export type SiteResyncBody = Static<typeof SiteResyncBody>;

export const SiteParams = Type.Object({ site: SiteNameParam });
export type SiteParams = Static<typeof SiteParams>;

export const Accepted = Type.Object({ accepted: Count }, { title: "Accepted" });
export const Paused = Type.Object({ paused: Type.Boolean() }, { title: "Paused" });

/** `GET /api/v1/events` query. */
export const EventsQuery = Type.Object({
  repository: Type.Optional(RepositoryNameParam),
  after: Type.Optional(Type.String({ pattern: "^[0-9]{1,18}$", title: "row id" })),
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
  order: literals(SORT_ORDERS, { default: "desc" }),
});
export type EventsQuery = Static<typeof EventsQuery>;

export const EventItemSchema = Type.Object({
  id: Type.String(),
  event_id: Type.String(),
  repository: Type.String(),
  action: Type.String(),
  tag: Nullable(Type.String()),
  digest: Nullable(Type.String()),
  media_type: Nullable(Type.String()),
  received_at: DateTime,
  published_at: Nullable(DateTime),
});

export const EventsPage = Type.Object({ items: Type.Array(EventItemSchema), next_cursor: Nullable(Type.String()) }, { title: "EventsPage" });

/** `GET /api/v1/replication/wait` query. */
export const WaitQuery = Type.Object({
  repository: RepositoryNameParam,
  tag: Type.Optional(Type.String({ pattern: TAG_PATTERN, title: "tag" })),
  digest: Type.Optional(Type.String({ pattern: DIGEST_PATTERN, maxLength: 1024, title: "digest" })),
  timeout: Type.Number({ minimum: 1, maximum: 600, default: 30, description: "seconds" }),
});
export type WaitQuery = Static<typeof WaitQuery>;

export const WaitResult = Type.Object(
  { repository: Type.String(), tag: Nullable(Type.String()), digest: Type.String(), waited_ms: Count },
  { title: "WaitResult" },
);

export const SiteEntrySchema = Type.Object({
  site: Type.String(),
  role: literals(["primary", "secondary"]),
  last_seen_at: DateTime,
  stale: Type.Boolean(),
  health: literals(["ok", "failing", "stale"]),
  report: SiteStatusReport,
});

export const SitesList = Type.Object({ items: Type.Array(SiteEntrySchema) }, { title: "Sites" });

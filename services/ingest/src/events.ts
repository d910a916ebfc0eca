/**
 * What ingest does with each event of a notification envelope: publish it
 * (what replication needs), ignore it (pulls, blob traffic), or dead-letter
 * it (an event that cannot be replicated as sent). Pure: no I/O.
 *
 * Distribution retries a refused envelope forever and every later event waits
 * behind it, so one bad event must never fail its envelope: it is
 * dead-lettered with the reason and its neighbours go on.
 */
import { isManifestMediaType, normalizeContentType } from "@georep/registry-client";
import { BlobPushedHint, NotificationEvent, RegistryEvent, TIMESTAMP_PATTERN, isNotificationAction, registryEventSubject, validate } from "@georep/schema";
import type { BlobPushedHint as BlobPushedHintType, RegistryEvent as RegistryEventType } from "@georep/schema";

/** Why an event was dead-lettered (a Prometheus label, so a closed set). */
export const DEAD_LETTER_REASONS = {
  INVALID_EVENT: "invalid_event",
  UNKNOWN_ACTION: "unknown_action",
  INVALID_FIELDS: "invalid_fields",
} as const;
export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[keyof typeof DEAD_LETTER_REASONS];

/** Why an event was ignored (label). */
export const IGNORE_REASONS = { PULL: "pull", BLOB: "blob", NOT_A_BLOB_PUSH: "not_a_blob_push" } as const;
export type IgnoreReason = (typeof IGNORE_REASONS)[keyof typeof IGNORE_REASONS];

export type Decision =
  | { readonly kind: "publish"; readonly subject: string; readonly event: RegistryEventType }
  | { readonly kind: "ignore"; readonly reason: IgnoreReason; readonly hint?: BlobPushedHintType }
  | { readonly kind: "dead-letter"; readonly reason: DeadLetterReason; readonly detail: string; readonly id: string | undefined; readonly action: string; readonly repository: string };

const timestampPattern = new RegExp(TIMESTAMP_PATTERN);

function str(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/**
 * Decides one event. `receivedAt` is when the envelope arrived (RFC 3339).
 *
 * Kept: manifest push (by digest, with the tag when one was pushed), every
 * delete (manifest by digest or tag; repository delete carries neither;
 * blob deletes look the same in 2.8 and are kept: a spurious repository
 * check is cheap, a missed delete is not), and mounts of manifests.
 * Ignored: pulls, blob pushes and blob mounts. A blob push that names its
 * repository, digest and size carries a {@link BlobPushedHint}: secondaries
 * may copy the blob before its manifest arrives.
 */
export function decide(raw: unknown, receivedAt: string): Decision {
  const rawObject = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>) : {};
  const rawTarget = typeof rawObject.target === "object" && rawObject.target !== null ? (rawObject.target as Record<string, unknown>) : {};
  const id = str(rawObject.id);
  const action = str(rawObject.action) ?? "";
  const repository = str(rawTarget.repository) ?? "";
  const deadLetter = (reason: DeadLetterReason, detail: string): Decision => ({ kind: "dead-letter", reason, detail, id, action, repository });

  const checked = validate(NotificationEvent, raw);
  if (!checked.ok) return deadLetter(DEAD_LETTER_REASONS.INVALID_EVENT, checked.problems.map((p) => `${p.path || "/"}: ${p.message}`).join("; "));
  const event = checked.value;
  if (!isNotificationAction(event.action)) return deadLetter(DEAD_LETTER_REASONS.UNKNOWN_ACTION, `unknown action "${event.action}"`);
  if (event.action === "pull") return { kind: "ignore", reason: IGNORE_REASONS.PULL };

  const target = event.target;
  const mediaType = target.mediaType === undefined || target.mediaType === "" ? undefined : normalizeContentType(target.mediaType);
  const isManifest = mediaType !== undefined && isManifestMediaType(mediaType);
  if (event.action === "mount" && !isManifest) return { kind: "ignore", reason: IGNORE_REASONS.BLOB };
  if (event.action === "push" && !isManifest) {
    const hint = validate(BlobPushedHint, {
      repository: target.repository,
      digest: target.digest,
      size: target.size,
      ...(mediaType === undefined ? {} : { media_type: mediaType }),
      received_at: receivedAt,
    });
    return hint.ok ? { kind: "ignore", reason: IGNORE_REASONS.BLOB, hint: hint.value } : { kind: "ignore", reason: IGNORE_REASONS.BLOB };
  }

  const candidate: RegistryEventType = {
    id: event.id,
    action: event.action,
    repository: target.repository,
    ...(target.digest === undefined || target.digest === "" ? {} : { digest: target.digest }),
    ...(target.tag === undefined || target.tag === "" ? {} : { tag: target.tag }),
    ...(mediaType === undefined ? {} : { media_type: mediaType }),
    ...(typeof target.size === "number" && Number.isInteger(target.size) && target.size >= 0 ? { size: target.size } : {}),
    ...(target.fromRepository === undefined || target.fromRepository === "" ? {} : { from_repository: target.fromRepository }),
    ...(timestampPattern.test(event.timestamp) ? { occurred_at: event.timestamp } : {}),
    received_at: receivedAt,
  };
  const valid = validate(RegistryEvent, candidate);
  if (!valid.ok) return deadLetter(DEAD_LETTER_REASONS.INVALID_FIELDS, valid.problems.map((p) => `${p.path}: ${p.message}`).join("; "));
  if (event.action === "push" && candidate.digest === undefined) return deadLetter(DEAD_LETTER_REASONS.INVALID_FIELDS, "manifest push without a digest");
  return { kind: "publish", subject: registryEventSubject(candidate.action, candidate.repository), event: valid.value };
}

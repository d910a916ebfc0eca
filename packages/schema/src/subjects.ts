/**
 * Stream names, subjects and the repository-name token encoding.
 *
 * Subject layout (every subject starts with `georep.`):
 *
 * | subject                                         | carried by            |
 * |-------------------------------------------------|-----------------------|
 * | `georep.registry.events.<action>.<repo>`        | `REGISTRY_EVENTS`     |
 * | `georep.dlq.registry.events.<action>.<repo>`    | `REGISTRY_EVENTS_DLQ` |
 * | `georep.geo.events.<event_type>.<repo>`         | `GEO_EVENTS`          |
 * | `georep.transfer.jobs.<repo>`                   | `TRANSFER_JOBS`       |
 * | `georep.<site>.resync`                          | core NATS request     |
 * | `georep.<site>.syncs.done`                      | core NATS publish     |
 * | `georep.blobs.pushed`                           | core NATS publish     |
 * | `georep.sites.<site>.status`                    | core NATS publish     |
 *
 * `<repo>` is always ONE token: the repository name encoded with
 * {@link encodeSubjectToken}, so `georep.transfer.jobs.*` matches every job
 * and a consumer can filter a single repository exactly.
 */
import { SubjectError } from "./errors.js";

/** JetStream stream names. */
export const STREAM_NAMES = {
  REGISTRY_EVENTS: "REGISTRY_EVENTS",
  REGISTRY_EVENTS_DLQ: "REGISTRY_EVENTS_DLQ",
  GEO_EVENTS: "GEO_EVENTS",
  TRANSFER_JOBS: "TRANSFER_JOBS",
} as const;

/** One of {@link STREAM_NAMES}. */
export type StreamName = (typeof STREAM_NAMES)[keyof typeof STREAM_NAMES];

/** Subject prefixes (no trailing dot) and the wildcards that match them. */
export const SUBJECTS = {
  /** Prefix of registry events published by ingest. */
  REGISTRY_EVENTS: "georep.registry.events",
  REGISTRY_EVENTS_ALL: "georep.registry.events.>",
  /** Prefix of dead-lettered registry events. */
  REGISTRY_EVENTS_DLQ: "georep.dlq.registry.events",
  REGISTRY_EVENTS_DLQ_ALL: "georep.dlq.registry.events.>",
  /** Prefix of geo events published by event-log. */
  GEO_EVENTS: "georep.geo.events",
  GEO_EVENTS_ALL: "georep.geo.events.>",
  /** Prefix of transfer jobs (work queue). */
  TRANSFER_JOBS: "georep.transfer.jobs",
  TRANSFER_JOBS_ALL: "georep.transfer.jobs.>",
  /** Every site's status report: `georep.sites.<site>.status`. */
  SITE_STATUS_ALL: "georep.sites.*.status",
  /**
   * Blobs the primary registry stored ({@link BlobPushedHint}), published by
   * the primary's ingest and taken by every secondary's transfer workers (one
   * queue group per site), across the leafnode: core NATS, a hint only.
   */
  BLOB_PUSHED: "georep.blobs.pushed",
  /** Every site's resync subject: `georep.<site>.resync`. */
  RESYNC_ALL: "georep.*.resync",
} as const;

/** One of the values of {@link SUBJECTS}. */
export type Subject = (typeof SUBJECTS)[keyof typeof SUBJECTS];

/**
 * JetStream retention of a stream; the string values equal
 * `RetentionPolicy` of `@nats-io/jetstream`, so a definition can be passed
 * straight into a stream config.
 */
export type StreamRetention = "limits" | "interest" | "workqueue";

/** The name, subjects and retention of one georep stream. */
export interface StreamDefinition {
  readonly name: StreamName;
  readonly subjects: readonly string[];
  readonly retention: StreamRetention;
  readonly description: string;
}

/**
 * Name, subjects and retention of every georep stream. Limits (max age,
 * bytes, replicas) are deployment decisions and live in each service's config.
 * On a secondary, `GEO_EVENTS` is a mirror of the primary's and has no
 * subjects of its own.
 */
export const STREAMS = {
  REGISTRY_EVENTS: {
    name: STREAM_NAMES.REGISTRY_EVENTS,
    subjects: [SUBJECTS.REGISTRY_EVENTS_ALL],
    retention: "limits",
    description: "Registry notifications accepted by ingest, one message per event",
  },
  REGISTRY_EVENTS_DLQ: {
    name: STREAM_NAMES.REGISTRY_EVENTS_DLQ,
    subjects: [SUBJECTS.REGISTRY_EVENTS_DLQ_ALL],
    retention: "limits",
    description: "Registry events that event-log could not process (poison messages)",
  },
  GEO_EVENTS: {
    name: STREAM_NAMES.GEO_EVENTS,
    subjects: [SUBJECTS.GEO_EVENTS_ALL],
    retention: "limits",
    description: "Ordered geo event log published by event-log (outbox); mirrored by secondaries",
  },
  TRANSFER_JOBS: {
    name: STREAM_NAMES.TRANSFER_JOBS,
    subjects: [SUBJECTS.TRANSFER_JOBS_ALL],
    retention: "workqueue",
    description: "Repository sync jobs for transfer workers (work queue)",
  },
} as const satisfies Record<StreamName, StreamDefinition>;

/** NATS header names georep sets. */
export const HEADERS = {
  /** JetStream de-duplication id (ingest sets it to the registry event id). */
  MSG_ID: "Nats-Msg-Id",
  /** W3C trace context. */
  TRACEPARENT: "traceparent",
  TRACESTATE: "tracestate",
} as const;

/** One of {@link HEADERS}. */
export type Header = (typeof HEADERS)[keyof typeof HEADERS];

// ---------------------------------------------------------------------------
// Token encoding

const HEX = "0123456789ABCDEF";
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** True when the byte may appear literally in an encoded token. */
function isLiteral(byte: number): boolean {
  // Printable ASCII except the escape itself and what NATS gives meaning to:
  // `.` separates tokens, `*` and `>` are wildcards. Space and controls
  // (< 0x21), DEL and every non-ASCII byte are escaped too.
  return byte >= 0x21 && byte <= 0x7e && byte !== 0x25 /* % */ && byte !== 0x2e /* . */ && byte !== 0x2a /* * */ && byte !== 0x3e /* > */;
}

/**
 * Encodes any non-empty string as ONE NATS subject token.
 *
 * Encoding (percent-encoding, as in RFC 3986 but with a different safe set):
 * the string is taken as UTF-8 bytes; printable ASCII (0x21–0x7E) is kept as
 * is except `%`, `.`, `*` and `>`; every other byte (those four, space and
 * other whitespace, control characters, DEL, non-ASCII) becomes `%XX` with
 * two UPPERCASE hex digits. So `library/my.app` → `library/my%2Eapp`.
 * The encoding is canonical: each string has exactly one encoding, and
 * {@link decodeSubjectToken} inverts it.
 *
 * @throws {SubjectError} for the empty string (an empty token is not a valid subject).
 */
export function encodeSubjectToken(value: string): string {
  if (value.length === 0) throw new SubjectError("cannot encode an empty string as a subject token", value);
  let out = "";
  for (const byte of utf8.encode(value)) {
    if (isLiteral(byte)) out += String.fromCharCode(byte);
    else out += `%${HEX[byte >> 4] ?? ""}${HEX[byte & 0x0f] ?? ""}`;
  }
  return out;
}

/**
 * Inverts {@link encodeSubjectToken}.
 *
 * @throws {SubjectError} when the token is empty, contains characters the
 * encoder never emits, has a malformed or non-canonical escape, or does not
 * decode to valid UTF-8.
 */
export function decodeSubjectToken(token: string): string {
  if (token.length === 0) throw new SubjectError("empty subject token", token);
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    const code = token.charCodeAt(i);
    if (code === 0x25) {
      const hi = HEX.indexOf(token.charAt(i + 1));
      const lo = HEX.indexOf(token.charAt(i + 2));
      if (i + 2 >= token.length || hi < 0 || lo < 0) {
        throw new SubjectError(`malformed escape at offset ${i} (expected %XX, uppercase hex)`, token);
      }
      const byte = (hi << 4) | lo;
      if (isLiteral(byte)) throw new SubjectError(`non-canonical escape %${token.slice(i + 1, i + 3)} at offset ${i}`, token);
      bytes.push(byte);
      i += 2;
    } else if (code <= 0x7f && isLiteral(code)) {
      bytes.push(code);
    } else {
      throw new SubjectError(`character ${JSON.stringify(token.charAt(i))} at offset ${i} is not allowed in an encoded token`, token);
    }
  }
  try {
    return utf8Strict.decode(new Uint8Array(bytes));
  } catch (cause) {
    const err = new SubjectError("escaped bytes are not valid UTF-8", token);
    (err as { cause?: unknown }).cause = cause;
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Sites

/** Site names: lowercase letters, digits, `-` and `_`, starting with a letter or digit, at most 63 characters. */
export const SITE_NAME_PATTERN = "^[a-z0-9][a-z0-9_-]{0,62}$";
const SITE_NAME_RE = new RegExp(SITE_NAME_PATTERN);

/** True when `site` is a valid site name (see {@link SITE_NAME_PATTERN}). */
export function isValidSiteName(site: string): boolean {
  return SITE_NAME_RE.test(site);
}

function siteToken(site: string): string {
  if (!isValidSiteName(site)) {
    throw new SubjectError(`invalid site name ${JSON.stringify(site)}: must match ${SITE_NAME_PATTERN}`, site);
  }
  return site;
}

function actionToken(kind: string, action: string): string {
  if (!/^[a-z_]+$/.test(action)) throw new SubjectError(`invalid ${kind} ${JSON.stringify(action)}`, action);
  return action;
}

// ---------------------------------------------------------------------------
// Subject builders

/** `georep.registry.events.<action>.<repo>`, the subject ingest publishes a registry event on. */
export function registryEventSubject(action: string, repository: string): string {
  return `${SUBJECTS.REGISTRY_EVENTS}.${actionToken("action", action)}.${encodeSubjectToken(repository)}`;
}

/**
 * The dead-letter subject for a message that arrived on a registry event
 * subject: `georep.registry.events.X.Y` → `georep.dlq.registry.events.X.Y`.
 *
 * @throws {SubjectError} when `subject` is not a registry event subject.
 */
export function registryEventDeadLetterSubject(subject: string): string {
  const prefix = `${SUBJECTS.REGISTRY_EVENTS}.`;
  if (!subject.startsWith(prefix) || subject.length === prefix.length) {
    throw new SubjectError(`not a registry event subject: ${subject}`, subject);
  }
  return `${SUBJECTS.REGISTRY_EVENTS_DLQ}.${subject.slice(prefix.length)}`;
}

/** `georep.geo.events.<event_type>.<repo>`, the subject event-log publishes a geo event on. */
export function geoEventSubject(eventType: string, repository: string): string {
  return `${SUBJECTS.GEO_EVENTS}.${actionToken("event type", eventType)}.${encodeSubjectToken(repository)}`;
}

/** `georep.transfer.jobs.<repo>`, the work-queue subject of a repository's transfer jobs. */
export function transferJobSubject(repository: string): string {
  return `${SUBJECTS.TRANSFER_JOBS}.${encodeSubjectToken(repository)}`;
}

/** `georep.<site>.resync`, where a site's dispatcher takes resync requests. */
export function resyncSubject(site: string): string {
  return `georep.${siteToken(site)}.resync`;
}

/**
 * `georep.<site>.syncs.done`, where a site's transfer workers say that a
 * sync's outcome is recorded: a dispatcher slot is free. Only a hint (core
 * NATS, no payload needed): the dispatcher's tick covers a lost one.
 */
export function syncDoneSubject(site: string): string {
  return `georep.${siteToken(site)}.syncs.done`;
}

/** The queue group of a site's transfer workers on {@link SUBJECTS.BLOB_PUSHED}: each site takes every hint once. */
export function blobHintQueueGroup(site: string): string {
  return `georep-transfer-${siteToken(site)}`;
}

/** `georep.sites.<site>.status`, where a site publishes its {@link SiteStatusReport}. */
export function siteStatusSubject(site: string): string {
  return `georep.sites.${siteToken(site)}.status`;
}

/**
 * The repository carried by the last token of a registry event, geo event or
 * transfer job subject.
 *
 * @throws {SubjectError} when the subject is not one of those or its token is malformed.
 */
export function repositoryFromSubject(subject: string): string {
  const tokens = subject.split(".");
  const expected =
    subject.startsWith(`${SUBJECTS.REGISTRY_EVENTS}.`) || subject.startsWith(`${SUBJECTS.GEO_EVENTS}.`)
      ? 5
      : subject.startsWith(`${SUBJECTS.REGISTRY_EVENTS_DLQ}.`)
        ? 6
        : subject.startsWith(`${SUBJECTS.TRANSFER_JOBS}.`)
          ? 4
          : 0;
  const last = tokens[tokens.length - 1];
  if (expected === 0 || tokens.length !== expected || last === undefined) {
    throw new SubjectError(`subject does not carry a repository: ${subject}`, subject);
  }
  return decodeSubjectToken(last);
}

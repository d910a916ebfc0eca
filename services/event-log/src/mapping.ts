/**
 * Pure mapping between a registry event, a `geo_events` row and a geo event
 * (no I/O).
 */
import { GEO_EVENT_TYPES, GeoEvent, encodeJson, geoEventSubject } from "@georep/schema";
import type { GeoEventType, RegistryEvent } from "@georep/schema";
import type { GeoEventRow, NewGeoEventRow } from "./db.js";

/**
 * The geo event type of a registry event: `push` and `mount` keep their
 * name; a `delete` that names a digest or a tag deletes that manifest or
 * tag, and a `delete` that names neither deletes the repository
 * (Distribution 3 sends repository deletes with the repository alone).
 */
export function geoEventType(event: Pick<RegistryEvent, "action" | "digest" | "tag">): GeoEventType {
  switch (event.action) {
    case "push":
      return GEO_EVENT_TYPES.PUSH;
    case "mount":
      return GEO_EVENT_TYPES.MOUNT;
    case "delete":
      return event.digest !== undefined || event.tag !== undefined ? GEO_EVENT_TYPES.DELETE : GEO_EVENT_TYPES.REPOSITORY_DELETE;
  }
}

/** The `geo_events` row of a validated registry event. */
export function rowFromRegistryEvent(event: RegistryEvent): NewGeoEventRow {
  return {
    registry_event_id: event.id,
    event_type: geoEventType(event),
    repository: event.repository,
    tag: event.tag ?? null,
    digest: event.digest ?? null,
    media_type: event.media_type ?? null,
    size: event.size ?? null,
    from_repository: event.from_repository ?? null,
    occurred_at: event.occurred_at ?? null,
    received_at: event.received_at,
    traceparent: event.trace?.traceparent ?? null,
    tracestate: event.trace?.tracestate ?? null,
  };
}

/** The geo event a row is published as. */
export function geoEventFromRow(row: GeoEventRow): GeoEvent {
  const trace =
    row.traceparent === null
      ? undefined
      : { traceparent: row.traceparent, ...(row.tracestate === null ? {} : { tracestate: row.tracestate }) };
  return {
    id: Number(row.id),
    event_type: row.event_type,
    repository: row.repository,
    ...(row.digest === null ? {} : { digest: row.digest }),
    ...(row.tag === null ? {} : { tag: row.tag }),
    ...(row.media_type === null ? {} : { media_type: row.media_type }),
    source_event_id: row.registry_event_id,
    created_at: row.created_at.toISOString(),
    ...(trace === undefined ? {} : { trace }),
  };
}

/** A GEO_EVENTS message, ready to publish. */
export interface GeoEventMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  /** `Nats-Msg-Id`: the row id, so a republished row is a JetStream duplicate. */
  readonly msgId: string;
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
}

/**
 * The GEO_EVENTS message of a row.
 *
 * @throws {ValidationError} when the row does not make a valid geo event
 * (only possible for rows written by something other than event-log).
 */
export function geoEventMessage(row: GeoEventRow): GeoEventMessage {
  const event = geoEventFromRow(row);
  return {
    subject: geoEventSubject(event.event_type, event.repository),
    data: encodeJson(GeoEvent, event),
    msgId: row.id,
    traceparent: event.trace?.traceparent,
    tracestate: event.trace?.tracestate,
  };
}

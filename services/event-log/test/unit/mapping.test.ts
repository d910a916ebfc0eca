import { describe, expect, it } from "vitest";
import { GeoEvent, RegistryEvent, assertValid, validate } from "@georep/schema";
import type { GeoEventRow } from "../../src/db.js";
import { geoEventFromRow, geoEventMessage, geoEventType, rowFromRegistryEvent } from "../../src/mapping.js";

const DIGEST = `sha256:${"a".repeat(64)}`;

describe("geoEventType", () => {
  it.each([
    { action: "push", digest: DIGEST, tag: "v1", expected: "push" },
    { action: "push", digest: DIGEST, tag: undefined, expected: "push" },
    { action: "mount", digest: DIGEST, tag: undefined, expected: "mount" },
    { action: "delete", digest: DIGEST, tag: undefined, expected: "delete" },
    { action: "delete", digest: undefined, tag: "v1", expected: "delete" },
    { action: "delete", digest: DIGEST, tag: "v1", expected: "delete" },
    { action: "delete", digest: undefined, tag: undefined, expected: "repository_delete" },
  ] as const)("$action digest=$digest tag=$tag → $expected", ({ action, digest, tag, expected }) => {
    expect(geoEventType({ action, digest, tag })).toBe(expected);
  });
});

describe("row and geo event mapping", () => {
  const event = assertValid(RegistryEvent, {
    id: "reg-1",
    action: "mount",
    repository: "team/app",
    digest: DIGEST,
    media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
    size: 42,
    from_repository: "base/alpine",
    occurred_at: "2025-01-01T00:00:00Z",
    received_at: "2025-01-01T00:00:01.5Z",
    trace: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "k=v" },
  });

  it("keeps every field of the registry event in the row", () => {
    expect(rowFromRegistryEvent(event)).toEqual({
      registry_event_id: "reg-1",
      event_type: "mount",
      repository: "team/app",
      tag: null,
      digest: DIGEST,
      media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
      size: 42,
      from_repository: "base/alpine",
      occurred_at: "2025-01-01T00:00:00Z",
      received_at: "2025-01-01T00:00:01.5Z",
      traceparent: event.trace?.traceparent,
      tracestate: "k=v",
    });
  });

  const row: GeoEventRow = {
    id: "17",
    registry_event_id: "reg-1",
    event_type: "delete",
    repository: "team/my.app",
    tag: "v1",
    digest: null,
    media_type: null,
    size: null,
    from_repository: null,
    occurred_at: null,
    received_at: new Date("2025-01-01T00:00:01Z"),
    created_at: new Date("2025-01-01T00:00:02Z"),
    published_at: null,
    traceparent: null,
    tracestate: null,
  };

  it("makes a valid GeoEvent of a row, omitting what the row lacks", () => {
    const geo = geoEventFromRow(row);
    expect(geo).toEqual({
      id: 17,
      event_type: "delete",
      repository: "team/my.app",
      tag: "v1",
      source_event_id: "reg-1",
      created_at: "2025-01-01T00:00:02.000Z",
    });
    expect(validate(GeoEvent, geo).ok).toBe(true);
  });

  it("addresses the message by type and encoded repository, with the row id as Nats-Msg-Id", () => {
    const message = geoEventMessage(row);
    expect(message.subject).toBe("georep.geo.events.delete.team/my%2Eapp");
    expect(message.msgId).toBe("17");
    expect(JSON.parse(new TextDecoder().decode(message.data))).toEqual(geoEventFromRow(row));
    expect(message.traceparent).toBeUndefined();
  });

  it("refuses a row that would not make a valid geo event", () => {
    expect(() => geoEventMessage({ ...row, digest: "not a digest" })).toThrow(/digest/);
  });
});

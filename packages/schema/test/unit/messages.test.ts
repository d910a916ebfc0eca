import { describe, expect, it } from "vitest";
import {
  GeoEvent,
  NotificationEnvelope,
  RegistryEvent,
  ResyncRequest,
  SiteStatusReport,
  TransferJob,
  ValidationError,
  assertValid,
  decodeJson,
  encodeJson,
  isNotificationAction,
  validate,
} from "../../src/index.js";
import type { TSchema } from "@sinclair/typebox";

// Shaped after the example in Distribution 2.8 docs/notifications.md.
const distributionEnvelope = {
  events: [
    {
      id: "320678d8-ca14-430f-8bb6-4ca139cd83f7",
      timestamp: "2016-03-09T14:44:26.402973972-08:00",
      action: "push",
      target: {
        mediaType: "application/vnd.docker.distribution.manifest.v2+json",
        size: 708,
        digest: "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf",
        length: 708,
        repository: "hello-world",
        url: "http://192.168.100.227:5000/v2/hello-world/manifests/sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf",
        tag: "latest",
      },
      request: {
        id: "6df24a34-0959-4923-81ca-14f09767db19",
        addr: "192.168.64.11:42961",
        host: "192.168.100.227:5000",
        method: "PUT",
        useragent: "curl/7.38.0",
      },
      actor: {},
      source: { addr: "xtal.local:5000", instanceID: "a53db899-3b4b-4a62-a067-8dd013beaca4" },
    },
    {
      id: "c5c1b2d0-0000-4000-8000-000000000001",
      timestamp: "2024-01-01T00:00:00Z",
      action: "delete",
      target: { digest: "sha256:aa", repository: "hello-world" },
      request: { id: "x", addr: "x", host: "x", method: "DELETE", useragent: "x" },
      actor: { name: "alice" },
      source: { addr: "x", instanceID: "y" },
    },
  ],
};

const now = "2026-11-24T13:00:00.123Z";

interface Case {
  name: string;
  schema: TSchema;
  value: unknown;
  ok: boolean;
  paths?: string[];
}

const cases: Case[] = [
  { name: "distribution 2.8 envelope", schema: NotificationEnvelope, value: distributionEnvelope, ok: true },
  {
    name: "envelope keeps unknown fields and unknown actions",
    schema: NotificationEnvelope,
    value: { events: [{ id: "1", timestamp: now, action: "future", target: { repository: "a", extra: 1 }, newField: true }] },
    ok: true,
  },
  { name: "envelope without events", schema: NotificationEnvelope, value: {}, ok: false, paths: ["/events"] },
  {
    name: "envelope event without target.repository",
    schema: NotificationEnvelope,
    value: { events: [{ id: "1", timestamp: now, action: "push", target: {} }] },
    ok: false,
    paths: ["/events/0/target/repository"],
  },
  {
    name: "registry event (push)",
    schema: RegistryEvent,
    value: { id: "e1", action: "push", repository: "lib/app", digest: "sha256:abc", tag: "v1.0", media_type: "application/vnd.oci.image.manifest.v1+json", received_at: now },
    ok: true,
  },
  {
    name: "registry event with trace context",
    schema: RegistryEvent,
    value: { id: "e1", action: "delete", repository: "a", received_at: now, trace: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" } },
    ok: true,
  },
  {
    name: "registry event: pull is not forwarded, bad repo/tag/digest/time, unknown field",
    schema: RegistryEvent,
    value: { id: "e1", action: "pull", repository: "Upper/Case", digest: "nope", tag: "-bad", received_at: "yesterday", x: 1 },
    ok: false,
    paths: ["/action", "/repository", "/digest", "/tag", "/received_at", "/x"],
  },
  {
    name: "geo event",
    schema: GeoEvent,
    value: { id: 42, event_type: "repository_delete", repository: "a/b", created_at: now },
    ok: true,
  },
  {
    name: "geo event with fractional id and bad type",
    schema: GeoEvent,
    value: { id: 1.5, event_type: "pull", repository: "a", created_at: now },
    ok: false,
    paths: ["/id", "/event_type"],
  },
  {
    name: "transfer job",
    schema: TransferJob,
    value: { repository: "a", generation: 0, reason: "backfill", priority: 8, requested_at: now },
    ok: true,
  },
  {
    name: "transfer job with out-of-range priority and missing generation",
    schema: TransferJob,
    value: { repository: "a", reason: "retry", priority: 10, requested_at: now },
    ok: false,
    paths: ["/generation", "/priority"],
  },
  { name: "resync all", schema: ResyncRequest, value: { requested_at: now }, ok: true },
  {
    name: "site status report",
    schema: SiteStatusReport,
    value: {
      site: "eu-1",
      role: "secondary",
      counts: { pending: 1, started: 0, synced: 10, failed: 2 },
      lag_seconds: { p50: 1.5, p99: null },
      bytes_copied: 1024,
      last_event_at: null,
      reported_at: now,
    },
    ok: true,
  },
  {
    name: "site status report with negative count and bad role",
    schema: SiteStatusReport,
    value: {
      site: "eu-1",
      role: "tertiary",
      counts: { pending: -1, started: 0, synced: 10, failed: 2 },
      lag_seconds: { p50: 0, p99: 0 },
      bytes_copied: 0,
      last_event_at: now,
      reported_at: now,
    },
    ok: false,
    paths: ["/role", "/counts/pending"],
  },
  {
    name: "site status report of a paused site",
    schema: SiteStatusReport,
    value: {
      site: "eu-1",
      role: "secondary",
      counts: { pending: 3, started: 0, synced: 10, failed: 0 },
      lag_seconds: { p50: null, p99: null },
      bytes_copied: 0,
      last_event_at: null,
      paused: true,
      reported_at: now,
    },
    ok: true,
  },
  {
    name: "site status report with a paused flag that is not a boolean",
    schema: SiteStatusReport,
    value: {
      site: "eu-1",
      role: "secondary",
      counts: { pending: 0, started: 0, synced: 0, failed: 0 },
      lag_seconds: { p50: null, p99: null },
      bytes_copied: 0,
      last_event_at: null,
      paused: "yes",
      reported_at: now,
    },
    ok: false,
    paths: ["/paused"],
  },
];

describe("message schemas", () => {
  it.each(cases)("$name", ({ schema, value, ok, paths }) => {
    const result = validate(schema, value);
    expect(result.ok).toBe(ok);
    if (!result.ok) expect(result.problems.map((p) => p.path).sort()).toEqual([...(paths ?? [])].sort());
  });

  it("describes enum problems with the allowed values", () => {
    const result = validate(TransferJob, { repository: "a", generation: 1, reason: "whim", priority: 1, requested_at: now });
    expect(result).toEqual({ ok: false, problems: [{ path: "/reason", message: "expected one of: event, backfill, retry, resync" }] });
  });

  it("accepts exactly the four notification actions", () => {
    expect(["push", "pull", "delete", "mount"].every(isNotificationAction)).toBe(true);
    expect(isNotificationAction("future")).toBe(false);
  });
});

describe("assertValid / decodeJson / encodeJson", () => {
  it("assertValid throws a ValidationError naming every problem", () => {
    try {
      assertValid(TransferJob, { repository: "A" });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      const e = err as ValidationError;
      expect(e.code).toBe("SCHEMA_ERR_VALIDATION");
      expect(e.problems.map((p) => p.path).sort()).toEqual(["/generation", "/priority", "/reason", "/repository", "/requested_at"]);
      expect(e.message).toContain("TransferJob");
    }
  });

  it("round-trips a payload through encodeJson/decodeJson", () => {
    const job = { repository: "a/b", generation: 3, reason: "event", priority: 2, requested_at: now } as const;
    const result = decodeJson(TransferJob, encodeJson(TransferJob, job));
    expect(result).toEqual({ ok: true, value: job });
  });

  it.each([
    { data: "not json", message: /not JSON/ },
    { data: new Uint8Array([0xff, 0xfe]), message: /not JSON/ },
  ])("decodeJson reports unparsable data at the root", ({ data, message }) => {
    const result = decodeJson(TransferJob, data);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.problems[0]?.path).toBe("");
      expect(result.problems[0]?.message).toMatch(message);
    }
  });

  it("encodeJson refuses an invalid payload", () => {
    expect(() => encodeJson(GeoEvent, { id: 0, event_type: "push", repository: "a", created_at: now })).toThrow(ValidationError);
  });
});

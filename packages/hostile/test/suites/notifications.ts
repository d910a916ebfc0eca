/**
 * Hostile notification bodies (corpus/notifications) against ingest: each
 * gets its clear 4xx, or a 200 with every bad event dead-lettered with its
 * reason beside the valid events (which are published), never a 5xx;
 * nothing bad reaches REGISTRY_EVENTS or the event log; ingest stays ready
 * and a normal push still replicates.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { CorpusCase } from "../support/corpus.js";
import { rawRequest } from "../support/http.js";
import { pushImage, tagDigest } from "../support/registry.js";
import type { HostileStack } from "../support/stack.js";
import { healthOfAll, waitUntil } from "../support/stack.js";
import { DLQ_SUBJECT_PREFIX, EVENTS_SUBJECT_PREFIX, EVENT_LOG_DLQ_HEADER, REASON_HEADER, REGISTRY_EVENTS, REGISTRY_EVENTS_DLQ, lastSeq, messagesAfter } from "../support/streams.js";

const EVENTS_PATH = "/api/v4/container_registry_event/events";

/** A secret of the same length as `secret` that differs in every character. */
function wrongSecret(secret: string): string {
  return [...secret].map((c) => (c === "A" ? "B" : "A")).join("");
}

/** `Authorization` for a case, or none. */
function authorizationFor(c: CorpusCase, secret: string): string | undefined {
  switch (c.authorization) {
    case "secret":
      return secret;
    case "none":
      return undefined;
    case "wrong":
      return wrongSecret(secret);
    case "bearer-secret":
      return `Bearer ${secret}`;
  }
}

/** The `%XX` decoding of a subject token (ingest's encoding escapes `.`, `*`, `>`, `%`, space, controls and non-ASCII). */
const decodeToken = (token: string) => decodeURIComponent(token);

interface IngestAnswer {
  received: number;
  published: number;
  duplicates: number;
  ignored: number;
  dead_lettered: number;
}

/** Counters of `georep_ingest_events_rejected_total` by reason. */
async function rejectedByReason(ingest: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${ingest}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^georep_ingest_events_rejected_total\{reason="([^"]+)"\} (\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

export function notificationSuite(get: () => HostileStack, corpus: readonly CorpusCase[]): void {
  describe("hostile notification bodies against ingest (corpus/notifications)", () => {
    it("has at least 30 cases, each saying what it attacks and what to expect", () => {
      expect(corpus.length).toBeGreaterThanOrEqual(30);
      for (const c of corpus) {
        expect(c.attack.length, c.file).toBeGreaterThan(10);
        expect(c.expectLine, c.file).toMatch(/^\d{3} /);
      }
    });

    for (const c of corpus) {
      it(`${c.file}: ${c.attack}`, async () => {
        const h = get();
        const ingest = h.primarySite.ingest!;
        const dlqBefore = await lastSeq(h.jsm, REGISTRY_EVENTS_DLQ);
        const eventsBefore = await lastSeq(h.jsm, REGISTRY_EVENTS);
        const headers: Record<string, string> = {};
        const authorization = authorizationFor(c, h.stack.notification_secret);
        if (authorization !== undefined) headers.authorization = authorization;
        if (c.contentType !== undefined) headers["content-type"] = c.contentType;
        if (c.contentEncoding !== undefined) headers["content-encoding"] = c.contentEncoding;

        const res = await rawRequest(ingest, { method: "POST", path: EVENTS_PATH, headers, body: c.body });
        const body = res.json as { code?: unknown } | undefined;
        const code = typeof body?.code === "string" ? body.code : "";
        const dlqAdded = (await lastSeq(h.jsm, REGISTRY_EVENTS_DLQ)) - dlqBefore;
        const publishedAdded = (await lastSeq(h.jsm, REGISTRY_EVENTS)) - eventsBefore;
        h.report.push(`notification ${c.file.padEnd(40)} ${String(res.status)} ${code.padEnd(32)} published=${publishedAdded} dead-lettered=${dlqAdded} (${c.body.length} bytes)`);

        expect(res.status, `${c.file} answered ${res.status}: ${res.text.slice(0, 300)}`).toBeLessThan(500);
        expect(res.status, `${c.file} answered ${res.text.slice(0, 300)}`).toBe(c.expect.status);
        const dlq = await messagesAfter(h.jsm, REGISTRY_EVENTS_DLQ, dlqBefore);
        const published = await messagesAfter(h.jsm, REGISTRY_EVENTS, eventsBefore);
        if ("code" in c.expect) {
          expect(body, res.text.slice(0, 300)).toMatchObject({ code: c.expect.code, message: expect.any(String) as unknown });
          expect(dlq, "a refused body dead-letters nothing").toEqual([]);
          expect(published, "a refused body publishes nothing").toEqual([]);
          return;
        }
        const want = c.expect;
        const answer = res.json as IngestAnswer;
        expect(answer).toMatchObject({ published: want.published, duplicates: want.duplicates, ignored: want.ignored, dead_lettered: want.deadLetters.length });
        expect(answer.received).toBe(answer.published + answer.duplicates + answer.ignored + answer.dead_lettered);

        // One dead letter per bad event, written by ingest (event-log's carry the stream they came from), with its reason.
        expect(dlq.filter((m) => m.headers[EVENT_LOG_DLQ_HEADER] !== undefined)).toEqual([]);
        expect(dlq.map((m) => (m.headers[REASON_HEADER] ?? "").split(":")[0]).sort()).toEqual([...want.deadLetters].sort());
        for (const m of dlq) {
          expect(m.subject.startsWith(DLQ_SUBJECT_PREFIX)).toBe(true);
          expect(m.headers[REASON_HEADER], "the reason names the problem").toMatch(/^[a-z_]+: \S/);
          expect(() => JSON.parse(m.data) as unknown, "the dead letter keeps the event as JSON").not.toThrow();
        }

        // Only the valid neighbours reach REGISTRY_EVENTS, each on ONE subject token for its repository, deduplicated by its id.
        expect(published).toHaveLength(want.published);
        for (const m of published) {
          const event = JSON.parse(m.data) as { id: string; action: string; repository: string };
          expect(event.id).toMatch(/^valid-/);
          expect(m.headers["Nats-Msg-Id"]).toBe(event.id);
          const tokens = m.subject.slice(EVENTS_SUBJECT_PREFIX.length).split(".");
          expect(tokens).toHaveLength(2);
          expect(tokens[0]).toBe(event.action);
          expect(decodeToken(tokens[1]!)).toBe(event.repository);
        }
      });
    }

    it("event-log recorded only the valid events: nothing bad got past ingest", async () => {
      const h = get();
      await waitUntil("event-log consumed every published event", 30_000, async () => {
        const info = await h.jsm.consumers.info(REGISTRY_EVENTS, "event-log");
        return info.num_pending === 0 && info.num_ack_pending === 0;
      });
      const all = await messagesAfter(h.jsm, REGISTRY_EVENTS_DLQ, 0, 10_000);
      const byEventLog = all.filter((m) => m.headers[EVENT_LOG_DLQ_HEADER] !== undefined).map((m) => `${m.subject}: ${m.headers[REASON_HEADER]}`);
      expect(byEventLog, "events ingest published that event-log had to dead-letter").toEqual([]);
      const rows = await h.primaryDb.query<{ registry_event_id: string; repository: string }>("select registry_event_id, repository from geo_events order by id");
      expect(rows.rows.length).toBeGreaterThan(0);
      for (const row of rows.rows) {
        expect(row.registry_event_id).toMatch(/^valid-/);
        expect(row.repository).toMatch(/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/);
      }
    });

    it("ingest stays ready, counts every rejection by reason, and a normal push still replicates", async () => {
      const h = get();
      const ingest = h.primarySite.ingest!;
      expect(Object.entries(await healthOfAll(h.stack)).filter(([, status]) => status !== 200), "services not ready").toEqual([]);

      const want: Record<string, number> = {};
      const add = (reason: string, n = 1) => (want[reason] = (want[reason] ?? 0) + n);
      for (const c of corpus) {
        if ("code" in c.expect) {
          if (c.expect.code === "INGEST_ERR_UNAUTHORIZED") add("unauthorized");
          if (c.expect.code === "INGEST_ERR_NOT_AN_ENVELOPE") add("not_an_envelope");
          if (c.expect.code === "INGEST_ERR_TOO_MANY_EVENTS") add("too_many_events");
        } else {
          for (const reason of c.expect.deadLetters) add(reason);
        }
      }
      expect(await rejectedByReason(ingest)).toEqual(want);

      const repository = `hostile/after-corpus-${randomBytes(3).toString("hex")}`;
      const digest = await pushImage(h.primary, repository, "v1");
      await waitUntil(`${repository}:v1 is on the secondary`, 60_000, async () => (await tagDigest(h.secondary, repository, "v1")) === digest);
    });
  });
}

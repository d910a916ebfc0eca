/**
 * Bad calls to the status API of both sites: forged and foreign cursors,
 * injection in the filters, invalid repository and site names, bad limits
 * and bodies, unknown routes, wrong methods, oversized requests and bytes no
 * HTTP client sends. Every one is a 4xx with `{code, message}`, never a
 * 5xx, and the data is the same afterwards.
 */
import { describe, expect, it } from "vitest";
import type { RawResponse } from "../support/http.js";
import { rawRequest, rawSocketRequest } from "../support/http.js";
import type { HostileStack } from "../support/stack.js";
import { healthOfAll, waitUntil } from "../support/stack.js";

type Site = "primary" | "secondary";

interface BadCall {
  readonly what: string;
  readonly site: Site;
  readonly method?: string;
  /** Sent verbatim (no normalisation of `..` or percent-encoding). */
  readonly path: string;
  readonly body?: string;
  readonly contentType?: string;
  /** `admin`: the right token; `wrong`: another one; default none. */
  readonly token?: "admin" | "wrong";
  /** Written to a raw socket as the request line's target (control bytes included). */
  readonly raw?: boolean;
  readonly status: number;
  readonly code: string;
  /** Part of the message (it must name the problem). */
  readonly message?: RegExp;
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
const cursorCall = (what: string, cursor: string, query = "", message: RegExp = /cursor/): BadCall => ({
  what,
  site: "secondary",
  path: `/api/v1/repositories?cursor=${encodeURIComponent(cursor)}${query}`,
  status: 400,
  code: "invalid_request",
  message,
});
const nameCall = (what: string, encodedName: string, message: RegExp = /repository|url/): BadCall => ({
  what,
  site: "secondary",
  path: `/api/v1/repositories/${encodedName}`,
  status: 400,
  code: "invalid_request",
  message,
});
const filterCall = (what: string, query: string, message: RegExp): BadCall => ({ what, site: "secondary", path: `/api/v1/repositories?${query}`, status: 400, code: "invalid_request", message });
const q = encodeURIComponent;

/** The calls that need a real cursor, made once the API handed one out. */
function cursorCalls(real: string, realUpdatedAt: string): BadCall[] {
  const middle = Math.floor(real.length / 2);
  const flipped = `${real.slice(0, middle)}${real[middle] === "A" ? "B" : "A"}${real.slice(middle + 1)}`;
  return [
    cursorCall("garbage that is not base64url", "!!!not-a-cursor!!!"),
    cursorCall("base64url of nothing", "AAAA"),
    cursorCall("a real cursor truncated", real.slice(0, -6)),
    cursorCall("a real cursor with one character changed", flipped),
    cursorCall("a real cursor with base64 padding appended", `${real}==`),
    cursorCall("a cursor of sort=updated_at used with sort=repository", realUpdatedAt, "", /another sort or order/),
    cursorCall("a cursor of order=asc used with order=desc", real, "&order=desc", /another sort or order/),
    cursorCall("a forged cursor of an unknown version", b64([2, "repository", "asc", "a", "a"])),
    cursorCall("a forged cursor whose key is not its repository", b64([1, "repository", "asc", "b", "a"])),
    cursorCall("a forged cursor with a NUL in the repository", b64([1, "repository", "asc", "a\u0000b", "a\u0000b"])),
    cursorCall("a forged updated_at cursor with a NUL in the repository", b64([1, "updated_at", "asc", "2026-01-01 00:00:00.000000+00", "a\u0000"]), "&sort=updated_at"),
    cursorCall("a forged retry_count beyond a Postgres integer", b64([1, "retry_count", "asc", Number.MAX_SAFE_INTEGER, "a"]), "&sort=retry_count"),
    cursorCall("a forged retry_count below zero", b64([1, "retry_count", "asc", -1, "a"]), "&sort=retry_count"),
    cursorCall("a forged timestamp with month 13 and hour 25", b64([1, "updated_at", "asc", "2026-13-45 25:61:61+00", "a"]), "&sort=updated_at"),
    cursorCall("a forged timestamp in year 0", b64([1, "updated_at", "asc", "0000-01-01 00:00:00+00", "a"]), "&sort=updated_at"),
    cursorCall("a forged timestamp with a +99:99 offset", b64([1, "updated_at", "asc", "2026-01-01 00:00:00+99:99", "a"]), "&sort=updated_at"),
    cursorCall("a forged timestamp that is SQL", b64([1, "last_synced_at", "asc", "now()); drop table repository_sync; --", "a"]), "&sort=last_synced_at"),
    cursorCall("a forged -infinity for updated_at", b64([1, "updated_at", "asc", "-infinity", "a"]), "&sort=updated_at"),
    cursorCall("a 3,000-character cursor", "A".repeat(3000), "", /cursor/),
  ];
}

const CALLS: readonly BadCall[] = [
  // SQL injection in the filters: state is an enum, the events' repository a name.
  filterCall("SQL in state", `state=${q("synced' OR '1'='1")}`, /state/),
  filterCall("a statement in state", `state=${q("failed; delete from repository_sync; --")}`, /state/),
  filterCall("a control character in name", `name=${q("a\u0001b")}`, /name/),
  filterCall("a traversal in name", `name=${q("../../etc")}`, /name/),
  filterCall("a 300-character name", `name=${"a".repeat(300)}`, /name/),
  filterCall("an unknown sort", `sort=${q("repository; drop table x")}`, /sort/),
  filterCall("an unknown order", `order=${q("asc, (select 1)")}`, /order/),
  { what: "SQL in the event log's repository", site: "primary", path: `/api/v1/events?repository=${q("x' or '1'='1")}`, status: 400, code: "invalid_request", message: /repository/ },
  { what: "SQL in the event log's after", site: "primary", path: `/api/v1/events?after=${q("1 or 1=1")}`, status: 400, code: "invalid_request", message: /after/ },
  { what: "a negative event id", site: "primary", path: "/api/v1/events?after=-1", status: 400, code: "invalid_request", message: /after/ },
  { what: "an event id beyond bigint", site: "primary", path: "/api/v1/events?after=99999999999999999999", status: 400, code: "invalid_request", message: /after/ },

  // Bad limits.
  filterCall("limit=0", "limit=0", /limit/),
  filterCall("limit=-1", "limit=-1", /limit/),
  filterCall("limit=501", "limit=501", /limit/),
  filterCall("limit=abc", "limit=abc", /limit/),
  filterCall("limit=1.5", "limit=1.5", /limit/),
  filterCall("limit=1e9", "limit=1e9", /limit/),
  filterCall("limit given twice", "limit=1&limit=2", /limit/),
  filterCall("limit=Infinity (ajv coerces it and skips the range check)", "limit=Infinity", /limit/),
  filterCall("limit=-Infinity", "limit=-Infinity", /limit/),
  filterCall("limit=1e999", "limit=1e999", /limit/),
  { what: "the events' limit=Infinity", site: "primary", path: "/api/v1/events?limit=Infinity", status: 400, code: "invalid_request", message: /limit/ },
  { what: "a wait timeout of Infinity", site: "secondary", path: "/api/v1/replication/wait?repository=team/app&tag=v1&timeout=Infinity", status: 400, code: "invalid_request", message: /timeout/ },
  { what: "the events' limit=0", site: "primary", path: "/api/v1/events?limit=0", status: 400, code: "invalid_request", message: /limit/ },

  // Invalid repository names in the path.
  nameCall("..", ".."),
  nameCall("a/../b", "a/../b"),
  nameCall("%2e%2e/%2e%2e/etc/passwd", "%2e%2e/%2e%2e/etc/passwd"),
  nameCall("an absolute path", "/etc/passwd"),
  nameCall("%00", "%00"),
  nameCall("a NUL inside", "team%00app"),
  nameCall("a control character", "team%01app"),
  nameCall("a 300-character name", "a".repeat(300)),
  nameCall("upper case", "Team/App"),
  nameCall("an empty component", "team//app"),
  nameCall("markup", q("<script>alert(1)</script>")),
  nameCall("SQL", q("x' or '1'='1")),
  nameCall("invalid percent-encoding", "team%ZZapp"),
  nameCall("overlong UTF-8 for ..", "%C0%AE%C0%AE/x"),
  nameCall("a UTF-16 surrogate half", "team%ED%A0%80"),
  { what: "a raw control byte in the path", site: "secondary", path: "/api/v1/repositories/team\u0001app", raw: true, status: 400, code: "invalid_request", message: /not valid HTTP/ },
  { what: "a raw NUL in the path", site: "secondary", path: "/api/v1/repositories/team\u0000app", raw: true, status: 400, code: "invalid_request", message: /not valid HTTP/ },
  { what: "a raw tab in the path", site: "secondary", path: "/api/v1/repositories/team\tapp", raw: true, status: 400, code: "invalid_request", message: /not valid HTTP/ },
  { what: "raw bytes outside ASCII in the path", site: "secondary", path: "/api/v1/repositories/team\u00ff\u00feapp", raw: true, status: 400, code: "invalid_request", message: /not valid HTTP/ },
  { what: "a traversal in the replication wait", site: "secondary", path: `/api/v1/replication/wait?repository=${q("../x")}&tag=v1`, status: 400, code: "invalid_request", message: /repository/ },
  { what: "a traversal in the waited tag", site: "secondary", path: `/api/v1/replication/wait?repository=team/app&tag=${q("../v1")}`, status: 400, code: "invalid_request", message: /tag/ },
  { what: "a forged digest in the wait", site: "secondary", path: `/api/v1/replication/wait?repository=team/app&digest=${q("sha256:../../x")}`, status: 400, code: "invalid_request", message: /digest/ },
  { what: "a wait timeout of 0", site: "secondary", path: "/api/v1/replication/wait?repository=team/app&tag=v1&timeout=0", status: 400, code: "invalid_request", message: /timeout/ },
  { what: "a wait timeout of a day", site: "secondary", path: "/api/v1/replication/wait?repository=team/app&tag=v1&timeout=86400", status: 400, code: "invalid_request", message: /timeout/ },

  // Actions with the admin token but bad input.
  { what: "resync of '..' with the token", site: "secondary", method: "POST", path: "/api/v1/repositories/../resync", token: "admin", status: 400, code: "invalid_request", message: /repository/ },
  { what: "resync of an encoded traversal with the token", site: "secondary", method: "POST", path: "/api/v1/repositories/%2e%2e%2f%2e%2e/resync", token: "admin", status: 400, code: "invalid_request", message: /repository/ },
  { what: "resync scope that is SQL", site: "secondary", method: "POST", path: "/api/v1/resync", token: "admin", contentType: "application/json", body: JSON.stringify({ scope: "all' or 1=1 --" }), status: 400, code: "invalid_request", message: /scope/ },
  { what: "resync with an extra field", site: "secondary", method: "POST", path: "/api/v1/resync", token: "admin", contentType: "application/json", body: JSON.stringify({ scope: "failed", where: "1=1" }), status: 400, code: "invalid_request", message: /where/ },
  { what: "resync scope hidden under __proto__", site: "secondary", method: "POST", path: "/api/v1/resync", token: "admin", contentType: "application/json", body: '{"__proto__":{"scope":"all"}}', status: 400, code: "invalid_request" },
  { what: "resync with malformed JSON", site: "secondary", method: "POST", path: "/api/v1/resync", token: "admin", contentType: "application/json", body: '{"scope": "all"', status: 400, code: "invalid_request", message: /JSON/ },
  { what: "resync with deeply nested JSON", site: "secondary", method: "POST", path: "/api/v1/resync", token: "admin", contentType: "application/json", body: `${"[".repeat(5_000)}${"]".repeat(5_000)}`, status: 400, code: "invalid_request" },
  { what: "resync with a text/plain body", site: "secondary", method: "POST", path: "/api/v1/resync", token: "admin", contentType: "text/plain", body: "scope=all", status: 400, code: "invalid_request", message: /JSON object/ },
  { what: "resync with a form body", site: "secondary", method: "POST", path: "/api/v1/resync", token: "admin", contentType: "application/x-www-form-urlencoded", body: "scope=all", status: 415, code: "unsupported_media_type" },
  { what: "resync with a 2 MiB body", site: "secondary", method: "POST", path: "/api/v1/resync", token: "admin", contentType: "application/json", body: JSON.stringify({ scope: "all", pad: "x".repeat(2 * 1024 * 1024) }), status: 413, code: "payload_too_large" },
  { what: "a site name that is a traversal", site: "primary", method: "POST", path: "/api/v1/sites/..%2F..%2Fetc/resync", token: "admin", contentType: "application/json", body: JSON.stringify({ scope: "all" }), status: 400, code: "invalid_request", message: /site/ },
  { what: "a site name with a NATS wildcard", site: "primary", method: "POST", path: "/api/v1/sites/%3E/resync", token: "admin", contentType: "application/json", body: JSON.stringify({ scope: "all" }), status: 400, code: "invalid_request", message: /site/ },
  { what: "a site resync naming a bad repository", site: "primary", method: "POST", path: "/api/v1/sites/secondary-1/resync", token: "admin", contentType: "application/json", body: JSON.stringify({ repository: "../../x" }), status: 400, code: "invalid_request", message: /repository/ },

  // Unknown routes (and no file outside the dashboard's directory).
  { what: "an unknown API route", site: "secondary", path: "/api/v1/nope", status: 404, code: "not_found" },
  { what: "another API version", site: "secondary", path: "/api/v2/site", status: 404, code: "not_found" },
  { what: "a dotfile", site: "secondary", path: "/.env", status: 404, code: "not_found" },
  { what: "an encoded traversal out of the dashboard", site: "secondary", path: "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", status: 403, code: "forbidden" },
  { what: "an encoded-slash traversal out of the dashboard", site: "secondary", path: "/..%2F..%2F..%2F..%2Fetc%2Fpasswd", status: 404, code: "not_found" },
  { what: "a secondary-only route on the primary", site: "primary", path: "/api/v1/repositories", status: 409, code: "wrong_role" },
  { what: "a primary-only route on the secondary", site: "secondary", path: "/api/v1/events", status: 409, code: "wrong_role" },

  // Wrong methods.
  { what: "DELETE on the site summary", site: "secondary", method: "DELETE", path: "/api/v1/site", status: 404, code: "not_found" },
  { what: "PUT on the repositories", site: "secondary", method: "PUT", path: "/api/v1/repositories", contentType: "application/json", body: "{}", status: 404, code: "not_found" },
  { what: "GET on an action", site: "secondary", method: "GET", path: "/api/v1/pause", status: 404, code: "not_found" },
  { what: "PATCH on an action", site: "secondary", method: "PATCH", path: "/api/v1/resume", status: 404, code: "not_found" },
  { what: "DELETE on a repository", site: "secondary", method: "DELETE", path: "/api/v1/repositories/team/app", status: 404, code: "not_found" },

  // Huge requests.
  filterCall("an 8 KB name filter", `name=${"a".repeat(8 * 1024)}`, /name/),
  { what: "a 64 KB query string", site: "secondary", path: `/api/v1/repositories?name=${"a".repeat(64 * 1024)}`, status: 431, code: "request_header_fields_too_large" },
  { what: "a 64 KB repository name", site: "secondary", path: `/api/v1/repositories/${"a".repeat(64 * 1024)}`, status: 431, code: "request_header_fields_too_large" },
];

async function send(h: HostileStack, call: BadCall): Promise<RawResponse> {
  const origin = call.site === "primary" ? h.primarySite.status : h.secondarySite.status;
  if (call.raw === true) return rawSocketRequest(origin, `${call.method ?? "GET"} ${call.path} HTTP/1.1`);
  const headers: Record<string, string> = {};
  if (call.contentType !== undefined) headers["content-type"] = call.contentType;
  if (call.token === "admin") headers.authorization = `Bearer ${h.stack.admin_token}`;
  if (call.token === "wrong") headers.authorization = "Bearer wrong-token-of-some-length";
  return rawRequest(origin, { method: call.method ?? "GET", path: call.path, headers, ...(call.body === undefined ? {} : { body: call.body }) });
}

interface Snapshot {
  readonly repositories: string[];
  readonly geoEvents: number;
  readonly paused: boolean;
  readonly tables: string[];
}

async function snapshot(h: HostileStack): Promise<Snapshot> {
  const repositories = (await h.secondaryDb.query<{ repository: string }>("select repository from repository_sync order by repository")).rows.map((r) => r.repository);
  const geoEvents = Number((await h.primaryDb.query<{ n: string }>("select count(*) as n from geo_events")).rows[0]!.n);
  const paused = (await h.secondaryDb.query<{ paused: boolean }>("select paused from site_control where id = 1")).rows[0]!.paused;
  const tables = [
    ...(await h.secondaryDb.query<{ t: string }>("select tablename as t from pg_tables where schemaname = 'public'")).rows.map((r) => `secondary.${r.t}`),
    ...(await h.primaryDb.query<{ t: string }>("select tablename as t from pg_tables where schemaname = 'public'")).rows.map((r) => `primary.${r.t}`),
  ].sort();
  return { repositories, geoEvents, paused, tables };
}

export function statusApiSuite(get: () => HostileStack): void {
  describe("bad calls to the status API", () => {
    let before: Snapshot | undefined;
    let calls: BadCall[] = [...CALLS];

    it("first: the secondary tracks every repository of the primary (so nothing new appears during the bad calls)", async () => {
      const h = get();
      await waitUntil("every primary repository is tracked on the secondary", 90_000, async () => {
        const tracked = new Set((await h.secondaryDb.query<{ repository: string }>("select repository from repository_sync")).rows.map((r) => r.repository));
        return (await h.primary.catalog()).every((r) => tracked.has(r));
      });
      before = await snapshot(h);
      expect(before.repositories.length).toBeGreaterThan(10);
      // Real cursors to tamper with.
      const page = (await (await fetch(`${h.secondarySite.status}/api/v1/repositories?limit=1`)).json()) as { next_cursor: string | null };
      const byUpdate = (await (await fetch(`${h.secondarySite.status}/api/v1/repositories?limit=1&sort=updated_at`)).json()) as { next_cursor: string | null };
      expect(page.next_cursor).toEqual(expect.any(String));
      expect(byUpdate.next_cursor).toEqual(expect.any(String));
      const next = await fetch(`${h.secondarySite.status}/api/v1/repositories?limit=1&cursor=${page.next_cursor!}`);
      expect(next.status, "the untouched cursor works").toBe(200);
      await next.body?.cancel();
      calls = [...cursorCalls(page.next_cursor!, byUpdate.next_cursor!), ...CALLS];
    });

    it("answers every bad call with a 4xx and {code, message}, never a 5xx", async () => {
      const h = get();
      const wrong: string[] = [];
      for (const call of calls) {
        const res = await send(h, call).catch((error: Error) => error);
        if (res instanceof Error) {
          h.report.push(`status-api ${call.site.padEnd(9)} no answer: ${res.message} ${call.what}`);
          wrong.push(`${call.site} ${call.method ?? "GET"} ${call.what}: no answer (${res.message})`);
          continue;
        }
        const body = res.json as { code?: unknown; message?: unknown } | undefined;
        h.report.push(`status-api ${call.site.padEnd(9)} ${String(res.status)} ${(typeof body?.code === "string" ? body.code : "-").padEnd(32)} ${call.what}`);
        const problems: string[] = [];
        if (res.status >= 500) problems.push("a 5xx");
        if (res.status !== call.status) problems.push(`status ${res.status}, expected ${call.status}`);
        if (typeof body?.code !== "string" || !/^[a-z_]+$/.test(body.code)) problems.push(`no snake_case code`);
        else if (body.code !== call.code) problems.push(`code ${body.code}, expected ${call.code}`);
        if (typeof body?.message !== "string" || body.message === "") problems.push("no message");
        else if (call.message !== undefined && !call.message.test(body.message)) problems.push(`message does not match ${String(call.message)}`);
        if (res.text.includes("root:x:0:0")) problems.push("served /etc/passwd");
        if (problems.length > 0) wrong.push(`${call.site} ${call.method ?? "GET"} ${call.what}: ${problems.join(", ")}: ${res.text.slice(0, 200)}`);
      }
      expect(wrong).toEqual([]);
    });

    it("takes injection in the name filter literally: 200 and no rows, not a query", async () => {
      const h = get();
      for (const name of ["' OR 1=1 --", "'; drop table repository_sync; --", "%", "_", "\\", "x' union select * from site_control --"]) {
        const res = await rawRequest(h.secondarySite.status, { path: `/api/v1/repositories?name=${q(name)}` });
        expect(res.status, name).toBe(200);
        expect((res.json as { items: unknown[] }).items, name).toEqual([]);
      }
      // …and a plain substring still filters.
      const res = await rawRequest(h.secondarySite.status, { path: "/api/v1/repositories?name=hostile%2F&limit=500" });
      const items = (res.json as { items: { repository: string }[] }).items;
      expect(items.length).toBeGreaterThan(0);
      for (const item of items) expect(item.repository).toContain("hostile/");
    });

    it("leaves the data as it was: the same tracked repositories, event log, pause switch and tables; every service ready", async () => {
      const h = get();
      expect(await snapshot(h)).toEqual(before);
      expect(Object.entries(await healthOfAll(h.stack)).filter(([, status]) => status !== 200), "services not ready").toEqual([]);
    });
  });
}

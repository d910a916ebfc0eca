import { describe, expect, it } from "vitest";
import { decodeCursor, encodeCursor } from "../../src/cursor.js";
import type { RepositoryCursor } from "../../src/cursor.js";

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");

describe("repository cursors", () => {
  const valid: RepositoryCursor[] = [
    { sort: "repository", order: "asc", key: "team/app", repository: "team/app" },
    { sort: "updated_at", order: "desc", key: "2026-11-26 17:00:00.123456+00", repository: "a" },
    { sort: "last_synced_at", order: "asc", key: "-infinity", repository: "a/b" },
    { sort: "last_synced_at", order: "desc", key: "2026-11-26 17:00:00+05:30", repository: "a/b" },
    { sort: "retry_count", order: "asc", key: 7, repository: "x" },
  ];
  it.each(valid)("round-trips $sort $order", (cursor) => {
    const text = encodeCursor(cursor);
    expect(text).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(text, cursor.sort, cursor.order)).toEqual({ ok: true, cursor });
  });

  it("refuses a cursor made for another sort or order as a mismatch", () => {
    const text = encodeCursor({ sort: "retry_count", order: "asc", key: 1, repository: "x" });
    expect(decodeCursor(text, "retry_count", "desc")).toEqual({ ok: false, problem: "mismatch" });
    expect(decodeCursor(text, "repository", "asc")).toEqual({ ok: false, problem: "mismatch" });
  });

  const malformed: [string, string][] = [
    ["empty", ""],
    ["not base64url", "abc+/="],
    ["not JSON", Buffer.from("{nope").toString("base64url")],
    ["an object", b64({ sort: "repository" })],
    ["another version", b64([2, "repository", "asc", "a", "a"])],
    ["an unknown sort", b64([1, "size", "asc", 1, "a"])],
    ["an unknown order", b64([1, "repository", "up", "a", "a"])],
    ["a repository key that is not the repository", b64([1, "repository", "asc", "b", "a"])],
    ["a fractional retry count", b64([1, "retry_count", "asc", 1.5, "a"])],
    ["a negative retry count", b64([1, "retry_count", "asc", -1, "a"])],
    ["a timestamp Postgres did not print", b64([1, "updated_at", "asc", "yesterday", "a"])],
    ["SQL in the key", b64([1, "updated_at", "asc", "2026-01-01 00:00:00+00'; drop table x; --", "a"])],
    ["-infinity for updated_at (never null)", b64([1, "updated_at", "asc", "-infinity", "a"])],
    ["an empty repository", b64([1, "retry_count", "asc", 1, ""])],
    ["a too long cursor", "a".repeat(2049)],
  ];
  it.each(malformed)("refuses %s as malformed", (_name, text) => {
    expect(decodeCursor(text, "repository", "asc").ok).toBe(false);
    for (const sort of ["repository", "updated_at", "last_synced_at", "retry_count"] as const) {
      const result = decodeCursor(text, sort, "asc");
      expect(result).toEqual({ ok: false, problem: "malformed" });
    }
  });
});

import { describe, expect, it } from "vitest";
import { parseResyncRequest } from "../../src/resync.js";

const bytes = (value: unknown): Uint8Array => new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value));

describe("parseResyncRequest", () => {
  it.each([
    ["one repository", { repository: "team/app", requested_at: "2024-05-01T10:00:00Z", requested_by: "ops" }, { repository: "team/app" }],
    ["one repository, no time", { repository: "team/app" }, { repository: "team/app" }],
    ["all", { requested_at: "2024-05-01T10:00:00Z" }, "all"],
    ["all, empty object", {}, "all"],
    ["all, empty payload", "", "all"],
    ["the failed ones", { only_failed: true }, "failed"],
    ["only_failed false means all", { only_failed: false }, "all"],
  ])("accepts %s", (_name, payload, scope) => {
    expect(parseResyncRequest(bytes(payload))).toMatchObject({ ok: true, scope });
  });

  it.each([
    ["not JSON", "{", /not JSON/],
    ["a bad repository name", { repository: "Team/App" }, /\/repository: not a valid repository name/],
    ["an unknown property", { repo: "team/app" }, /\/repo: unknown property/],
    ["a bad time", { requested_at: "yesterday" }, /\/requested_at/],
    ["a repository and only_failed", { repository: "team/app", only_failed: true }, /not both/],
    ["only_failed not a boolean", { only_failed: "yes" }, /\/only_failed/],
  ])("refuses %s", (_name, payload, message) => {
    const parsed = parseResyncRequest(bytes(payload));
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toMatch(message);
  });
});

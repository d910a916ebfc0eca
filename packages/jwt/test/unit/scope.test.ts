import { describe, expect, it } from "vitest";
import { ScopeError, catalogAccess, formatScope, normalizeAccess, parseScope, parseScopes, pullAccess, pushAccess } from "../../src/index.js";

describe("parseScope", () => {
  it.each([
    ["repository:team/app:pull", { type: "repository", name: "team/app", actions: ["pull"] }],
    ["repository:team/app:pull,push", { type: "repository", name: "team/app", actions: ["pull", "push"] }],
    ["repository:localhost:5000/team/app:pull", { type: "repository", name: "localhost:5000/team/app", actions: ["pull"] }],
    ["repository(plugin):vieux/sshfs:pull", { type: "repository(plugin)", name: "vieux/sshfs", actions: ["pull"] }],
    ["registry:catalog:*", { type: "registry", name: "catalog", actions: ["*"] }],
    ["repository:a__b/c-d.e:pull,pull", { type: "repository", name: "a__b/c-d.e", actions: ["pull"] }],
  ])("parses %s", (input, expected) => {
    expect(parseScope(input)).toEqual(expected);
    expect(formatScope(parseScope(input))).toBe(input.replace(",pull,pull", ",pull").replace(":pull,pull", ":pull"));
  });

  it.each([
    ["", "expected type:name:actions"],
    ["repository:team/app", "expected type:name:actions"],
    ["repository::pull", "empty resource name"],
    ["repository:Team/App:pull", "invalid repository path component"],
    ["repository:team//app:pull", "empty path component"],
    ["repository:team/app:", "no actions"],
    ["repository:team/app:pull,PUSH", "invalid action"],
    ["Repo:team/app:pull", "invalid resource type"],
  ])("refuses %j", (input, reason) => {
    expect(() => parseScope(input)).toThrow(ScopeError);
    expect(() => parseScope(input)).toThrow(reason);
  });

  it("splits space-separated scopes and merges entries", () => {
    const parsed = parseScopes(["repository:a:pull repository:a:push", "registry:catalog:*"]);
    expect(normalizeAccess(parsed)).toEqual([
      { type: "repository", name: "a", actions: ["pull", "push"] },
      { type: "registry", name: "catalog", actions: ["*"] },
    ]);
  });

  it("has helpers for the common scopes", () => {
    expect(formatScope(pullAccess("x/y"))).toBe("repository:x/y:pull");
    expect(formatScope(pushAccess("x/y"))).toBe("repository:x/y:pull,push");
    expect(formatScope(catalogAccess())).toBe("registry:catalog:*");
  });
});

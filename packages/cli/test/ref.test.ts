import { describe, expect, it } from "vitest";
import { UsageError } from "../src/errors.js";
import { digestProblem, formatWaitReference, parseRepositoryName, parseWaitReference } from "../src/ref.js";
import type { WaitReference } from "../src/ref.js";

const D = `sha256:${"0123456789abcdef".repeat(4)}`;

describe("parseWaitReference", () => {
  const good: [string, WaitReference][] = [
    ["app", { repository: "app", tag: "latest" }],
    ["team/app", { repository: "team/app", tag: "latest" }],
    ["team/app:v1", { repository: "team/app", tag: "v1" }],
    ["team/app:V1.2_rc-3", { repository: "team/app", tag: "V1.2_rc-3" }],
    ["a/b/c:_x", { repository: "a/b/c", tag: "_x" }],
    ["my-org/my.app__x:1", { repository: "my-org/my.app__x", tag: "1" }],
    [`team/app@${D}`, { repository: "team/app", digest: D }],
    [`team/app@sha512:${"f".repeat(128)}`, { repository: "team/app", digest: `sha512:${"f".repeat(128)}` }],
    [`team/app:${"t".repeat(128)}`, { repository: "team/app", tag: "t".repeat(128) }],
  ];
  it.each(good)("%s", (input, expected) => {
    expect(parseWaitReference(input)).toEqual(expected);
  });

  const bad: [string, string][] = [
    ["", "it is empty"],
    [":v1", "the repository name is empty"],
    ["Team/app:v1", 'repository name "Team/app" must be lowercase'],
    ["team//app", "empty path component"],
    ["/team/app", "empty path component"],
    ["team/app/", "empty path component"],
    ["team/-app", 'path component "-app"'],
    ["team/app.", 'path component "app."'],
    ["team/a..b", 'path component "a..b"'],
    ["team/app!", 'invalid character "!"'],
    ["team/app:", "the tag is empty"],
    ["team/app:-v1", 'tag "-v1" must start with a letter, digit or "_"'],
    ["team/app:v 1", 'tag "v 1" contains the invalid character " "'],
    [`team/app:${"t".repeat(129)}`, "the tag is 129 characters long; the limit is 128"],
    ["localhost:5000/team/app:v1", 'contains ":" (a registry host or port?)'],
    ["team/app@", 'digest "" is not ALGORITHM:HEX'],
    ["team/app@sha256", 'digest "sha256" is not ALGORITHM:HEX'],
    ["team/app@sha256:abc", "a sha256 digest has 64 lowercase hex digits"],
    [`team/app@sha256:${"A".repeat(64)}`, "a sha256 digest has 64 lowercase hex digits"],
    [`team/app@md5:${"a".repeat(32)}`, 'digest algorithm "md5" is not supported'],
    [`team/app:v1@${D}`, "give a tag or a digest, not both"],
    [`${"a".repeat(256)}:v1`, "256 characters long; the limit is 255"],
  ];
  it.each(bad)("%j is refused: %s", (input, problem) => {
    expect(() => parseWaitReference(input)).toThrow(UsageError);
    expect(() => parseWaitReference(input)).toThrow(problem);
    expect(() => parseWaitReference(input)).toThrow(`bad reference "${input}"`);
  });

  it("formats back", () => {
    expect(formatWaitReference(parseWaitReference("team/app:v1"))).toBe("team/app:v1");
    expect(formatWaitReference(parseWaitReference(`team/app@${D}`))).toBe(`team/app@${D}`);
  });
});

describe("parseRepositoryName", () => {
  it("accepts distribution names and refuses others with a hint", () => {
    expect(parseRepositoryName("team/app")).toBe("team/app");
    expect(parseRepositoryName("a0/b-c/d_e/f.g/h__i/j--k")).toBe("a0/b-c/d_e/f.g/h__i/j--k");
    for (const name of ["", "Team", "a/", "a:b", "a b", "a___b", "a/.b"]) {
      try {
        parseRepositoryName(name);
        expect.unreachable(name);
      } catch (error) {
        expect(error).toBeInstanceOf(UsageError);
        expect((error as UsageError).message).toMatch(/^bad repository name: /);
        expect((error as UsageError).hint).toContain("lowercase");
      }
    }
  });

  it("digestProblem is undefined only for well-formed digests", () => {
    expect(digestProblem(D)).toBeUndefined();
    expect(digestProblem(`sha256:${"a".repeat(63)}`)).toBeDefined();
  });
});

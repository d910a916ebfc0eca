import { describe, expect, it } from "vitest";
import {
  DEFAULT_TAG,
  InvalidReferenceError,
  formatReference,
  isDigest,
  parseDigest,
  parseReference,
  referenceTarget,
  validateRepositoryName,
  validateTag,
} from "../../src/index.js";
import type { ParseReferenceOptions, Reference } from "../../src/index.js";

const SHA256 = `sha256:${"a1".repeat(32)}`;
const SHA512 = `sha512:${"b2".repeat(64)}`;

/** Runs `fn`, expecting an InvalidReferenceError, and returns it. */
function invalid(fn: () => unknown): InvalidReferenceError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidReferenceError);
    expect((err as InvalidReferenceError).code).toBe("REGISTRY_ERR_INVALID_REFERENCE");
    return err as InvalidReferenceError;
  }
  throw new Error("expected an InvalidReferenceError");
}

describe("parseReference: valid references", () => {
  it.each<[string, Reference, ParseReferenceOptions?]>([
    ["alpine", { registry: "docker.io", repository: "library/alpine" }],
    ["alpine:3.20", { registry: "docker.io", repository: "library/alpine", tag: "3.20" }],
    ["library/alpine", { registry: "docker.io", repository: "library/alpine" }],
    ["docker.io/alpine", { registry: "docker.io", repository: "library/alpine" }],
    ["index.docker.io/myorg/app", { registry: "docker.io", repository: "myorg/app" }],
    ["myorg/app:v1", { registry: "docker.io", repository: "myorg/app", tag: "v1" }],
    ["ghcr.io/org/team/app:1.0", { registry: "ghcr.io", repository: "org/team/app", tag: "1.0" }],
    ["ghcr.io/app", { registry: "ghcr.io", repository: "app" }],
    ["localhost/app", { registry: "localhost", repository: "app" }],
    ["localhost:5000/app:dev", { registry: "localhost:5000", repository: "app", tag: "dev" }],
    ["registry:5000/team/app", { registry: "registry:5000", repository: "team/app" }],
    ["127.0.0.1:5000/a/b", { registry: "127.0.0.1:5000", repository: "a/b" }],
    ["[::1]:5000/app:tag", { registry: "[::1]:5000", repository: "app", tag: "tag" }],
    ["my-registry.example.com/app", { registry: "my-registry.example.com", repository: "app" }],
    // Docker's rule: an upper-case first component is a host, not a Docker Hub org.
    ["Registry/app", { registry: "Registry", repository: "app" }],
    [`quay.io/a/b@${SHA256}`, { registry: "quay.io", repository: "a/b", digest: SHA256 }],
    [`quay.io/a/b:v2@${SHA256}`, { registry: "quay.io", repository: "a/b", tag: "v2", digest: SHA256 }],
    [`localhost:5000/app@${SHA512}`, { registry: "localhost:5000", repository: "app", digest: SHA512 }],
    ["ghcr.io/a__b/c---d/e.f_g-h", { registry: "ghcr.io", repository: "a__b/c---d/e.f_g-h" }],
    ["ghcr.io/app:_Build.1-RC", { registry: "ghcr.io", repository: "app", tag: "_Build.1-RC" }],
    [`ghcr.io/app:${"t".repeat(128)}`, { registry: "ghcr.io", repository: "app", tag: "t".repeat(128) }],
    // registry (7) + "/" + 247 = 255, the limit.
    [`ghcr.io/${"a".repeat(247)}`, { registry: "ghcr.io", repository: "a".repeat(247) }],
    ["app", { registry: "registry.local:5000", repository: "app" }, { defaultRegistry: "registry.local:5000" }],
    ["app:1", { registry: "docker.io", repository: "library/app", tag: "1" }, { defaultRegistry: "docker.io" }],
    ["ghcr.io/app", { registry: "ghcr.io", repository: "app" }, { defaultRegistry: "registry.local" }],
  ])("%s", (input, expected, options) => {
    const ref = parseReference(input, options);
    expect(ref).toEqual(expected);
    // Formatting is canonical: it parses back to the same reference.
    expect(parseReference(formatReference(ref), options)).toEqual(ref);
  });
});

describe("parseReference: invalid references name the problem", () => {
  it.each<[string, string]>([
    ["", "reference is empty"],
    ["Alpine", "repository name must be lowercase"],
    ["docker.io/Library/alpine", "repository name must be lowercase"],
    ["ghcr.io/org/App:v1", "repository name must be lowercase"],
    ["a//b", "empty path component"],
    ["/alpine", "empty path component"],
    ["ghcr.io/org/", "empty path component"],
    ["localhost:5000/", "repository name is empty"],
    ["ghcr.io/a..b", 'contains ".."'],
    ["ghcr.io/../etc/passwd", 'contains ".."'],
    ["ghcr.io/-app", "must start and end with a lowercase letter or digit"],
    ["ghcr.io/app-", "must start and end with a lowercase letter or digit"],
    ["ghcr.io/a._b", "invalid separator"],
    ["ghcr.io/a___b", "invalid separator"],
    ["ghcr.io/a b", 'invalid character " "'],
    ["ghcr.io/caf\u00e9", 'invalid character "\u00e9"'],
    [`ghcr.io/${"a".repeat(248)}`, "is 256 characters long; the limit is 255"],
    ["a".repeat(300), "the limit is 255"],
    ["alpine:", "tag is empty"],
    ["alpine:-x", 'must start with a letter, digit or "_"'],
    ["alpine:.x", 'must start with a letter, digit or "_"'],
    ["alpine:v1!", 'invalid character "!"'],
    [`alpine:${"t".repeat(129)}`, "tag is 129 characters long; the limit is 128"],
    ["alpine@", 'digest must have the form "<algorithm>:<hex>"'],
    ["alpine@sha256", 'digest must have the form "<algorithm>:<hex>"'],
    ["alpine@sha256:abc", "sha256 digest must have 64 hex characters, not 3"],
    [`alpine@sha256:${"A1".repeat(32)}`, "sha256 digest must be lower-case hex"],
    [`alpine@sha512:${"a".repeat(64)}`, "sha512 digest must have 128 hex characters, not 64"],
    [`alpine@md5:${"a".repeat(32)}`, 'unsupported digest algorithm "md5"'],
    [`alpine@${SHA256}@${SHA256}`, "lower-case hex"],
    ["a".repeat(64), "image ID, not a repository name"],
    ["bad_host.com/app", 'registry "bad_host.com" is not a valid host[:port]'],
    ["-bad.com/app", 'registry "-bad.com" is not a valid host[:port]'],
    ["host.com:50x/app", 'registry "host.com:50x" is not a valid host[:port]'],
  ])("%j", (input, problem) => {
    const err = invalid(() => parseReference(input));
    expect(err.message).toContain(problem);
    // The message quotes the input so a config error can be traced back.
    expect(err.message).toContain(JSON.stringify(input));
    expect(err.input).toBe(input);
  });
});

describe("referenceTarget", () => {
  it.each<[string, string]>([
    ["alpine", DEFAULT_TAG],
    ["alpine:3", "3"],
    [`alpine@${SHA256}`, SHA256],
    [`alpine:3@${SHA256}`, SHA256],
  ])("%s → %s", (input, target) => {
    expect(referenceTarget(parseReference(input))).toBe(target);
  });
});

describe("formatReference", () => {
  it.each<[Reference, string]>([
    [{ registry: "docker.io", repository: "library/alpine" }, "docker.io/library/alpine"],
    [{ registry: "localhost:5000", repository: "a/b", tag: "v1" }, "localhost:5000/a/b:v1"],
    [{ registry: "ghcr.io", repository: "x", tag: "v1", digest: SHA256 }, `ghcr.io/x:v1@${SHA256}`],
  ])("%j → %s", (ref, text) => {
    expect(formatReference(ref)).toBe(text);
  });
});

describe("validateRepositoryName", () => {
  it.each(["a", "library/alpine", "a/b/c/d", "a0.b_c__d---e", "x".repeat(255)])("accepts %s", (name) => {
    expect(() => validateRepositoryName(name)).not.toThrow();
  });

  it.each<[string, string]>([
    ["", "repository name is empty"],
    ["Library/alpine", "must be lowercase"],
    ["a//b", "empty path component"],
    ["a/", "empty path component"],
    ["a..b", 'contains ".."'],
    ["a/_b", "must start and end"],
    ["a:b", 'invalid character ":"'],
    ["x".repeat(256), "repository name is 256 characters long; the limit is 255"],
  ])("rejects %j", (name, problem) => {
    expect(invalid(() => validateRepositoryName(name)).message).toContain(problem);
  });
});

describe("validateTag", () => {
  it.each(["latest", "v1.2.3", "_x", "A-b.C_d", "9", "x".repeat(128)])("accepts %s", (tag) => {
    expect(() => validateTag(tag)).not.toThrow();
  });

  it.each<[string, string]>([
    ["", "tag is empty"],
    [".hidden", "must start with"],
    ["-x", "must start with"],
    ["a+b", 'invalid character "+"'],
    ["x".repeat(129), "the limit is 128"],
  ])("rejects %j", (tag, problem) => {
    expect(invalid(() => validateTag(tag)).message).toContain(problem);
  });
});

describe("parseDigest", () => {
  it.each<[string, string, string]>([
    [SHA256, "sha256", "a1".repeat(32)],
    [SHA512, "sha512", "b2".repeat(64)],
  ])("parses %s", (digest, algorithm, hex) => {
    expect(parseDigest(digest)).toEqual({ algorithm, hex });
    expect(isDigest(digest)).toBe(true);
  });

  it.each<[string, string]>([
    ["", "must have the form"],
    ["a1".repeat(32), "must have the form"],
    [`sha256:${"a".repeat(63)}`, "must have 64 hex characters, not 63"],
    [`sha256:${"a".repeat(128)}`, "must have 64 hex characters, not 128"],
    [`sha256:${"g".repeat(64)}`, "lower-case hex"],
    [`SHA256:${"a".repeat(64)}`, 'unsupported digest algorithm "SHA256"'],
    [`sha384:${"a".repeat(96)}`, 'unsupported digest algorithm "sha384"'],
    [`sha512:${"A".repeat(128)}`, "lower-case hex"],
  ])("rejects %j", (digest, problem) => {
    expect(invalid(() => parseDigest(digest)).message).toContain(problem);
    expect(isDigest(digest)).toBe(false);
  });
});

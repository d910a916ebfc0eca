import { describe, expect, it } from "vitest";
import {
  AuthError,
  DigestMismatchError,
  InvalidManifestError,
  InvalidReferenceError,
  OCI_ERROR_CODES,
  RegistryError,
  RegistryHttpError,
  SizeMismatchError,
  errorFromResponse,
  isRetryableStatus,
  parseOciErrorBody,
  parseRetryAfter,
} from "../../src/index.js";
import type { FailedResponse, OciErrorEntry } from "../../src/index.js";

const DIGEST = `sha256:${"d1".repeat(32)}`;
const OTHER = `sha256:${"e2".repeat(32)}`;
const cause = new Error("root cause");

describe("error classes", () => {
  it.each<[string, RegistryError, string, string, string[]]>([
    [
      "InvalidReferenceError",
      new InvalidReferenceError("Foo", "repository name must be lowercase", { cause }),
      "REGISTRY_ERR_INVALID_REFERENCE",
      'invalid reference "Foo": repository name must be lowercase',
      [],
    ],
    [
      "InvalidManifestError",
      new InvalidManifestError("layers[0].size must be a non-negative integer", { repository: "a/b", digest: DIGEST, cause }),
      "REGISTRY_ERR_INVALID_MANIFEST",
      `invalid manifest a/b@${DIGEST}: layers[0].size must be a non-negative integer`,
      ["a/b", DIGEST],
    ],
    [
      "DigestMismatchError",
      new DigestMismatchError(DIGEST, OTHER, { repository: "a/b", cause }),
      "REGISTRY_ERR_DIGEST_MISMATCH",
      `digest mismatch in a/b: expected ${DIGEST}, content hashes to ${OTHER}`,
      ["a/b", DIGEST],
    ],
    [
      "SizeMismatchError",
      new SizeMismatchError(10, 12, { repository: "a/b", digest: DIGEST, cause }),
      "REGISTRY_ERR_SIZE_MISMATCH",
      `size mismatch for a/b@${DIGEST}: expected 10 bytes, got 12`,
      ["a/b", DIGEST],
    ],
    [
      "RegistryHttpError",
      new RegistryHttpError({
        method: "GET",
        url: "https://r.example/v2/a/b/blobs/x",
        status: 404,
        ociCode: "BLOB_UNKNOWN",
        registryMessage: "blob unknown to registry",
        repository: "a/b",
        digest: DIGEST,
        cause,
      }),
      "REGISTRY_ERR_HTTP",
      `a/b@${DIGEST}: GET https://r.example/v2/a/b/blobs/x answered 404 BLOB_UNKNOWN: blob unknown to registry`,
      ["a/b", DIGEST],
    ],
    [
      "AuthError",
      new AuthError({ method: "PUT", url: "https://r.example/v2/a/b/manifests/v1", status: 403, ociCode: "DENIED", repository: "a/b", cause }),
      "REGISTRY_ERR_AUTH",
      "a/b: PUT https://r.example/v2/a/b/manifests/v1 answered 403 DENIED",
      ["a/b"],
    ],
  ])("%s has name, code, message, structured fields and cause", (name, err, code, message, fields) => {
    expect(err).toBeInstanceOf(Error);
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.name).toBe(name);
    expect(err.code).toBe(code);
    expect(err.message).toBe(message);
    expect(err.cause).toBe(cause);
    expect([err.repository, err.digest].filter((f) => f !== undefined)).toEqual(fields);
  });

  it("an AuthError is also a RegistryHttpError", () => {
    const err = new AuthError({ method: "GET", url: "https://r/v2/", status: 401, challenge: 'Bearer realm="x"' });
    expect(err).toBeInstanceOf(RegistryHttpError);
    expect(err).toMatchObject({ status: 401, retryable: false, challenge: 'Bearer realm="x"' });
  });

  it("OCI_ERROR_CODES holds the distribution-spec codes, each its own value", () => {
    expect(Object.keys(OCI_ERROR_CODES).sort()).toEqual(
      [
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_INVALID",
        "BLOB_UPLOAD_UNKNOWN",
        "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID",
        "MANIFEST_UNKNOWN",
        "NAME_INVALID",
        "NAME_UNKNOWN",
        "SIZE_INVALID",
        "UNAUTHORIZED",
        "DENIED",
        "UNSUPPORTED",
        "TOOMANYREQUESTS",
      ].sort(),
    );
    for (const [key, value] of Object.entries(OCI_ERROR_CODES)) expect(value).toBe(key);
  });
});

describe("parseOciErrorBody", () => {
  it.each<[string, string, OciErrorEntry[]]>([
    [
      "a spec body",
      '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v9"}}]}',
      [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown", detail: { Tag: "v9" } }],
    ],
    [
      "several entries",
      '{"errors":[{"code":"UNAUTHORIZED","message":"a"},{"code":"DENIED","message":"b"}]}',
      [
        { code: "UNAUTHORIZED", message: "a", detail: undefined },
        { code: "DENIED", message: "b", detail: undefined },
      ],
    ],
    ["a non-spec code", '{"errors":[{"code":"TAG_INVALID"}]}', [{ code: "TAG_INVALID", message: "", detail: undefined }]],
    ["entries without a string code skipped", '{"errors":[{"message":"x"},{"code":5},null,{"code":"DENIED"}]}', [{ code: "DENIED", message: "", detail: undefined }]],
    ["an HTML error page", "<html><body>502 Bad Gateway</body></html>", []],
    ["an empty body", "", []],
    ["JSON null", "null", []],
    ["errors: null", '{"errors":null}', []],
    ["another JSON shape", '{"message":"rate limited"}', []],
    ["a JSON array", '[{"code":"DENIED"}]', []],
  ])("%s", (_name, text, expected) => {
    expect(parseOciErrorBody(text)).toEqual(expected);
  });
});

describe("parseRetryAfter", () => {
  const now = Date.parse("2025-01-01T00:00:00Z");

  it.each<[string | undefined, number | undefined]>([
    ["120", 120_000],
    [" 0 ", 0],
    ["Wed, 01 Jan 2025 00:00:30 GMT", 30_000],
    ["Tue, 31 Dec 2024 23:59:00 GMT", 0],
    ["soon", undefined],
    ["-5", undefined],
    ["1.5", undefined],
    ["", undefined],
    [undefined, undefined],
  ])("%j → %j", (value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected);
  });
});

describe("isRetryableStatus", () => {
  it.each<[number, boolean]>([
    [408, true],
    [429, true],
    [500, true],
    [502, true],
    [503, true],
    [504, true],
    [400, false],
    [401, false],
    [403, false],
    [404, false],
    [416, false],
    [501, false],
  ])("%d → %s", (status, expected) => {
    expect(isRetryableStatus(status)).toBe(expected);
  });
});

describe("errorFromResponse", () => {
  const base = { method: "GET", url: "https://registry.example/v2/team/app/manifests/v1", repository: "team/app" };
  const body = (code: string, message: string) => JSON.stringify({ errors: [{ code, message }] });

  it.each<[string, FailedResponse, typeof RegistryHttpError, Partial<AuthError>]>([
    [
      "401 → AuthError with the challenge",
      {
        ...base,
        status: 401,
        body: body("UNAUTHORIZED", "authentication required"),
        headers: { "www-authenticate": 'Bearer realm="https://auth.example/token",service="registry"' },
      },
      AuthError,
      {
        code: "REGISTRY_ERR_AUTH",
        ociCode: "UNAUTHORIZED",
        retryable: false,
        challenge: 'Bearer realm="https://auth.example/token",service="registry"',
      },
    ],
    [
      "403 → AuthError",
      { ...base, status: 403, body: body("DENIED", "requested access to the resource is denied") },
      AuthError,
      { code: "REGISTRY_ERR_AUTH", ociCode: "DENIED", retryable: false, challenge: undefined },
    ],
    [
      "404 MANIFEST_UNKNOWN → not retryable",
      { ...base, status: 404, body: body("MANIFEST_UNKNOWN", "manifest unknown") },
      RegistryHttpError,
      { code: "REGISTRY_ERR_HTTP", ociCode: "MANIFEST_UNKNOWN", retryable: false, retryAfterMs: undefined },
    ],
    [
      "429 with Retry-After → retryable after the delay",
      { ...base, status: 429, body: body("TOOMANYREQUESTS", "slow down"), headers: { "retry-after": "7" } },
      RegistryHttpError,
      { code: "REGISTRY_ERR_HTTP", ociCode: "TOOMANYREQUESTS", retryable: true, retryAfterMs: 7000 },
    ],
    [
      "TOOMANYREQUESTS on another status → retryable",
      { ...base, status: 400, body: body("TOOMANYREQUESTS", "quota") },
      RegistryHttpError,
      { retryable: true },
    ],
    [
      "503 with an HTML body → retryable, no OCI code",
      { ...base, status: 503, body: "<html>Service Unavailable</html>", headers: { "retry-after": ["3", "9"] } },
      RegistryHttpError,
      { ociCode: undefined, retryable: true, retryAfterMs: 3000, ociErrors: [] },
    ],
    [
      "no body at all",
      { ...base, status: 500 },
      RegistryHttpError,
      { ociCode: undefined, retryable: true, status: 500, method: "GET" },
    ],
  ])("%s", (_name, response, type, fields) => {
    const err = errorFromResponse(response);
    expect(err).toBeInstanceOf(type);
    expect(err).toMatchObject({ status: response.status, repository: "team/app", ...fields });
    expect(err.message).toContain(`answered ${response.status}`);
    expect(err.message).toContain("team/app");
  });

  it("names the registry's code and message and the digest in its message", () => {
    const err = errorFromResponse({
      method: "HEAD",
      url: `https://registry.example/v2/team/app/blobs/${DIGEST}`,
      status: 404,
      body: body("BLOB_UNKNOWN", "blob unknown to registry"),
      repository: "team/app",
      digest: DIGEST,
    });
    expect(err.message).toBe(
      `team/app@${DIGEST}: HEAD https://registry.example/v2/team/app/blobs/${DIGEST} answered 404 BLOB_UNKNOWN: blob unknown to registry`,
    );
    expect(err.ociErrors).toEqual([{ code: "BLOB_UNKNOWN", message: "blob unknown to registry", detail: undefined }]);
  });

  it.each<[string, string]>([
    ["https://user:secret@s3.example/bucket/blob?X-Amz-Signature=abc&X-Amz-Credential=k#frag", "https://s3.example/bucket/blob"],
    ["https://registry.example:5000/v2/a/blobs/uploads/uuid?_state=opaque", "https://registry.example:5000/v2/a/blobs/uploads/uuid"],
    ["/v2/a/blobs/uploads/uuid?_state=opaque", "/v2/a/blobs/uploads/uuid"],
  ])("keeps credentials and query strings out of url and message: %s", (url, shown) => {
    const err = errorFromResponse({ method: "PUT", url, status: 500 });
    expect(err.url).toBe(shown);
    expect(err.message).toBe(`PUT ${shown} answered 500`);
    expect(err.message).not.toMatch(/secret|Signature|_state/);
  });
});

import { decodeJwt, decodeProtectedHeader, jwtVerify } from "jose";
import fastify from "fastify";
import { afterAll, describe, expect, it } from "vitest";
import {
  createTokenIssuer,
  createTokenProvider,
  generateKeyMaterial,
  hashPassword,
  parseUsersFile,
  signingKeyFromPem,
  tokenEndpoint,
  UsersFileError,
} from "../../src/index.js";
import type { TokenEndpointErrorBody, TokenEndpointResponse } from "../../src/index.js";

const material = generateKeyMaterial({ algorithm: "ES256", commonName: "t" });
const key = signingKeyFromPem({ privateKeyPem: material.privateKeyPem, certificatePem: material.certificatePem });

describe("createTokenIssuer", () => {
  it("mints a Docker token-auth JWT with kid, claims and access", async () => {
    const issuer = createTokenIssuer({ issuer: "georep", key, includeX5c: true });
    const issued = await issuer.issue({ subject: "site-b", audience: "registry.test", access: [{ type: "repository", name: "a/b", actions: ["push", "pull"] }] });
    const header = decodeProtectedHeader(issued.token);
    expect(header).toMatchObject({ alg: "ES256", typ: "JWT", kid: material.keyId });
    expect(header.x5c?.[0]).toBe(key.certificateDer?.toString("base64"));
    const { payload } = await jwtVerify(issued.token, key.publicKey, { issuer: "georep", audience: "registry.test" });
    expect(payload.sub).toBe("site-b");
    expect(payload.aud).toBe("registry.test");
    expect(payload.exp! - payload.iat!).toBe(300);
    expect(payload.nbf).toBeLessThanOrEqual(payload.iat!);
    expect(typeof payload.jti).toBe("string");
    expect(payload["access"]).toEqual([{ type: "repository", name: "a/b", actions: ["pull", "push"] }]);
    expect(issued.expiresIn).toBe(300);
  });
});

describe("createTokenProvider", () => {
  it("caches per scope set, caps actions and renews before expiry", async () => {
    let now = new Date("2026-01-01T00:00:00Z");
    const issuer = createTokenIssuer({ issuer: "georep", key, ttlSeconds: 300, now: () => now });
    const provide = createTokenProvider({ issuer, subject: "site-b", allowedActions: ["pull"], now: () => now });
    const request = { registry: "primary:5000", service: "primary", realm: undefined, scopes: ["repository:a/b:pull,push"] };
    const first = await provide(request);
    expect(decodeJwt(first.token)["access"]).toEqual([{ type: "repository", name: "a/b", actions: ["pull"] }]);
    expect((await provide(request)).token).toBe(first.token);
    expect((await provide({ ...request, scopes: ["repository:a/c:pull"] })).token).not.toBe(first.token);
    now = new Date(now.getTime() + 239_000); // 61 s left: still more than 20 % (60 s)
    expect((await provide(request)).token).toBe(first.token);
    now = new Date(now.getTime() + 2_000); // 59 s left: renew
    const renewed = await provide(request);
    expect(renewed.token).not.toBe(first.token);
    expect(renewed.issuedAt?.getTime()).toBe(Math.floor(now.getTime() / 1000) * 1000);
  });

  it("rejects malformed scopes and a missing service", async () => {
    const provide = createTokenProvider({ issuer: createTokenIssuer({ issuer: "g", key }), subject: "s" });
    await expect(provide({ registry: "r", service: "x", realm: undefined, scopes: ["nope"] })).rejects.toMatchObject({ code: "JWT_ERR_SCOPE_INVALID" });
    await expect(provide({ registry: "r", service: undefined, realm: undefined, scopes: [] })).rejects.toMatchObject({ code: "JWT_ERR_OPTIONS" });
  });
});

describe("users file", () => {
  it("explains what is wrong", () => {
    expect(() => parseUsersFile({ users: [{ username: "a", password_hash: "x", access: [] }] })).toThrow(UsersFileError);
    expect(() => parseUsersFile({ users: [{ username: "a", password_hash: "x", access: [] }] })).toThrow(/password_hash/);
  });
});

describe("tokenEndpoint", async () => {
  const hash = await hashPassword("s3cret", { rounds: 4 });
  const users = parseUsersFile({
    users: [
      { username: "ci", password_hash: hash, access: [{ repositories: "team/*", actions: ["pull", "push"] }, { repositories: "base/**", actions: ["pull"] }, { catalog: true }] },
    ],
  });
  const issuer = createTokenIssuer({ issuer: "georep", key });
  const app = fastify();
  await app.register(tokenEndpoint, { issuer, services: ["registry.test"], users });
  afterAll(() => app.close());
  const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;

  it("grants only the allowed subset", async () => {
    const res = await app.inject({
      method: "GET",
      url: "/token?service=registry.test&scope=repository:team/app:pull,push,delete&scope=repository:base/x/y:pull,push&scope=repository:other/app:pull&scope=registry:catalog:*",
      headers: { authorization: basic("ci", "s3cret") },
    });
    expect(res.statusCode).toBe(200);
    const body = res.json<TokenEndpointResponse>();
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBe(300);
    expect(Number.isNaN(Date.parse(body.issued_at))).toBe(false);
    const { payload } = await jwtVerify(body.token, key.publicKey, { issuer: "georep", audience: "registry.test" });
    expect(payload.sub).toBe("ci");
    expect(payload["access"]).toEqual([
      { type: "repository", name: "team/app", actions: ["pull", "push"] },
      { type: "repository", name: "base/x/y", actions: ["pull"] },
      { type: "registry", name: "catalog", actions: ["*"] },
    ]);
  });

  it("answers a login (no scope) with an empty-access token", async () => {
    const res = await app.inject({ url: "/token?service=registry.test&account=ci", headers: { authorization: basic("ci", "s3cret") } });
    expect(res.statusCode).toBe(200);
    expect(decodeJwt(res.json<TokenEndpointResponse>().token)["access"]).toEqual([]);
  });

  it.each([
    ["anonymous", "/token?service=registry.test&scope=repository:team/app:pull", undefined, 401, "JWT_ERR_UNAUTHORIZED"],
    ["wrong password", "/token?service=registry.test", basic("ci", "nope"), 401, "JWT_ERR_UNAUTHORIZED"],
    ["unknown user", "/token?service=registry.test", basic("eve", "s3cret"), 401, "JWT_ERR_UNAUTHORIZED"],
    ["garbage authorization", "/token?service=registry.test", "Bearer abc", 401, "JWT_ERR_UNAUTHORIZED"],
    ["unknown service", "/token?service=other", basic("ci", "s3cret"), 400, "JWT_ERR_UNKNOWN_SERVICE"],
    ["malformed scope", "/token?service=registry.test&scope=repository:Team:pull", basic("ci", "s3cret"), 400, "JWT_ERR_SCOPE_INVALID"],
  ])("%s → %i", async (_what, url, authorization, status, code) => {
    const res = await app.inject({ url, headers: authorization === undefined ? {} : { authorization } });
    expect(res.statusCode).toBe(status);
    const body = res.json<TokenEndpointErrorBody>();
    expect(body).toMatchObject({ statusCode: status, code });
    expect(body.message.length).toBeGreaterThan(5);
    if (status === 401) expect(res.headers["www-authenticate"]).toMatch(/^Basic realm="/);
  });
});

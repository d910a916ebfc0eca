/** The client's auth flows against real Distribution: htpasswd basic auth and Docker token auth. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTokenIssuer, createTokenProvider, generateKeyMaterial, hashPassword, loadSigningKey, parseUsersFile, tokenEndpoint, writeKeyMaterial } from "@georep/jwt";
import { startRegistry } from "@georep/testing";
import type { RunningRegistry } from "@georep/testing";
import fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthError, copyImage, createRegistryClient } from "../../src/index.js";
import type { TransportEvent } from "../../src/index.js";
import { image } from "./images.js";

describe("htpasswd (basic) auth", () => {
  let registry: RunningRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: { htpasswd: { users: [{ username: "alice", password: "p@ss word" }] } } });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it("answers the Basic challenge with the credentials and pushes and pulls", async () => {
    const events: TransportEvent[] = [];
    const client = createRegistryClient({ url: registry.url, credentials: { type: "basic", username: "alice", password: "p@ss word" }, onEvent: (e) => events.push(e) });
    await client.ping();
    const img = image({ layerCount: 1 });
    for (const b of [img.config, ...img.layers]) await client.uploadBlob("team/basic", b, b.bytes);
    await client.putManifest("team/basic", "v1", img);
    expect((await client.getManifest("team/basic", "v1")).digest).toBe(img.digest);
    expect(events.filter((e) => e.type === "challenge")).toEqual([{ type: "challenge", scheme: "basic" }]);
  });

  it("fails with AuthError (401) on a wrong password or without credentials", async () => {
    const wrong = createRegistryClient({ url: registry.url, credentials: { type: "basic", username: "alice", password: "nope" } });
    const error = await wrong.ping().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthError);
    expect((error as AuthError).status).toBe(401);
    await expect(createRegistryClient({ url: registry.url }).listTags("team/basic")).rejects.toBeInstanceOf(AuthError);
  });
});

describe("Docker token auth (jwt issuer, token endpoint)", () => {
  const SERVICE = "registry.test";
  const ISSUER = "georep-test";
  let dir: string;
  let registry: RunningRegistry;
  let plain: RunningRegistry;
  const endpoint = fastify();
  let issuer: ReturnType<typeof createTokenIssuer>;
  let tokenRequests = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "georep-rc-auth-"));
    const written = await writeKeyMaterial(generateKeyMaterial({ algorithm: "ES256", commonName: "georep test" }), join(dir, "keys"));
    issuer = createTokenIssuer({ issuer: ISSUER, key: await loadSigningKey({ keyPath: written.keyPath, certificatePath: written.certificatePath }) });
    const users = parseUsersFile({
      users: [
        { username: "ci", password_hash: await hashPassword("s3cret", { rounds: 4 }), access: [{ repositories: "team/*", actions: ["pull", "push"] }] },
        { username: "reader", password_hash: await hashPassword("r3ad", { rounds: 4 }), access: [{ repositories: "team/*", actions: ["pull"] }] },
      ],
    });
    endpoint.addHook("onRequest", async () => {
      tokenRequests++;
    });
    await endpoint.register(tokenEndpoint, { issuer, services: SERVICE, users });
    const address = await endpoint.listen({ port: 0, host: "127.0.0.1" });
    [registry, plain] = await Promise.all([
      startRegistry({ auth: { token: { realm: `${address}/token`, service: SERVICE, issuer: ISSUER, rootCertBundle: written.certificatePath } } }),
      startRegistry(),
    ]);
  });

  afterAll(async () => {
    await Promise.all([registry?.stop(), plain?.stop()]);
    await endpoint.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("follows the Bearer challenge to the token endpoint with basic credentials and caches tokens per scope", async () => {
    const client = createRegistryClient({ url: registry.url, credentials: { type: "basic", username: "ci", password: "s3cret" } });
    const img = image({ layerCount: 2 });
    const before = tokenRequests;
    for (const b of [img.config, ...img.layers]) await client.uploadBlob("team/token", b, b.bytes);
    await client.putManifest("team/token", "v1", img);
    const pushTokens = tokenRequests - before;
    expect(pushTokens).toBeGreaterThanOrEqual(1);
    expect(pushTokens).toBeLessThanOrEqual(2); // one per scope set, not one per request
    expect((await client.getManifest("team/token", "v1")).digest).toBe(img.digest);
  });

  it("a pull-only user pulls but cannot push (AuthError)", async () => {
    const reader = createRegistryClient({ url: registry.url, credentials: { type: "basic", username: "reader", password: "r3ad" } });
    expect((await reader.headManifest("team/token", "v1"))?.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    const img = image({ layerCount: 1 });
    await expect(reader.uploadBlob("team/token", img.config, img.config.bytes)).rejects.toBeInstanceOf(AuthError);
  });

  it("wrong credentials at the token endpoint are an AuthError naming it", async () => {
    const client = createRegistryClient({ url: registry.url, credentials: { type: "basic", username: "ci", password: "wrong" } });
    const error = await client.listTags("team/token").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthError);
    expect((error as Error).message).toContain("token endpoint");
  });

  it("a token provider (the jwt package minting locally) authenticates without the endpoint", async () => {
    const provider = createTokenProvider({ issuer, subject: "secondary-1" });
    const client = createRegistryClient({ url: registry.url, credentials: { type: "provider", provider } });
    const before = tokenRequests;
    const img = image({ layerCount: 1 });
    for (const b of [img.config, ...img.layers]) await client.uploadBlob("team/provider", b, b.bytes);
    await client.putManifest("team/provider", "v1", img);
    expect(tokenRequests).toBe(before);

    // a pull-only provider (the primary's role) can copy from here to a plain registry
    const pullOnly = createRegistryClient({ url: registry.url, credentials: { type: "provider", provider: createTokenProvider({ issuer, subject: "secondary-1", allowedActions: ["pull"] }) } });
    const result = await copyImage({ client: pullOnly, repository: "team/provider" }, { client: createRegistryClient({ url: plain.url }), repository: "team/provider" }, "v1", { tag: "v1" });
    expect(result.digest).toBe(img.digest);
    await expect(pullOnly.putManifest("team/provider", "v2", img)).rejects.toBeInstanceOf(AuthError);
  });
});

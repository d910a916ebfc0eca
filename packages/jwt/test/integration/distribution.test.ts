/**
 * The real proof: CNCF Distribution 2.8 with `auth: token` and our generated
 * certificate as `rootcertbundle` accepts our tokens, enforces their scopes,
 * and refuses tokens that are expired, from another key, or for another
 * issuer or audience; skopeo logs in through our token endpoint and pushes.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTokenIssuer,
  generateKeyMaterial,
  hashPassword,
  loadSigningKey,
  parseUsersFile,
  pullAccess,
  pushAccess,
  tokenEndpoint,
  writeKeyMaterial,
} from "../../src/index.js";
import type { SigningAlgorithm, TokenIssuer } from "../../src/index.js";
import { startRegistry } from "@georep/testing";
import type { RunningRegistry } from "@georep/testing";
import { pullManifest, pushImage, tinyImage, writeOciLayout } from "./helpers.js";

const run = promisify(execFile);
const SERVICE = "registry.test";
const ISSUER = "georep-test";

describe.each(["ES256", "RS256"] as const)("Distribution with %s tokens", (algorithm: SigningAlgorithm) => {
  let dir: string;
  let registry: RunningRegistry;
  let issuer: TokenIssuer;
  let otherKeyIssuer: TokenIssuer;
  const endpoint = fastify();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "georep-jwt-it-"));
    const written = await writeKeyMaterial(generateKeyMaterial({ algorithm, commonName: "georep test" }), join(dir, "keys"));
    const key = await loadSigningKey({ keyPath: written.keyPath, certificatePath: written.certificatePath });
    issuer = createTokenIssuer({ issuer: ISSUER, key });
    const other = await writeKeyMaterial(generateKeyMaterial({ algorithm, commonName: "intruder" }), join(dir, "other"));
    otherKeyIssuer = createTokenIssuer({ issuer: ISSUER, key: await loadSigningKey({ keyPath: other.keyPath }) });
    const users = parseUsersFile({
      users: [{ username: "ci", password_hash: await hashPassword("s3cret", { rounds: 4 }), access: [{ repositories: "team/*", actions: ["pull", "push"] }] }],
    });
    await endpoint.register(tokenEndpoint, { issuer, services: SERVICE, users });
    const address = await endpoint.listen({ port: 0, host: "127.0.0.1" });
    registry = await startRegistry({
      auth: { token: { realm: `${address}/token`, service: SERVICE, issuer: ISSUER, rootCertBundle: written.certificatePath } },
    });
  });

  afterAll(async () => {
    await registry?.stop();
    await endpoint.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const token = async (access: Parameters<TokenIssuer["issue"]>[0]["access"], overrides: { issuer?: TokenIssuer; audience?: string } = {}) =>
    (await (overrides.issuer ?? issuer).issue({ subject: "site-b", audience: overrides.audience ?? SERVICE, access })).token;

  it("a push token pushes; a pull-only token pulls and cannot push", async () => {
    const image = tinyImage(`push-${algorithm}`);
    expect(await pushImage(registry.url, "team/app", await token([pushAccess("team/app")]), image, "v1")).toBe(201);
    const pull = await token([pullAccess("team/app")]);
    expect(await pullManifest(registry.url, "team/app", pull, "v1")).toBe(200);
    expect(await pushImage(registry.url, "team/app", pull, tinyImage(`pull-${algorithm}`), "v2")).toBe(401);
  });

  it("refuses a token for another repository, expired, from another key, or for another issuer or audience", async () => {
    await pushImage(registry.url, "team/refuse", await token([pushAccess("team/refuse")]), tinyImage(`r-${algorithm}`), "v1");
    const expired = createTokenIssuer({ issuer: ISSUER, key: await loadSigningKey({ keyPath: join(dir, "keys", "key.pem") }), now: () => new Date(Date.now() - 3_600_000) });
    const wrongIssuer = createTokenIssuer({ issuer: "someone-else", key: await loadSigningKey({ keyPath: join(dir, "keys", "key.pem") }) });
    const cases = {
      "other repository": await token([pullAccess("team/other")]),
      expired: await token([pullAccess("team/refuse")], { issuer: expired }),
      "other key": await token([pullAccess("team/refuse")], { issuer: otherKeyIssuer }),
      "wrong issuer": await token([pullAccess("team/refuse")], { issuer: wrongIssuer }),
      "wrong audience": await token([pullAccess("team/refuse")], { audience: "elsewhere" }),
    };
    for (const [what, t] of Object.entries(cases)) {
      expect(await pullManifest(registry.url, "team/refuse", t, "v1"), what).toBe(401);
    }
  });

  it("skopeo logs in through the token endpoint and pushes", async () => {
    const layout = join(dir, `layout-${algorithm}`);
    await writeOciLayout(layout, tinyImage(`skopeo-${algorithm}`), "v1");
    await run("/usr/bin/skopeo", [
      "--insecure-policy",
      "copy",
      "--dest-tls-verify=false",
      "--dest-creds",
      "ci:s3cret",
      `oci:${layout}:v1`,
      `docker://${registry.host}/team/skopeo:v1`,
    ]);
    const pull = await token([pullAccess("team/skopeo")]);
    expect(await pullManifest(registry.url, "team/skopeo", pull, "v1")).toBe(200);
    await expect(
      run("/usr/bin/skopeo", ["--insecure-policy", "copy", "--dest-tls-verify=false", "--dest-creds", "ci:wrong", `oci:${layout}:v1`, `docker://${registry.host}/team/skopeo:v2`]),
    ).rejects.toThrow();
  });
});


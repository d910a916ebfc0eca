/**
 * Registry auth as configured from the environment: the primary with Docker
 * token auth (tokens minted locally with the sites' shared key, pull only),
 * the secondary with htpasswd basic auth.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKeyMaterial, writeKeyMaterial } from "@georep/jwt";
import { AuthError } from "@georep/registry-client";
import type { RegistryClient } from "@georep/registry-client";
import { migrateTracking } from "@georep/tracking";
import type { TrackingDatabase } from "@georep/tracking";
import { startPostgres, startRegistry } from "@georep/testing";
import type { RunningPostgres, RunningRegistry } from "@georep/testing";
import { loadTransferConfig, registryEndpoints } from "../../src/config.js";
import { TransferError } from "../../src/errors.js";
import { createRegistryFromEndpoint } from "../../src/registries.js";
import { syncRepository } from "../../src/sync.js";
import { image, push, tagMap } from "../content.js";

const ISSUER = "georep-test";
let dir: string;
let keyFile: string;
let certFile: string;
let otherKeyFile: string;
let primaryRegistry: RunningRegistry;
let secondaryRegistry: RunningRegistry;
let postgres: RunningPostgres;
let db: Kysely<TrackingDatabase>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "georep-transfer-auth-"));
  const keys = await writeKeyMaterial(generateKeyMaterial({ algorithm: "ES256", commonName: "georep sites" }), join(dir, "keys"));
  const other = await writeKeyMaterial(generateKeyMaterial({ algorithm: "ES256", commonName: "stranger" }), join(dir, "other"));
  keyFile = keys.keyPath;
  certFile = keys.certificatePath;
  otherKeyFile = other.keyPath;
  [primaryRegistry, secondaryRegistry, postgres] = await Promise.all([
    // Tokens are minted locally, so the realm is never called.
    startRegistry({ auth: { token: { realm: "http://127.0.0.1:9/token", service: "primary.registry", issuer: ISSUER, rootCertBundle: certFile } } }),
    startRegistry({ auth: { htpasswd: { users: [{ username: "replicator", password: "s3cret pass" }] } } }),
    startPostgres(),
  ]);
  const pool = new pg.Pool({ connectionString: postgres.url, max: 4 });
  pool.on("error", () => undefined);
  db = new Kysely<TrackingDatabase>({ dialect: new PostgresDialect({ pool }) });
  await migrateTracking(db);
});

afterAll(async () => {
  await db?.destroy();
  await Promise.all([primaryRegistry?.stop(), secondaryRegistry?.stop(), postgres?.stop()]);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** Both clients as main.ts builds them from these variables. */
async function clients(env: Record<string, string>): Promise<{ primary: RegistryClient; secondary: RegistryClient }> {
  const config = loadTransferConfig({
    DATABASE_URL: postgres.url,
    SITE_NAME: "secondary-1",
    SITE_ROLE: "secondary",
    PRIMARY_REGISTRY_URL: primaryRegistry.url,
    SECONDARY_REGISTRY_URL: secondaryRegistry.url,
    REGISTRY_TOKEN_ISSUER: ISSUER,
    SECONDARY_REGISTRY_USERNAME: "replicator",
    SECONDARY_REGISTRY_PASSWORD: "s3cret pass",
    ...env,
  });
  const endpoints = registryEndpoints(config);
  const [primary, secondary] = await Promise.all([createRegistryFromEndpoint(endpoints.primary), createRegistryFromEndpoint(endpoints.secondary)]);
  return { primary, secondary };
}

/** A client of the primary that may push there, to seed it (the sites' key, every action). */
async function seeder(): Promise<RegistryClient> {
  const config = loadTransferConfig({
    DATABASE_URL: postgres.url,
    SITE_NAME: "seeder",
    SITE_ROLE: "secondary",
    PRIMARY_REGISTRY_URL: secondaryRegistry.url,
    SECONDARY_REGISTRY_URL: primaryRegistry.url,
    REGISTRY_TOKEN_ISSUER: ISSUER,
    REGISTRY_TOKEN_KEY_FILE: keyFile,
  });
  return createRegistryFromEndpoint(registryEndpoints(config).secondary);
}

describe("registry auth from the configuration", () => {
  it("syncs with pull-only tokens minted for the primary and basic auth on the secondary, deletions included", async () => {
    const seed = await seeder();
    const a = image({ layerCount: 1 });
    const b = image({ layerCount: 1 });
    await push(seed, "auth/app", a, ["v1"]);
    await push(seed, "auth/app", b, ["v2"]);
    const { primary, secondary } = await clients({ REGISTRY_TOKEN_KEY_FILE: keyFile, REGISTRY_TOKEN_CERT_FILE: certFile });
    const options = { blobConcurrency: 2, deleteMissing: true };

    const first = await syncRepository({ primary, secondary, repository: "auth/app", db, options });
    expect(first.tags.copied).toEqual(["v1", "v2"]);
    expect(await tagMap(secondary, "auth/app")).toEqual(await tagMap(primary, "auth/app"));

    await seed.deleteManifest("auth/app", b.digest);
    const second = await syncRepository({ primary, secondary, repository: "auth/app", db, options });
    expect(second.tags.deleted).toEqual(["v2"]);
    expect(await secondary.headManifest("auth/app", b.digest)).toBeUndefined();

    // The primary's tokens never grant push, whatever is asked.
    await expect(primary.putManifest("auth/app", "v3", a)).rejects.toBeInstanceOf(AuthError);
  });

  it("a key the primary does not trust fails the sync (never an empty 'synced') and removes nothing", async () => {
    const { primary, secondary } = await clients({ REGISTRY_TOKEN_KEY_FILE: otherKeyFile });
    const before = await tagMap(secondary, "auth/app");
    expect(before.size).toBeGreaterThan(0);
    const error = await syncRepository({ primary, secondary, repository: "auth/app", db, options: { blobConcurrency: 2, deleteMissing: true } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransferError);
    expect((error as TransferError).code).toBe("TRANSFER_ERR_PRIMARY");
    expect((error as TransferError).cause).toBeInstanceOf(AuthError);
    expect(await tagMap(secondary, "auth/app")).toEqual(before);
  });

  it("wrong secondary credentials fail the sync", async () => {
    const { primary, secondary } = await clients({ REGISTRY_TOKEN_KEY_FILE: keyFile, SECONDARY_REGISTRY_PASSWORD: "wrong" });
    const error = await syncRepository({ primary, secondary, repository: "auth/app", db, options: { blobConcurrency: 2, deleteMissing: true } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransferError);
    expect((error as TransferError).cause).toBeInstanceOf(AuthError);
  });
});

/** The configuration: defaults, auth per side, and every problem reported at once. */
import { describe, expect, it } from "vitest";
import { ConfigError } from "@georep/runtime";
import { TRANSFER_CONFIG_DEFAULTS, loadTransferConfig, registryEndpoints, transferOptions } from "../../src/config.js";

const BASE = {
  DATABASE_URL: "postgres://u@127.0.0.1:5432/db",
  SITE_NAME: "secondary-1",
  SITE_ROLE: "secondary",
  PRIMARY_REGISTRY_URL: "https://primary.example.com",
  SECONDARY_REGISTRY_URL: "http://127.0.0.1:5000",
};

function problems(env: Record<string, string>): string[] {
  try {
    loadTransferConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => p.variable).sort();
    throw error;
  }
  return [];
}

describe("loadTransferConfig", () => {
  it("applies the defaults", () => {
    const config = loadTransferConfig(BASE);
    expect(config).toMatchObject({
      TRANSFER_CONCURRENCY: 8,
      TRANSFER_BLOB_CONCURRENCY: 4,
      TRANSFER_LEASE_MS: 60_000,
      TRANSFER_ACK_WAIT_MS: 60_000,
      TRANSFER_BACKOFF_BASE_MS: 10_000,
      TRANSFER_BACKOFF_CAP_MS: 3_600_000,
      REGISTRY_TOKEN_ISSUER: "georep",
    });
    expect(TRANSFER_CONFIG_DEFAULTS.TRANSFER_CONCURRENCY).toBe(8);
    const options = transferOptions(config, 42);
    expect(options).toMatchObject({ concurrency: 8, leaseMs: 60_000, backoff: { baseMs: 10_000, capMs: 3_600_000 }, sync: { blobConcurrency: 4, deleteMissing: true } });
    expect(options.workerId).toMatch(/^secondary-1\/.+\/42\/[0-9a-f]{6}$/);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it.each([
    ["a primary site", { SITE_ROLE: "primary" }, ["SITE_ROLE"]],
    ["a URL with a path", { PRIMARY_REGISTRY_URL: "https://primary.example.com/v2/" }, ["PRIMARY_REGISTRY_URL"]],
    ["a username without a password", { SECONDARY_REGISTRY_USERNAME: "u" }, ["SECONDARY_REGISTRY_PASSWORD"]],
    ["a password without a username", { PRIMARY_REGISTRY_PASSWORD: "p" }, ["PRIMARY_REGISTRY_USERNAME"]],
    ["a certificate without a key", { REGISTRY_TOKEN_CERT_FILE: "/c.pem" }, ["REGISTRY_TOKEN_KEY_FILE"]],
    ["a cap below the base", { TRANSFER_BACKOFF_BASE_MS: "5000", TRANSFER_BACKOFF_CAP_MS: "1000" }, ["TRANSFER_BACKOFF_CAP_MS"]],
    ["the same registry on both sides", { SECONDARY_REGISTRY_URL: "https://primary.example.com/" }, ["SECONDARY_REGISTRY_URL"]],
    ["a non-integer concurrency", { TRANSFER_CONCURRENCY: "1.5" }, ["TRANSFER_CONCURRENCY"]],
    ["a tiny chunk size", { TRANSFER_CHUNK_SIZE: "10" }, ["TRANSFER_CHUNK_SIZE"]],
  ] as const)("refuses %s", (_name, env, expected) => {
    expect(problems({ ...BASE, ...env })).toEqual([...expected].sort());
  });

  it("reports every problem at once", () => {
    expect(problems({ SITE_NAME: "s", SITE_ROLE: "primary", PRIMARY_REGISTRY_USERNAME: "u" })).toEqual(
      ["DATABASE_URL", "PRIMARY_REGISTRY_PASSWORD", "PRIMARY_REGISTRY_URL", "SECONDARY_REGISTRY_URL", "SITE_ROLE"].sort(),
    );
  });
});

describe("registryEndpoints", () => {
  it.each([
    ["anonymous on both sides", {}, "anonymous", "anonymous"],
    ["basic per side", { PRIMARY_REGISTRY_USERNAME: "a", PRIMARY_REGISTRY_PASSWORD: "b" }, "basic", "anonymous"],
    ["minted tokens on both sides", { REGISTRY_TOKEN_KEY_FILE: "/k.pem" }, "token-key", "token-key"],
    ["basic wins over the key on its side", { REGISTRY_TOKEN_KEY_FILE: "/k.pem", SECONDARY_REGISTRY_USERNAME: "a", SECONDARY_REGISTRY_PASSWORD: "b" }, "token-key", "basic"],
  ] as const)("%s", (_name, env, primaryAuth, secondaryAuth) => {
    const endpoints = registryEndpoints(loadTransferConfig({ ...BASE, ...env }));
    expect(endpoints.primary.auth.type).toBe(primaryAuth);
    expect(endpoints.secondary.auth.type).toBe(secondaryAuth);
  });

  it("mints pull-only tokens for the primary and pull, push, delete for the secondary, as the site by default", () => {
    const endpoints = registryEndpoints(loadTransferConfig({ ...BASE, REGISTRY_TOKEN_KEY_FILE: "/k.pem" }));
    expect(endpoints.primary.auth).toMatchObject({ type: "token-key", allowedActions: ["pull"], subject: "secondary-1", issuer: "georep" });
    expect(endpoints.secondary.auth).toMatchObject({ type: "token-key", allowedActions: ["pull", "push", "delete"] });
    const custom = registryEndpoints(loadTransferConfig({ ...BASE, REGISTRY_TOKEN_KEY_FILE: "/k.pem", REGISTRY_TOKEN_SUBJECT: "replicator", REGISTRY_TOKEN_ISSUER: "corp" }));
    expect(custom.primary.auth).toMatchObject({ subject: "replicator", issuer: "corp" });
  });
});

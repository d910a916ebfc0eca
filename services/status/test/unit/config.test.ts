import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "@georep/runtime";
import { STATUS_CONFIG_DEFAULTS, loadStatusConfig, registryEndpoints, statusOptions, tokenEndpointConfig } from "../../src/config.js";

const TOKEN = "0123456789abcdef0123";
const PRIMARY = {
  DATABASE_URL: "postgres://u:p@127.0.0.1:5432/georep",
  SITE_NAME: "primary1",
  SITE_ROLE: "primary",
  STATUS_ADMIN_TOKEN: TOKEN,
};
const SECONDARY = {
  ...PRIMARY,
  SITE_NAME: "secondary1",
  SITE_ROLE: "secondary",
  PRIMARY_REGISTRY_URL: "http://primary.example:5000",
  SECONDARY_REGISTRY_URL: "http://127.0.0.1:5001/",
};

function problems(env: Record<string, string>): string[] {
  try {
    loadStatusConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.variable}: ${p.message}`);
    throw err;
  }
  return [];
}

describe("loadStatusConfig", () => {
  it("applies the defaults: a report every 5 s, stale after three intervals", () => {
    const config = loadStatusConfig(PRIMARY);
    expect(config).toMatchObject(STATUS_CONFIG_DEFAULTS);
    expect(Object.isFrozen(config)).toBe(true);
    expect(statusOptions(config)).toEqual({
      site: "primary1",
      role: "primary",
      reportIntervalMs: 5_000,
      staleAfterMs: 15_000,
      resyncTimeoutMs: 5_000,
    });
    expect(registryEndpoints(config)).toBeUndefined();
    expect(tokenEndpointConfig(config)).toBeUndefined();
  });

  it("takes the interval and the stale time from the environment", () => {
    const config = loadStatusConfig({ ...PRIMARY, STATUS_REPORT_INTERVAL_MS: "1000", STATUS_STALE_AFTER_MS: "2500" });
    expect(statusOptions(config)).toMatchObject({ reportIntervalMs: 1_000, staleAfterMs: 2_500 });
    expect(statusOptions(loadStatusConfig({ ...PRIMARY, STATUS_REPORT_INTERVAL_MS: "1000" })).staleAfterMs).toBe(3_000);
  });

  it("reads the admin token from STATUS_ADMIN_TOKEN_FILE", () => {
    const dir = mkdtempSync(join(tmpdir(), "georep-status-config-"));
    try {
      const file = join(dir, "token");
      writeFileSync(file, `${TOKEN}\n`);
      const { STATUS_ADMIN_TOKEN: _, ...rest } = PRIMARY;
      expect(loadStatusConfig({ ...rest, STATUS_ADMIN_TOKEN_FILE: file }).STATUS_ADMIN_TOKEN).toBe(TOKEN);
      expect(problems({ ...PRIMARY, STATUS_ADMIN_TOKEN_FILE: file })).toEqual(["STATUS_ADMIN_TOKEN: set either STATUS_ADMIN_TOKEN or STATUS_ADMIN_TOKEN_FILE, not both"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("makes pull-only registry endpoints on a secondary: basic credentials per side, else minted tokens, else anonymous", () => {
    const anonymous = registryEndpoints(loadStatusConfig(SECONDARY))!;
    expect(anonymous.primary).toEqual({ url: "http://primary.example:5000", auth: { type: "anonymous" }, maxConcurrentRequests: 8 });
    expect(anonymous.secondary.url).toBe("http://127.0.0.1:5001");

    const minted = registryEndpoints(
      loadStatusConfig({ ...SECONDARY, REGISTRY_TOKEN_KEY_FILE: "/k/key.pem", SECONDARY_REGISTRY_USERNAME: "ro", SECONDARY_REGISTRY_PASSWORD: "pw", REGISTRY_TOKEN_SERVICE: "reg" }),
    )!;
    expect(minted.primary.auth).toEqual({ type: "token-key", keyFile: "/k/key.pem", certFile: undefined, issuer: "georep", subject: "secondary1", service: "reg" });
    expect(minted.secondary.auth).toEqual({ type: "basic", username: "ro", password: "pw" });
  });

  it("mounts the token endpoint when its three settings are given", () => {
    const config = loadStatusConfig({ ...PRIMARY, STATUS_TOKEN_USERS_FILE: "/u.json", REGISTRY_TOKEN_KEY_FILE: "/k.pem", STATUS_TOKEN_SERVICE: "a.registry, b.registry" });
    expect(tokenEndpointConfig(config)).toEqual({ usersFile: "/u.json", keyFile: "/k.pem", certFile: undefined, issuer: "georep", services: ["a.registry", "b.registry"] });
  });

  it("lists every problem at once", () => {
    expect(
      problems({
        SITE_NAME: "Bad Name",
        SITE_ROLE: "secondary",
        STATUS_TOKEN_SERVICE: "reg",
        PRIMARY_REGISTRY_USERNAME: "u",
        REGISTRY_TOKEN_CERT_FILE: "/c.pem",
        STATUS_REPORT_INTERVAL_MS: "10",
      }).sort(),
    ).toEqual(
      [
        "DATABASE_URL: required: set DATABASE_URL or DATABASE_URL_FILE",
        "PRIMARY_REGISTRY_PASSWORD: set both PRIMARY_REGISTRY_USERNAME and PRIMARY_REGISTRY_PASSWORD, or neither",
        "PRIMARY_REGISTRY_URL: required on a secondary site",
        "REGISTRY_TOKEN_KEY_FILE: required for the /token endpoint (STATUS_TOKEN_USERS_FILE, STATUS_TOKEN_SERVICE and REGISTRY_TOKEN_KEY_FILE go together)",
        "REGISTRY_TOKEN_KEY_FILE: required with REGISTRY_TOKEN_CERT_FILE",
        "SECONDARY_REGISTRY_URL: required on a secondary site",
        "SITE_NAME: not a valid site name (must match ^[a-z0-9][a-z0-9_-]{0,62}$)",
        "STATUS_ADMIN_TOKEN: required: set STATUS_ADMIN_TOKEN or STATUS_ADMIN_TOKEN_FILE",
        "STATUS_REPORT_INTERVAL_MS: Expected integer to be greater or equal to 50",
        "STATUS_TOKEN_USERS_FILE: required for the /token endpoint (STATUS_TOKEN_USERS_FILE, STATUS_TOKEN_SERVICE and REGISTRY_TOKEN_KEY_FILE go together)",
      ].sort(),
    );
  });

  it("refuses a short admin token, a stale time within one interval, and one registry for both sides", () => {
    expect(problems({ ...PRIMARY, STATUS_ADMIN_TOKEN: "short" })).toEqual([expect.stringMatching(/^STATUS_ADMIN_TOKEN: /)]);
    expect(problems({ ...PRIMARY, STATUS_REPORT_INTERVAL_MS: "1000", STATUS_STALE_AFTER_MS: "1000" })).toEqual([
      "STATUS_STALE_AFTER_MS: must be longer than STATUS_REPORT_INTERVAL_MS",
    ]);
    expect(problems({ ...SECONDARY, SECONDARY_REGISTRY_URL: "http://primary.example:5000/" })).toEqual(["SECONDARY_REGISTRY_URL: must differ from PRIMARY_REGISTRY_URL"]);
    expect(problems({ ...SECONDARY, PRIMARY_REGISTRY_URL: "ftp://x" })).toEqual([expect.stringMatching(/^PRIMARY_REGISTRY_URL: /)]);
  });

  it("does not need registry URLs on the primary", () => {
    expect(problems(PRIMARY)).toEqual([]);
  });
});

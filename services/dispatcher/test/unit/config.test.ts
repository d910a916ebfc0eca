import { describe, expect, it } from "vitest";
import { ConfigError } from "@georep/runtime";
import { DISPATCHER_CONFIG_DEFAULTS, dispatcherOptions, loadDispatcherConfig } from "../../src/config.js";

const BASE = {
  DATABASE_URL: "postgres://u:p@127.0.0.1:5432/georep",
  SITE_NAME: "secondary-1",
  SITE_ROLE: "secondary",
  PRIMARY_REGISTRY_URL: "http://primary.example:5000",
};

function problems(env: Record<string, string>): string[] {
  try {
    loadDispatcherConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.variable}: ${p.message}`);
    throw err;
  }
  return [];
}

describe("loadDispatcherConfig", () => {
  it("applies the defaults: capacity 10, a 500 ms tick, a 10 minute backfill, domain primary", () => {
    const config = loadDispatcherConfig(BASE);
    expect(config).toMatchObject(DISPATCHER_CONFIG_DEFAULTS);
    expect(Object.isFrozen(config)).toBe(true);
    expect(dispatcherOptions(config)).toMatchObject({
      site: "secondary-1",
      primaryJsDomain: "primary",
      maxConcurrentSyncs: 10,
      tickMs: 500,
      backfillIntervalMs: 600_000,
      geoEventsMaxAgeMs: 30 * 24 * 3600 * 1000,
      ackWaitMs: 30_000,
    });
  });

  it("reads the settings and the credentials", () => {
    const config = loadDispatcherConfig({
      ...BASE,
      PRIMARY_JS_DOMAIN: "hq",
      DISPATCHER_MAX_CONCURRENT_SYNCS: "3",
      DISPATCHER_BACKFILL_INTERVAL_MS: "0",
      REGISTRY_TOKEN_KEY_FILE: "/keys/key.pem",
      REGISTRY_TOKEN_CERT_FILE: "/keys/cert.pem",
    });
    expect(dispatcherOptions(config)).toMatchObject({ primaryJsDomain: "hq", maxConcurrentSyncs: 3, backfillIntervalMs: 0 });
    expect(config.REGISTRY_TOKEN_ISSUER).toBe("georep");
    expect(config.REGISTRY_TOKEN_KEY_FILE).toBe("/keys/key.pem");
  });

  it("reports every problem at once, including the rules across variables", () => {
    expect(problems({ SITE_NAME: "secondary-1", SITE_ROLE: "primary", DISPATCHER_MAX_CONCURRENT_SYNCS: "0", PRIMARY_REGISTRY_URL: "ftp://x" })).toEqual([
      expect.stringMatching(/^DATABASE_URL: required/),
      expect.stringMatching(/^PRIMARY_REGISTRY_URL: /),
      expect.stringMatching(/^DISPATCHER_MAX_CONCURRENT_SYNCS: /),
      expect.stringMatching(/^SITE_ROLE: the dispatcher runs on secondary sites only/),
    ]);
  });

  it.each([
    [{ REGISTRY_TOKEN_KEY_FILE: "/k", PRIMARY_REGISTRY_USERNAME: "a", PRIMARY_REGISTRY_PASSWORD: "b" }, /^PRIMARY_REGISTRY_USERNAME: give either/],
    [{ PRIMARY_REGISTRY_USERNAME: "a" }, /^PRIMARY_REGISTRY_PASSWORD: .*go together/],
    [{ PRIMARY_REGISTRY_PASSWORD: "b" }, /^PRIMARY_REGISTRY_USERNAME: .*go together/],
    [{ REGISTRY_TOKEN_CERT_FILE: "/c" }, /^REGISTRY_TOKEN_CERT_FILE: needs REGISTRY_TOKEN_KEY_FILE/],
    [{ DISPATCHER_PUBLISH_TIMEOUT_MS: "30000" }, /^DISPATCHER_PUBLISH_TIMEOUT_MS: /],
  ])("refuses inconsistent settings %#", (env, expected) => {
    expect(problems({ ...BASE, ...env })).toEqual([expect.stringMatching(expected)]);
  });
});

import { Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { describe, expect, it } from "vitest";
import { CONFIG_DEFAULTS, HttpConfig, LogConfig, NatsConfig, PostgresConfig, SiteConfig, validate } from "../../src/index.js";

describe("config schema pieces", () => {
  const All = Type.Composite([NatsConfig, PostgresConfig, LogConfig, HttpConfig, SiteConfig]);

  it("declares the documented defaults", () => {
    const withDefaults = Value.Default(All, { DATABASE_URL: "postgres://u@h/db", SITE_NAME: "p", SITE_ROLE: "primary" });
    expect(withDefaults).toEqual({
      NATS_URL: CONFIG_DEFAULTS.NATS_URL,
      DATABASE_URL: "postgres://u@h/db",
      DATABASE_POOL_SIZE: 10,
      LOG_LEVEL: "info",
      HTTP_HOST: "0.0.0.0",
      HTTP_PORT: 8080,
      SITE_NAME: "p",
      SITE_ROLE: "primary",
    });
    expect(validate(All, withDefaults).ok).toBe(true);
  });

  it.each([
    { name: "bad database url", value: { DATABASE_URL: "mysql://x" }, path: "/DATABASE_URL" },
    { name: "port out of range", value: { HTTP_PORT: 70000 }, path: "/HTTP_PORT" },
    { name: "bad level", value: { LOG_LEVEL: "loud" }, path: "/LOG_LEVEL" },
    { name: "bad site", value: { SITE_NAME: "Site.A" }, path: "/SITE_NAME" },
    { name: "bad role", value: { SITE_ROLE: "tertiary" }, path: "/SITE_ROLE" },
    { name: "pool size zero", value: { DATABASE_POOL_SIZE: 0 }, path: "/DATABASE_POOL_SIZE" },
  ])("rejects $name", ({ value, path }) => {
    const base = Value.Default(All, { DATABASE_URL: "postgres://u@h/db", SITE_NAME: "p", SITE_ROLE: "primary" }) as Record<string, unknown>;
    const result = validate(All, { ...base, ...value });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems.map((p) => p.path)).toEqual([path]);
  });
});

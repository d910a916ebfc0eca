import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Type } from "@sinclair/typebox";
import { HttpConfig, LogConfig, NatsConfig, PostgresConfig, SiteConfig } from "@georep/schema";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/index.js";

const Service = Type.Composite([
  NatsConfig,
  PostgresConfig,
  LogConfig,
  HttpConfig,
  SiteConfig,
  Type.Object({
    NOTIFY_SECRET: Type.String({ minLength: 16 }),
    DRY_RUN: Type.Boolean({ default: false }),
  }),
]);

const good = {
  DATABASE_URL: "postgres://georep:pw@127.0.0.1:5432/georep",
  SITE_NAME: "eu-1",
  SITE_ROLE: "secondary",
  NOTIFY_SECRET: "0123456789abcdef",
};

const dir = mkdtempSync(join(tmpdir(), "georep-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function problemsOf(env: Record<string, string>): { variable: string; message: string }[] {
  try {
    loadConfig(Service, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe("RUNTIME_ERR_CONFIG");
    return [...(err as ConfigError).problems];
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  it("applies defaults and coerces strings", () => {
    const config = loadConfig(Service, { ...good, HTTP_PORT: "9090", DRY_RUN: "TRUE", DATABASE_POOL_SIZE: "3" });
    expect(config).toEqual({
      ...good,
      NATS_URL: "nats://127.0.0.1:4222",
      DATABASE_POOL_SIZE: 3,
      LOG_LEVEL: "info",
      HTTP_HOST: "0.0.0.0",
      HTTP_PORT: 9090,
      DRY_RUN: true,
    });
    expect(typeof config.HTTP_PORT).toBe("number");
  });

  it("returns a frozen object", () => {
    const config = loadConfig(Service, good);
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config as { HTTP_PORT: number }).HTTP_PORT = 1;
    }).toThrow(TypeError);
  });

  it("ignores variables the schema does not name and treats empty as unset", () => {
    const config = loadConfig(Service, { ...good, UNRELATED: "x", HTTP_HOST: "", NATS_CREDS: "" });
    expect(config).not.toHaveProperty("UNRELATED");
    expect(config.HTTP_HOST).toBe("0.0.0.0");
    expect(config.NATS_CREDS).toBeUndefined();
  });

  it("lists every problem in one error: three bad variables → one error naming all three", () => {
    const env = { ...good, HTTP_PORT: "eighty", LOG_LEVEL: "loud", SITE_ROLE: "tertiary" };
    let error: unknown;
    try {
      loadConfig(Service, env);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const e = error as ConfigError;
    expect(e.problems.map((p) => p.variable).sort()).toEqual(["HTTP_PORT", "LOG_LEVEL", "SITE_ROLE"]);
    for (const v of ["HTTP_PORT", "LOG_LEVEL", "SITE_ROLE"]) expect(e.message).toContain(v);
    expect(e.problems.find((p) => p.variable === "SITE_ROLE")?.message).toBe("expected one of: primary, secondary");
    // Values are never echoed (they may be secrets).
    expect(e.message).not.toContain("eighty");
  });

  const table: { name: string; env: Record<string, string>; variables: string[] }[] = [
    { name: "missing required", env: {}, variables: ["DATABASE_URL", "NOTIFY_SECRET", "SITE_NAME", "SITE_ROLE"] },
    { name: "port out of range", env: { ...good, HTTP_PORT: "65536" }, variables: ["HTTP_PORT"] },
    { name: "not a boolean", env: { ...good, DRY_RUN: "maybe" }, variables: ["DRY_RUN"] },
    { name: "short secret", env: { ...good, NOTIFY_SECRET: "short" }, variables: ["NOTIFY_SECRET"] },
    { name: "bad database url", env: { ...good, DATABASE_URL: "mysql://x" }, variables: ["DATABASE_URL"] },
    { name: "fractional pool", env: { ...good, DATABASE_POOL_SIZE: "2.5" }, variables: ["DATABASE_POOL_SIZE"] },
    { name: "trailing garbage", env: { ...good, HTTP_PORT: "80abc" }, variables: ["HTTP_PORT"] },
    { name: "yes is not a boolean", env: { ...good, DRY_RUN: "yes" }, variables: ["DRY_RUN"] },
  ];
  it.each(table)("$name", ({ env, variables }) => {
    expect(
      problemsOf(env)
        .map((p) => p.variable)
        .sort(),
    ).toEqual(variables);
  });

  it("says how to set a missing variable", () => {
    const problems = problemsOf({ ...good, SITE_NAME: "" });
    expect(problems).toEqual([{ variable: "SITE_NAME", message: "required: set SITE_NAME or SITE_NAME_FILE" }]);
  });

  describe("_FILE secrets", () => {
    it("reads and trims the file content", () => {
      const path = join(dir, "secret");
      writeFileSync(path, "  from-a-file-0123456789\n");
      const dbPath = join(dir, "db");
      writeFileSync(dbPath, "postgres://u:from-file@h/db\n");
      const { NOTIFY_SECRET: _, DATABASE_URL: __, ...rest } = good;
      const config = loadConfig(Service, { ...rest, NOTIFY_SECRET_FILE: path, DATABASE_URL_FILE: dbPath });
      expect(config.NOTIFY_SECRET).toBe("from-a-file-0123456789");
      expect(config.DATABASE_URL).toBe("postgres://u:from-file@h/db");
    });

    it("coerces file content like any other value", () => {
      const path = join(dir, "port");
      writeFileSync(path, "7070\n");
      expect(loadConfig(Service, { ...good, HTTP_PORT_FILE: path }).HTTP_PORT).toBe(7070);
    });

    it("reports unreadable, empty and doubly-set files together with other problems", () => {
      const empty = join(dir, "empty");
      writeFileSync(empty, "\n");
      const { NOTIFY_SECRET: _, DATABASE_URL: __, ...rest } = good;
      const problems = problemsOf({
        ...rest,
        NOTIFY_SECRET_FILE: join(dir, "does-not-exist"),
        DATABASE_URL_FILE: empty,
        SITE_NAME_FILE: empty,
        HTTP_PORT: "x",
      });
      expect(problems.map((p) => p.variable).sort()).toEqual([
        "DATABASE_URL_FILE",
        "HTTP_PORT",
        "NOTIFY_SECRET_FILE",
        "SITE_NAME",
      ]);
      expect(problems.find((p) => p.variable === "NOTIFY_SECRET_FILE")?.message).toMatch(/cannot read .*ENOENT/);
      expect(problems.find((p) => p.variable === "DATABASE_URL_FILE")?.message).toMatch(/is empty/);
      expect(problems.find((p) => p.variable === "SITE_NAME")?.message).toBe("set either SITE_NAME or SITE_NAME_FILE, not both");
    });
  });
});

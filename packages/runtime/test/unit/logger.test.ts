import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, redactUrl } from "../../src/index.js";

function capture(): { stream: Writable; lines: () => Record<string, unknown>[]; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString("utf8"));
      cb();
    },
  });
  const text = (): string => chunks.join("");
  return {
    stream,
    text,
    lines: () =>
      text()
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const SECRET = "s3cr3t-do-not-log";

describe("createLogger", () => {
  it.each([
    { name: "password at top level", fields: { password: SECRET } },
    { name: "nested password", fields: { user: { password: SECRET } } },
    { name: "two levels deep", fields: { config: { db: { password: SECRET } } } },
    { name: "authorization header", fields: { req: { headers: { authorization: `Bearer ${SECRET}` } } } },
    { name: "cookie header", fields: { req: { headers: { cookie: `sid=${SECRET}` } } } },
    { name: "token", fields: { token: SECRET } },
    { name: "secret", fields: { auth: { secret: SECRET } } },
    { name: "DATABASE_URL in a config dump", fields: { config: { DATABASE_URL: `postgres://u:${SECRET}@h/db` } } },
  ])("redacts $name", ({ fields }) => {
    const out = capture();
    const logger = createLogger({ name: "test", destination: out.stream });
    logger.info(fields, "hello");
    logger.child({ reqId: "r1" }).warn(fields, "child");
    expect(out.text()).not.toContain(SECRET);
    expect(out.text()).toContain("[REDACTED]");
    expect(out.lines()).toHaveLength(2);
  });

  it("redacts extra paths given by the service", () => {
    const out = capture();
    const logger = createLogger({ name: "test", destination: out.stream, redact: ["registry.notifySecret"] });
    logger.info({ registry: { notifySecret: SECRET, url: "http://r" } }, "x");
    expect(out.text()).not.toContain(SECRET);
    expect(out.lines()[0]).toMatchObject({ registry: { notifySecret: "[REDACTED]", url: "http://r" } });
  });

  it("writes JSON with name, level label, time and child bindings; honours the level", () => {
    const out = capture();
    const logger = createLogger({ name: "ingest", level: "warn", destination: out.stream, base: { site: "eu-1" } });
    logger.info("dropped");
    logger.child({ subject: "georep.x", seq: 7 }).error("kept");
    const lines = out.lines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ name: "ingest", level: "error", site: "eu-1", subject: "georep.x", seq: 7, msg: "kept" });
    expect(typeof lines[0]?.time).toBe("string");
  });
});

describe("redactUrl", () => {
  it.each([
    { url: "postgres://u:pw@h:5432/db", want: "postgres://u:***@h:5432/db" },
    { url: "nats://127.0.0.1:4222", want: "nats://127.0.0.1:4222" },
    { url: "not a url", want: "[unparsable url]" },
    { url: "127.0.0.1:4222", want: "127.0.0.1:4222" },
    { url: "user:secret@127.0.0.1:4222", want: "***@127.0.0.1:4222" },
    { url: "secret@127.0.0.1:4222", want: "***@127.0.0.1:4222" },
  ])("$url", ({ url, want }) => {
    expect(redactUrl(url)).toBe(want);
  });
});

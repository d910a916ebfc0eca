import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { ConfigError, NatsConnectError, connectNats, createLogger, natsConnectOptions, reconnectDelay } from "../../src/index.js";

const logger = createLogger({ name: "t", level: "silent" });

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const address = srv.address();
  await new Promise<void>((r) => srv.close(() => r()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

describe("connectNats without a server", () => {
  it("rejects an empty server list", async () => {
    await expect(connectNats({ servers: " , ", name: "x", logger })).rejects.toBeInstanceOf(NatsConnectError);
  });

  it("with waitOnFirstConnect: false, a refused connection is a NatsConnectError naming the server", async () => {
    const port = await closedPort();
    const error = await connectNats({
      servers: `nats://127.0.0.1:${port}`,
      name: "x",
      logger,
      waitOnFirstConnect: false,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NatsConnectError);
    expect((error as Error).message).toContain(`127.0.0.1:${port}`);
  });

  it("an unreadable credentials file fails before connecting", async () => {
    const error = await connectNats({ servers: "nats://127.0.0.1:1", name: "x", logger, credsFile: "/nonexistent.creds" }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NatsConnectError);
    expect((error as Error).message).toMatch(/credentials file/);
  });
});

describe("reconnectDelay", () => {
  it("doubles per failed dial from the base up to the cap, jittered on the upper half", () => {
    expect([0, 1, 2, 3, 4].map((attempt) => reconnectDelay(250, 10_000, attempt, 1))).toEqual([250, 250, 500, 1000, 2000]);
    expect(reconnectDelay(250, 10_000, 50, 1)).toBe(10_000);
    expect(reconnectDelay(250, 10_000, 3, 0)).toBe(500);
    // the same attempt gives the same delay however often it is asked (nats.js asks on every turn of its loop)
    expect(new Set(Array.from({ length: 100 }, () => reconnectDelay(250, 10_000, 2, 0.5))).size).toBe(1);
  });
});

describe("natsConnectOptions", () => {
  it("maps the config to connection options, the name defaulting to the service", () => {
    expect(natsConnectOptions({ NATS_URL: "nats://a:4222,nats://b:4222" }, "ingest")).toEqual({ servers: "nats://a:4222,nats://b:4222", name: "ingest" });
    expect(natsConnectOptions({ NATS_URL: "nats://a:4222", NATS_NAME: "site-ingest", NATS_USER: "ingest", NATS_PASSWORD: "pw" }, "ingest")).toEqual({
      servers: "nats://a:4222",
      name: "site-ingest",
      user: "ingest",
      password: "pw",
    });
    expect(natsConnectOptions({ NATS_URL: "nats://a:4222", NATS_CREDS: "/run/secrets/creds" }, "status")).toEqual({ servers: "nats://a:4222", name: "status", credsFile: "/run/secrets/creds" });
  });

  it("names the missing half of a user and password, and refuses two kinds of credentials", () => {
    const problems = (config: Parameters<typeof natsConnectOptions>[0]) => {
      try {
        natsConnectOptions(config, "x");
        return [];
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as ConfigError).problems.map((p) => p.variable);
      }
    };
    expect(problems({ NATS_URL: "nats://a", NATS_USER: "ingest" })).toEqual(["NATS_PASSWORD"]);
    expect(problems({ NATS_URL: "nats://a", NATS_PASSWORD: "pw" })).toEqual(["NATS_USER"]);
    expect(problems({ NATS_URL: "nats://a", NATS_USER: "ingest", NATS_PASSWORD: "pw", NATS_CREDS: "/c" })).toEqual(["NATS_CREDS"]);
  });

  it("connectNats refuses half a user and password before dialling", async () => {
    await expect(connectNats({ servers: "nats://127.0.0.1:1", name: "x", logger, user: "ingest" })).rejects.toThrow(/password/);
  });
});

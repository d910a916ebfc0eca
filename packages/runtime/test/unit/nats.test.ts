import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { NatsConnectError, connectNats, createLogger } from "../../src/index.js";

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

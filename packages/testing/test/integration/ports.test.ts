/**
 * A port taken between the pick and the bind: the start fails with a clear
 * error instead of talking to the process that holds the port, and a start on
 * picked ports tries fresh ones.
 */
import { createServer } from "node:http";
import type { Server } from "node:http";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServerStartError, startNats, startRegistry } from "../../src/index.js";
import { withFreePorts } from "../../src/internal.js";

let impostor: Server;
let taken: number;

beforeAll(async () => {
  // Answers 200 to anything, as a registry's /v2/ would.
  impostor = createServer((_request, response) => response.end("{}"));
  await new Promise<void>((resolve) => impostor.listen({ port: 0, host: "127.0.0.1" }, resolve));
  const address = impostor.address();
  taken = typeof address === "object" && address !== null ? address.port : 0;
});

afterAll(async () => {
  await new Promise((resolve) => impostor.close(resolve));
});

describe("a port held by another process", () => {
  it("a registry on it fails to start, naming the bind error, though /v2/ answers 200", async () => {
    const error = await startRegistry({ port: taken }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServerStartError);
    expect((error as ServerStartError).logTail).toMatch(/address already in use/);
  });

  it("a nats-server on it fails to start though its monitoring port is healthy", async () => {
    const error = await startNats({ port: taken }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServerStartError);
    expect((error as ServerStartError).logTail).toMatch(/address already in use/);
  });

  it("a start on picked ports tries fresh ones after a collision; fixed ports do not", async () => {
    let attempts = 0;
    const registry = await withFreePorts(false, () => startRegistry(++attempts === 1 ? { port: taken } : {}));
    try {
      expect(attempts).toBe(2);
      expect(registry.port).not.toBe(taken);
      expect((await fetch(`${registry.url}/v2/`)).status).toBe(200);
    } finally {
      await registry.stop();
    }
    attempts = 0;
    await expect(withFreePorts(true, () => startNats(++attempts === 1 ? { port: taken } : {}))).rejects.toBeInstanceOf(ServerStartError);
    expect(attempts).toBe(1);
  });

  it("a nats-server started on picked ports is the one clients reach", async () => {
    const nats = await startNats();
    try {
      const nc = await connect({ servers: nats.url });
      expect(nc.info?.server_name).toBe(nats.name);
      await nc.close();
    } finally {
      await nats.stop();
    }
  });
});

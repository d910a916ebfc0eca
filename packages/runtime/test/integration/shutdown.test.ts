import { EventEmitter } from "node:events";
import { startNats, startPostgres } from "@georep/testing";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNats, createDatabase, createLogger, createShutdown } from "../../src/index.js";
import type { ShutdownProcess } from "../../src/index.js";

const logger = createLogger({ name: "test", level: "silent" });
let pgServer: Awaited<ReturnType<typeof startPostgres>>;
let natsServer: Awaited<ReturnType<typeof startNats>>;

beforeAll(async () => {
  [pgServer, natsServer] = await Promise.all([startPostgres(), startNats({ domain: "primary" })]);
});

afterAll(async () => {
  await Promise.all([pgServer?.stop(), natsServer?.stop()]);
});

function fakeProcess(): ShutdownProcess & { exits: number[]; emitter: EventEmitter } {
  const emitter = new EventEmitter();
  const exits: number[] = [];
  return {
    emitter,
    exits,
    on: (s, l) => emitter.on(s, l),
    removeListener: (s, l) => emitter.removeListener(s, l),
    exit: (c) => {
      exits.push(c);
    },
  };
}

describe("shutdown with real Postgres and NATS", () => {
  it("closes the pg pool and drains the nats connection in reverse order; second call is a no-op", async () => {
    const proc = fakeProcess();
    const shutdown = createShutdown({ logger, process: proc, timeoutMs: 10_000 });
    const database = createDatabase({ url: pgServer.url, poolSize: 2, logger });
    const nc = await connectNats({ servers: natsServer.url, name: "shutdown-test", logger });
    const order: string[] = [];

    // Start-up order: pool, then nats, then the "consumer" that uses both.
    shutdown.onShutdown("postgres", async () => {
      order.push("postgres");
      await database.close();
    });
    shutdown.onShutdown("nats", async () => {
      order.push("nats");
      await nc.drain();
    });
    let inFlight = 0;
    shutdown.onShutdown("consumer", async () => {
      order.push("consumer");
      // In-flight work still has its pool and connection when the consumer stops.
      await sql`select 1`.execute(database.db);
      nc.publish("georep.test.handback", "bye");
      inFlight = 0;
    });

    await sql`select 1`.execute(database.db);
    inFlight = 1;
    const closed = nc.closed();
    const result = await shutdown.run("test");
    expect(order).toEqual(["consumer", "nats", "postgres"]);
    expect(result.failed).toEqual([]);
    expect(result.forced).toBe(false);
    expect(inFlight).toBe(0);
    expect(nc.isClosed()).toBe(true);
    expect(await closed).toBeUndefined(); // closed cleanly, no error
    expect(database.pool.ended).toBe(true);
    expect(database.pool.totalCount).toBe(0);

    const second = await shutdown.run("again");
    expect(second).toBe(result);
    expect(order).toHaveLength(3);
    expect(proc.exits).toEqual([]);
    shutdown.dispose();
  });

  it("a SIGTERM runs the hooks against real resources, then exits 0", async () => {
    const proc = fakeProcess();
    const shutdown = createShutdown({ logger, process: proc });
    const database = createDatabase({ url: pgServer.url, logger });
    await database.ping();
    shutdown.onShutdown("postgres", () => database.close());
    proc.emitter.emit("SIGTERM", "SIGTERM");
    const t0 = Date.now();
    while (proc.exits.length === 0 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
    expect(proc.exits).toEqual([0]);
    expect(database.pool.ended).toBe(true);
    shutdown.dispose();
  });
});

import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { STREAMS } from "@georep/schema";
import { startNats } from "@georep/testing";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NatsConnectError, StreamConfigError, connectNats, createLogger, ensureConsumer, ensureStream, natsConnectOptions } from "../../src/index.js";

let server: Awaited<ReturnType<typeof startNats>>;
const connections: NatsConnection[] = [];

beforeAll(async () => {
  server = await startNats({ domain: "primary" });
});

afterAll(async () => {
  await Promise.all(connections.filter((nc) => !nc.isClosed()).map((nc) => nc.close()));
  await server?.stop();
});

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(c: Buffer, _e, cb) {
      for (const l of c.toString().split("\n")) if (l !== "") lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger({ name: "test", level: "debug", destination }), lines };
}

async function connect(logger = createLogger({ name: "test", level: "silent" })): Promise<NatsConnection> {
  const nc = await connectNats({ servers: server.url, name: "runtime-test", logger, reconnectBaseMs: 50, reconnectMaxMs: 500 });
  connections.push(nc);
  return nc;
}

async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const unique = (prefix: string): string => `${prefix}_${randomUUID().replaceAll("-", "").slice(0, 10)}`;

describe("connectNats + ensureStream (real nats-server)", () => {
  it("connects and round-trips a core message", async () => {
    const nc = await connect();
    const sub = nc.subscribe("runtime.test.ping", { max: 1 });
    nc.publish("runtime.test.ping", "hello");
    for await (const m of sub) expect(m.string()).toBe("hello");
    expect(nc.getServer()).toContain("127.0.0.1");
  });

  it("ensureStream creates, then is idempotent, then updates what changed", async () => {
    const nc = await connect();
    const jsm = await jetstreamManager(nc);
    const name = unique("STREAM");
    const config = { name, subjects: [`${name.toLowerCase()}.>`], retention: "limits" as const, max_msgs: 100 };

    const first = await ensureStream(jsm, config);
    expect(first.action).toBe("created");
    const again = await ensureStream(jsm, config);
    expect(again.action).toBe("unchanged");
    const concurrently = await Promise.all([ensureStream(jsm, config), ensureStream(jsm, config)]);
    expect(concurrently.map((r) => r.action)).toEqual(["unchanged", "unchanged"]);

    const updated = await ensureStream(jsm, { ...config, max_msgs: 200 });
    expect(updated.action).toBe("updated");
    expect(updated.info.config.max_msgs).toBe(200);
    expect((await jsm.streams.info(name)).config.max_msgs).toBe(200);
  });

  it("takes the stream definitions of @georep/schema as they are", async () => {
    const jsm = await jetstreamManager(await connect());
    expect((await ensureStream(jsm, STREAMS.TRANSFER_JOBS)).action).toBe("created");
    const again = await ensureStream(jsm, { ...STREAMS.TRANSFER_JOBS, max_age: 0 });
    expect(again.action).toBe("unchanged");
    expect(again.info.config.retention).toBe("workqueue");
    expect(again.info.config.subjects).toEqual(["georep.transfer.jobs.>"]);
  });

  it("two replicas creating the same stream at once both succeed", async () => {
    const [a, b] = [await connect(), await connect()];
    const name = unique("RACE");
    const config = { name, subjects: [`${name.toLowerCase()}.>`] };
    const results = await Promise.all([
      ensureStream(await jetstreamManager(a), config),
      ensureStream(await jetstreamManager(b), config),
    ]);
    expect(results.map((r) => r.action)).toContain("created");
    expect((await (await jetstreamManager(a)).streams.info(name)).config.name).toBe(name);
  });

  it("ensureConsumer creates it (replicas racing), then updates only the mutable settings that changed", async () => {
    const jsm = await jetstreamManager(await connect());
    const name = unique("CONSUMED");
    await ensureStream(jsm, { name, subjects: [`${name.toLowerCase()}.>`] });
    const config = { durable_name: "worker", ack_policy: "explicit" as const, ack_wait: 30_000_000_000, max_deliver: -1, description: "v1" };
    const mutable = ["description", "ack_wait", "max_deliver"] as const;
    const raced = await Promise.all([ensureConsumer(jsm, name, config, mutable), ensureConsumer(jsm, name, config, mutable)]);
    // JetStream accepts an identical create; either way both replicas succeed and one consumer exists.
    expect(raced.every((a) => a === "created" || a === "unchanged")).toBe(true);
    expect((await jsm.consumers.list(name).next()).map((c) => c.name)).toEqual(["worker"]);
    expect(await ensureConsumer(jsm, name, config, mutable)).toBe("unchanged");
    expect(await ensureConsumer(jsm, name, { ...config, description: "v2", ack_wait: 60_000_000_000 }, mutable)).toBe("updated");
    const info = await jsm.consumers.info(name, "worker");
    expect([info.config.description, info.config.ack_wait]).toEqual(["v2", 60_000_000_000]);
  });

  it("refuses an immutable change with a StreamConfigError", async () => {
    const nc = await connect();
    const jsm = await jetstreamManager(nc);
    const name = unique("IMM");
    await ensureStream(jsm, { name, subjects: [`${name.toLowerCase()}.>`], retention: "limits" });
    const error = await ensureStream(jsm, { name, subjects: [`${name.toLowerCase()}.>`], retention: "workqueue" }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StreamConfigError);
    expect((error as StreamConfigError).code).toBe("RUNTIME_ERR_STREAM");
    expect((error as StreamConfigError).message).toMatch(/retention/);
  });

  it("survives a server restart: logs disconnect/reconnect and publishes again", async () => {
    const { logger, lines } = capture();
    // the default reconnect delays (250 ms doubling up to 10 s), as services run
    const nc = await connectNats({ servers: server.url, name: "runtime-test", logger });
    connections.push(nc);
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    const name = unique("RESTART");
    const subject = `${name.toLowerCase()}.x`;
    await ensureStream(jsm, { name, subjects: [`${name.toLowerCase()}.>`] });
    expect((await js.publish(subject, "before")).seq).toBe(1);

    // down for 1.5 s (dials fail meanwhile), then back on the same port
    process.kill(server.pid, "SIGKILL");
    await new Promise((r) => setTimeout(r, 1_500));
    await server.restart();
    const back = Date.now();
    await until("reconnect log", () => lines.some((l) => l.msg === "nats reconnected"));
    // the reconnect delay grows per dial, not per turn of the client's wait loop: a short outage is a short wait
    expect(Date.now() - back).toBeLessThan(4_000);
    expect(lines.some((l) => l.msg === "nats disconnected")).toBe(true);
    expect(nc.isClosed()).toBe(false);

    // The stream is re-ensured as a service would at start; JetStream kept it.
    const again = await ensureStream(jsm, { name, subjects: [`${name.toLowerCase()}.>`] });
    expect(again.action).toBe("unchanged");
    const ack = await js.publish(subject, "after");
    expect(ack.seq).toBe(2);
    expect((await jsm.streams.info(name)).state.messages).toBe(2);
  });
});

describe("connectNats with a user per service (real nats-server with authorization users)", () => {
  let secured: Awaited<ReturnType<typeof startNats>>;
  const password = randomUUID();

  beforeAll(async () => {
    secured = await startNats({ users: [{ user: "ingest", password }] });
  });

  afterAll(async () => {
    await secured?.stop();
  });

  it("connects with the service's user and password from the config", async () => {
    const options = natsConnectOptions({ NATS_URL: secured.url, NATS_USER: "ingest", NATS_PASSWORD: password }, "ingest");
    const nc = await connectNats({ ...options, logger: createLogger({ name: "test", level: "silent" }), waitOnFirstConnect: false });
    connections.push(nc);
    const sub = nc.subscribe("hello.auth", { max: 1 });
    nc.publish("hello.auth", "hi");
    for await (const m of sub) expect(m.string()).toBe("hi");
  });

  it("a wrong password or none is refused with a NatsConnectError, and the password is not in its message", async () => {
    const { logger } = capture();
    for (const auth of [{ user: "ingest", password: "not-the-password" }, {}]) {
      const error = await connectNats({ servers: secured.url, name: "runtime-test", logger, waitOnFirstConnect: false, ...auth }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(NatsConnectError);
      expect(String((error as NatsConnectError).cause)).toMatch(/authorization violation/i);
      expect((error as Error).message).not.toContain("not-the-password");
    }
  });
});

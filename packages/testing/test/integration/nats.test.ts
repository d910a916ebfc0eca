import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNats, waitForLeafnodes } from "../../src/index.js";
import type { RunningNats } from "../../src/index.js";

describe("startNats: two JetStream domains joined by a leafnode", () => {
  let hub: RunningNats;
  let leaf: RunningNats;
  const connections: NatsConnection[] = [];

  beforeAll(async () => {
    hub = await startNats({ domain: "primary", leafnodeListen: { auth: { user: "leaf", password: "s3cret" } } });
    leaf = await startNats({ domain: "secondary-1", leafnodeRemotes: [hub.leafnodeUrl!] });
    await waitForLeafnodes(hub, 1);
  });

  afterAll(async () => {
    await Promise.all(connections.map((nc) => nc.close()));
    await leaf?.stop();
    await hub?.stop();
  });

  const open = async (server: RunningNats) => {
    const nc = await connect({ servers: server.url });
    connections.push(nc);
    return nc;
  };

  it("each server has its own JetStream domain", async () => {
    const [a, b] = await Promise.all([open(hub), open(leaf)]);
    expect((await (await jetstreamManager(a)).getAccountInfo()).domain).toBe("primary");
    expect((await (await jetstreamManager(b)).getAccountInfo()).domain).toBe("secondary-1");
  });

  it("a message published on the primary is read from a mirror on the secondary", async () => {
    const primary = await open(hub);
    const secondary = await open(leaf);
    const pjsm = await jetstreamManager(primary);
    await pjsm.streams.add({ name: "KIT_EVENTS", subjects: ["kit.events.>"] });
    await jetstream(primary).publish("kit.events.push", "hello from primary", { msgID: "event-1" });

    const sjsm = await jetstreamManager(secondary);
    await sjsm.streams.add({ name: "KIT_EVENTS", mirror: { name: "KIT_EVENTS", external: { api: "$JS.primary.API" } } });
    const deadline = Date.now() + 15_000;
    while ((await sjsm.streams.info("KIT_EVENTS")).state.messages < 1) {
      if (Date.now() > deadline) throw new Error("mirror on the secondary did not receive the message");
      await new Promise((r) => setTimeout(r, 100));
    }
    const message = await sjsm.streams.getMessage("KIT_EVENTS", { seq: 1 });
    expect(message?.string()).toBe("hello from primary");
    expect(message?.subject).toBe("kit.events.push");
  });

  it("subjects a leaf denies stay on its site (two leaves with the same work queue)", async () => {
    const [a, b] = await Promise.all([
      startNats({ domain: "site-a", leafnodeRemotes: [hub.leafnodeUrl!], leafnodeDeny: ["kit.jobs.>"] }),
      startNats({ domain: "site-b", leafnodeRemotes: [hub.leafnodeUrl!], leafnodeDeny: ["kit.jobs.>"] }),
    ]);
    try {
      await waitForLeafnodes(hub, 3);
      const [na, nb] = await Promise.all([open(a), open(b)]);
      for (const nc of [na, nb]) await (await jetstreamManager(nc)).streams.add({ name: "KIT_JOBS", subjects: ["kit.jobs.>"], retention: "workqueue" });
      await new Promise((r) => setTimeout(r, 500)); // let subject interest propagate across the leafnodes
      await jetstream(na).publish("kit.jobs.one", "for site a only");
      await new Promise((r) => setTimeout(r, 500));
      expect((await (await jetstreamManager(na)).streams.info("KIT_JOBS")).state.messages).toBe(1);
      expect((await (await jetstreamManager(nb)).streams.info("KIT_JOBS")).state.messages).toBe(0);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it("a leaf without the hub's credentials is refused", async () => {
    const intruder = await startNats({ domain: "intruder", leafnodeRemotes: [hub.leafnodeUrl!.replace("s3cret", "wrong")] });
    try {
      await expect(waitForLeafnodes(hub, 2, 1500)).rejects.toThrow(/fewer than 2 leafnode/);
    } finally {
      await intruder.stop();
    }
  });

  it("restart keeps the port and the JetStream store", async () => {
    const nc = await open(hub);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "KIT_DURABLE", subjects: ["kit.durable"] });
    await jetstream(nc).publish("kit.durable", "kept");
    const pid = hub.pid;
    await hub.restart();
    expect(hub.pid).not.toBe(pid);
    const again = await open(hub);
    const info = await (await jetstreamManager(again)).streams.info("KIT_DURABLE");
    expect(info.state.messages).toBe(1);
    await waitForLeafnodes(hub, 1);
  });

  it("stop ends the process and removes its dir", async () => {
    const server = await startNats();
    const { pid, dir } = server;
    await server.stop();
    expect(() => process.kill(pid, 0)).toThrow();
    const { existsSync } = await import("node:fs");
    expect(existsSync(dir)).toBe(false);
  });
});

import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { createHealth, healthPlugin } from "../../src/index.js";
import type { HealthReport } from "../../src/index.js";

describe("health plugin", () => {
  async function app(setup: (h: ReturnType<typeof createHealth>) => void) {
    const health = createHealth();
    setup(health);
    const fastify = Fastify();
    await fastify.register(healthPlugin, { health });
    return { fastify, health };
  }

  it("answers 200 when every check passes", async () => {
    const { fastify } = await app((h) => {
      h.register("postgres", async () => undefined);
      h.register("nats", () => undefined);
    });
    const res = await fastify.inject({ method: "GET", url: "/health/ready" });
    expect(res.statusCode).toBe(200);
    const body = res.json<HealthReport>();
    expect(body.status).toBe("ok");
    expect(Object.keys(body.checks).sort()).toEqual(["nats", "postgres"]);
    expect(body.failing).toEqual([]);
    expect(res.headers["cache-control"]).toBe("no-store");
    await fastify.close();
  });

  it("answers 503 naming the failing check", async () => {
    const { fastify } = await app((h) => {
      h.register("postgres", async () => undefined);
      h.register("nats", async () => {
        throw new Error("nats disconnected");
      });
    });
    const res = await fastify.inject({ method: "GET", url: "/health/ready" });
    expect(res.statusCode).toBe(503);
    const body = res.json<HealthReport>();
    expect(body.status).toBe("fail");
    expect(body.failing).toEqual(["nats"]);
    expect(body.checks.nats).toMatchObject({ status: "fail", error: "nats disconnected" });
    expect(body.checks.postgres?.status).toBe("ok");
    await fastify.close();
  });

  it("liveness runs only liveness checks, so a dependency outage does not restart the process", async () => {
    const { fastify } = await app((h) => {
      h.register("postgres", () => {
        throw new Error("down");
      });
      h.register("event-loop", () => undefined, { liveness: true });
    });
    const live = await fastify.inject({ method: "GET", url: "/health/live" });
    expect(live.statusCode).toBe(200);
    expect(Object.keys(live.json<HealthReport>().checks)).toEqual(["event-loop"]);
    const ready = await fastify.inject({ method: "GET", url: "/health/ready" });
    expect(ready.statusCode).toBe(503);
    await fastify.close();
  });

  it("a check that hangs fails after its timeout", async () => {
    const { fastify } = await app((h) => {
      h.register("slow", () => new Promise<void>(() => undefined), { timeoutMs: 50 });
    });
    const res = await fastify.inject({ method: "GET", url: "/health/ready" });
    expect(res.statusCode).toBe(503);
    expect(res.json<HealthReport>().checks.slow?.error).toMatch(/timed out/);
    await fastify.close();
  });

  it("readiness fails once draining while liveness stays ok", async () => {
    const { fastify, health } = await app(() => undefined);
    expect((await fastify.inject({ url: "/health/ready" })).statusCode).toBe(200);
    health.drain();
    const ready = await fastify.inject({ url: "/health/ready" });
    expect(ready.statusCode).toBe(503);
    expect(ready.json<HealthReport>().failing).toEqual(["shutdown"]);
    expect((await fastify.inject({ url: "/health/live" })).statusCode).toBe(200);
    await fastify.close();
  });

  it("refuses a duplicate check name", () => {
    const health = createHealth();
    health.register("a", () => undefined);
    expect(() => health.register("a", () => undefined)).toThrow(/already registered/);
  });
});

/**
 * The real process: `node dist/main.js` configured from the environment,
 * ready, consuming, and shutting down cleanly on SIGTERM.
 */
import pg from "pg";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNats } from "@georep/runtime";
import { freePort, startNats, startPostgres, serviceMain } from "@georep/testing";
import type { RunningNats, RunningPostgres, ServiceRun } from "@georep/testing";
import { consumerIdle, logger, publishRegistryEvent, registryEvent, waitUntil } from "../helpers.js";

const main = serviceMain(new URL("../..", import.meta.url));


let nats: RunningNats;
let postgres: RunningPostgres;
let nc: NatsConnection;

beforeAll(async () => {
  [nats, postgres] = await Promise.all([startNats({ domain: "primary" }), startPostgres(), main.ensureBuilt()]);
  nc = await connectNats({ servers: nats.url, name: "test-client", logger });
});

afterAll(async () => {
  main.killAll();
  await nc?.close();
  await Promise.all([nats?.stop(), postgres?.stop()]);
});

const run = (env: Record<string, string>): ServiceRun => main.run(env);

describe("event-log main", () => {
  it("starts from the environment, consumes, and exits 0 on SIGTERM", async () => {
    const port = await freePort();
    const proc = run({
      NATS_URL: nats.url,
      DATABASE_URL: postgres.url,
      SITE_NAME: "primary",
      SITE_ROLE: "primary",
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: String(port),
      LOG_LEVEL: "info",
      EVENT_LOG_OUTBOX_INTERVAL_MS: "500",
    });
    const base = `http://127.0.0.1:${port}`;
    await waitUntil(
      "/health/ready to answer 200",
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`exited early (${proc.child.exitCode}): ${proc.stderr()}${proc.stdout()}`);
        return (await fetch(`${base}/health/ready`).catch(() => undefined))?.status === 200;
      },
      20_000,
    );

    const event = registryEvent({ repository: "main/app" });
    await publishRegistryEvent(jetstream(nc), event);
    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    try {
      await waitUntil("the row published", async () => {
        const { rows } = await client.query<{ published: boolean }>(
          "select published_at is not null as published from geo_events where registry_event_id = $1",
          [event.id],
        );
        return rows[0]?.published === true;
      });
    } finally {
      await client.end();
    }
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^georep_event_log_rows_inserted_total 1$/m);
    expect(metrics).toMatch(/^georep_event_log_geo_events_published_total 1$/m);

    proc.child.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    const lines = proc.stdout().trim().split("\n").map((l) => JSON.parse(l) as { level: string; msg: string });
    expect(lines.some((l) => l.msg === "event-log stopped")).toBe(true);
    expect(lines.some((l) => l.msg === "shutdown complete")).toBe(true);
    expect(lines.filter((l) => l.level === "error" || l.level === "fatal")).toEqual([]);
    // Nothing was left half-done: the message in hand was acked before the connection drained.
    expect(await consumerIdle(nc)).toBe(true);
    await expect(fetch(`${base}/health/live`)).rejects.toThrow();
  });

  it("refuses a bad environment with exit code 2, naming every problem", async () => {
    const proc = run({ SITE_NAME: "Bad Name", SITE_ROLE: "secondary", HTTP_PORT: "http" });
    expect(await proc.exited).toBe(2);
    const stderr = proc.stderr();
    expect(stderr).toContain("DATABASE_URL");
    expect(stderr).toContain("SITE_NAME");
    expect(stderr).toContain("HTTP_PORT");
    expect(stderr).toMatch(/SITE_ROLE: event-log runs on the primary site only/);
  });
});

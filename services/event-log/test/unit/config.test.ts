import { describe, expect, it } from "vitest";
import { ConfigError } from "@georep/runtime";
import { EVENT_LOG_CONFIG_DEFAULTS, eventLogOptions, loadEventLogConfig } from "../../src/config.js";

const BASE = { DATABASE_URL: "postgres://u:p@127.0.0.1:5432/georep", SITE_NAME: "primary", SITE_ROLE: "primary" };

function problems(env: Record<string, string>): string[] {
  try {
    loadEventLogConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.variable}: ${p.message}`);
    throw err;
  }
  return [];
}

describe("loadEventLogConfig", () => {
  it("applies the defaults: 30 days, a 2 hour duplicate window, 1 replica", () => {
    const config = loadEventLogConfig(BASE);
    expect(config.EVENT_LOG_STREAM_MAX_AGE_SECONDS).toBe(30 * 24 * 3600);
    expect(config.EVENT_LOG_DUPLICATE_WINDOW_SECONDS).toBe(2 * 3600);
    expect(config.EVENT_LOG_STREAM_REPLICAS).toBe(1);
    expect(config).toMatchObject(EVENT_LOG_CONFIG_DEFAULTS);
    expect(Object.isFrozen(config)).toBe(true);
    const options = eventLogOptions(config);
    expect(options.streamMaxAgeMs).toBe(30 * 24 * 3600 * 1000);
    expect(options.duplicateWindowMs).toBe(2 * 3600 * 1000);
    expect(options.ackWaitMs).toBe(30_000);
  });

  it("reads the EVENT_LOG_* settings", () => {
    const config = loadEventLogConfig({ ...BASE, EVENT_LOG_STREAM_REPLICAS: "3", EVENT_LOG_BATCH_SIZE: "10", EVENT_LOG_OUTBOX_INTERVAL_MS: "250" });
    expect(eventLogOptions(config)).toMatchObject({ streamReplicas: 3, batchSize: 10, outboxIntervalMs: 250 });
  });

  it("reports every problem at once, including the rules across variables", () => {
    expect(problems({ SITE_NAME: "primary", SITE_ROLE: "secondary", EVENT_LOG_BATCH_SIZE: "0" })).toEqual([
      expect.stringMatching(/^DATABASE_URL: required/),
      expect.stringMatching(/^EVENT_LOG_BATCH_SIZE: /),
      expect.stringMatching(/^SITE_ROLE: event-log runs on the primary site only/),
    ]);
  });

  it("refuses a duplicate window longer than the streams keep messages, and a publish timeout beyond ack_wait", () => {
    expect(
      problems({ ...BASE, EVENT_LOG_STREAM_MAX_AGE_SECONDS: "3600", EVENT_LOG_DUPLICATE_WINDOW_SECONDS: "7200", EVENT_LOG_PUBLISH_TIMEOUT_MS: "30000" }),
    ).toEqual([expect.stringMatching(/^EVENT_LOG_DUPLICATE_WINDOW_SECONDS: /), expect.stringMatching(/^EVENT_LOG_PUBLISH_TIMEOUT_MS: /)]);
  });
});

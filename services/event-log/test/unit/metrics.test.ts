import { describe, expect, it } from "vitest";
import { isPermanentDatabaseError } from "../../src/db.js";
import { METRICS, createMetrics } from "../../src/metrics.js";

describe("metrics", () => {
  it("renders every counter in the Prometheus text format", () => {
    const metrics = createMetrics();
    metrics.inc("rowsInserted");
    metrics.inc("rowsInserted", 2);
    const text = metrics.render();
    expect(text).toMatch(/^# HELP georep_event_log_rows_inserted_total .+\n# TYPE georep_event_log_rows_inserted_total counter\ngeorep_event_log_rows_inserted_total 3$/m);
    for (const { name } of Object.values(METRICS)) expect(text).toMatch(new RegExp(`^${name} \\d+$`, "m"));
    expect(text).toMatch(/^georep_event_log_dead_lettered_total 0$/m);
    expect(text.endsWith("\n")).toBe(true);
  });
});

describe("isPermanentDatabaseError", () => {
  it.each([
    { code: "22008", permanent: true }, // datetime field overflow
    { code: "22P02", permanent: true }, // invalid text representation
    { code: "23502", permanent: true }, // not null violation
    { code: "57P01", permanent: false }, // admin shutdown
    { code: "08006", permanent: false }, // connection failure
    { code: "40001", permanent: false }, // serialization failure
    { code: "ECONNREFUSED", permanent: false },
    { code: undefined, permanent: false },
  ])("$code → permanent: $permanent", ({ code, permanent }) => {
    expect(isPermanentDatabaseError(Object.assign(new Error("x"), { code }))).toBe(permanent);
  });
});

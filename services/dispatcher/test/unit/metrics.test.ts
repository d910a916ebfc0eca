import { describe, expect, it } from "vitest";
import { createMetrics } from "../../src/metrics.js";

describe("metrics", () => {
  it("renders counters, labelled counters from zero, and the per-state gauge", () => {
    const metrics = createMetrics();
    metrics.inc("eventsConsumed");
    metrics.inc("jobsDispatched", { label: "event", by: 2 });
    metrics.inc("jobsDispatched", { label: "resync" });
    expect(metrics.get("jobsDispatched")).toBe(3);
    expect(metrics.get("jobsDispatched", "event")).toBe(2);
    const text = metrics.render({ pending: 4, started: 1, synced: 7, failed: 0 });
    expect(text).toMatch(/^# TYPE georep_dispatcher_events_consumed_total counter$/m);
    expect(text).toMatch(/^georep_dispatcher_events_consumed_total 1$/m);
    expect(text).toMatch(/^georep_dispatcher_jobs_dispatched_total\{reason="event"\} 2$/m);
    expect(text).toMatch(/^georep_dispatcher_jobs_dispatched_total\{reason="backfill"\} 0$/m);
    expect(text).toMatch(/^georep_dispatcher_backfill_runs_total\{outcome="error"\} 0$/m);
    expect(text).toMatch(/^# TYPE georep_dispatcher_repositories gauge$/m);
    expect(text).toMatch(/^georep_dispatcher_repositories\{state="synced"\} 7$/m);
    expect(metrics.render()).not.toContain("georep_dispatcher_repositories{");
  });
});

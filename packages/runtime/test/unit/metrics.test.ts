import { describe, expect, it } from "vitest";
import { createMetricsRegistry } from "../../src/index.js";

describe("metrics registry", () => {
  it("renders counters, gauges and histograms in the text format", async () => {
    const registry = createMetricsRegistry();
    const syncs = registry.counter("t_syncs_total", "Syncs", { initial: [{ outcome: "synced" }, { outcome: "failed" }] });
    const depth = registry.gauge("t_depth", "Depth", { collect: (g) => g.set(7, { queue: "jobs" }) });
    const lag = registry.histogram("t_lag_seconds", "Lag", [1, 0.5, 5]);
    syncs.inc({ outcome: "synced" }, 2);
    syncs.inc({ outcome: 'we"ird\n' });
    lag.observe(0.4);
    lag.observe(3);
    lag.observe(30);
    const text = await registry.render();
    expect(text).toContain("# TYPE t_syncs_total counter\n");
    expect(text).toContain('t_syncs_total{outcome="synced"} 2\n');
    expect(text).toContain('t_syncs_total{outcome="failed"} 0\n');
    expect(text).toContain('t_syncs_total{outcome="we\\"ird\\n"} 1\n');
    expect(text).toContain('t_depth{queue="jobs"} 7\n');
    expect(text).toContain('# TYPE t_lag_seconds histogram\nt_lag_seconds_bucket{le="0.5"} 1\nt_lag_seconds_bucket{le="1"} 1\nt_lag_seconds_bucket{le="5"} 2\nt_lag_seconds_bucket{le="+Inf"} 3\nt_lag_seconds_sum 33.4\nt_lag_seconds_count 3\n');
    expect(depth.get({ queue: "jobs" })).toBe(7);
    expect(lag.count()).toBe(3);
  });

  it("keeps the last gauge values when a collect fails, and refuses bad names, duplicates and decreases", async () => {
    const registry = createMetricsRegistry();
    let fail = false;
    registry.gauge("t_rows", "Rows", {
      collect: (g) => {
        if (fail) throw new Error("postgres down");
        g.set(3);
      },
    });
    expect(await registry.render()).toContain("t_rows 3\n");
    fail = true;
    expect(await registry.render()).toContain("t_rows 3\n");
    expect(() => registry.counter("t rows", "x")).toThrow(/invalid metric name/);
    expect(() => registry.counter("t_rows", "x")).toThrow(/registered twice/);
    expect(() => registry.counter("t_c", "x").inc({}, -1)).toThrow(/cannot decrease/);
  });

  it("labels histograms", async () => {
    const registry = createMetricsRegistry();
    const h = registry.histogram("t_d_seconds", "D", [1], { initial: [{ outcome: "synced" }] });
    h.observe(2, { outcome: "failed" });
    const text = await registry.render();
    expect(text).toContain('t_d_seconds_bucket{outcome="synced",le="1"} 0\n');
    expect(text).toContain('t_d_seconds_bucket{outcome="failed",le="+Inf"} 1\nt_d_seconds_sum{outcome="failed"} 2\n');
  });
});

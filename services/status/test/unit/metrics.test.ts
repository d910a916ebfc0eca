import { describe, expect, it } from "vitest";
import { createMetrics } from "../../src/metrics.js";
import { progressOf } from "../../src/site.js";

describe("metrics", () => {
  it("renders labelled counters with their initial series, the request histogram and the sites gauge", async () => {
    const metrics = createMetrics();
    metrics.inc("httpRequests", ["/api/v1/site", "200"]);
    metrics.inc("httpRequests", ["/api/v1/site", "200"]);
    metrics.inc("actions", ["pause", "accepted"]);
    metrics.inc("httpRequests", ['/odd"route\\', "404"]);
    metrics.observeRequest("/api/v1/site", 0.02);
    metrics.watchSites(() => ({ ok: 2, failing: 0, stale: 1 }));
    const text = await metrics.render();
    expect(text).toMatch(/^# TYPE georep_status_http_requests_total counter$/m);
    expect(text).toMatch(/^georep_status_http_requests_total\{route="\/api\/v1\/site",status="200"\} 2$/m);
    expect(text).toContain('georep_status_http_requests_total{route="/odd\\"route\\\\",status="404"} 1');
    expect(text).toMatch(/^georep_status_actions_total\{kind="pause",outcome="accepted"\} 1$/m);
    expect(text).toMatch(/^georep_status_actions_total\{kind="site_resync",outcome="error"\} 0$/m);
    expect(text).toMatch(/^georep_status_replication_waits_total\{outcome="timeout"\} 0$/m);
    expect(text).toMatch(/^georep_status_reports_received_total\{outcome="invalid"\} 0$/m);
    expect(text).toMatch(/^georep_status_http_request_duration_seconds_bucket\{route="\/api\/v1\/site",le="0.025"\} 1$/m);
    expect(text).toMatch(/^georep_status_http_request_duration_seconds_bucket\{route="\/api\/v1\/site",le="0.01"\} 0$/m);
    expect(text).toMatch(/^# TYPE georep_status_sites gauge$/m);
    expect(text).toMatch(/^georep_status_sites\{health="stale"\} 1$/m);
    expect(text).toMatch(/^georep_status_sites\{health="ok"\} 2$/m);
    expect(text.endsWith("\n")).toBe(true);
    expect(metrics.get("httpRequests", ["/api/v1/site", "200"])).toBe(2);
    expect(metrics.get("actions", ["pause", "accepted"])).toBe(1);
  });
});

describe("progressOf", () => {
  it.each([
    [0, 0, 1],
    [12, 13, 0.923],
    [999, 1000, 0.999],
    [9999, 10000, 0.999],
    [5, 5, 1],
    [0, 3, 0],
  ])("%i of %i synced is %d", (synced, total, progress) => {
    expect(progressOf(synced, total)).toBe(progress);
  });
});

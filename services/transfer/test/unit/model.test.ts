/** Pure pieces: the verification checksum, the metrics text, the concurrency helpers. */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createLimiter, mapLimited, settleAll } from "../../src/limit.js";
import { createMetrics } from "../../src/metrics.js";
import { tagListChecksum } from "../../src/sync.js";
import { TagsFailedError } from "../../src/errors.js";

const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;

describe("tagListChecksum", () => {
  it.each([
    ["no tags", [], ""],
    ["one tag", [["v1", D1]], `v1 ${D1}\n`],
    ["sorted whatever the order", [["v2", D2], ["latest", D1], ["v1", D1]], `latest ${D1}\nv1 ${D1}\nv2 ${D2}\n`],
  ] as const)("%s", (_name, tags, text) => {
    const expected = `sha256:${createHash("sha256").update(text).digest("hex")}`;
    expect(tagListChecksum(new Map(tags.map(([t, d]) => [t, d])))).toBe(expected);
  });

  it("changes when a tag moves", () => {
    expect(tagListChecksum(new Map([["v1", D1]]))).not.toBe(tagListChecksum(new Map([["v1", D2]])));
  });
});

describe("metrics", () => {
  it("renders labelled counters, the duration and lag histograms and the in-flight gauge", async () => {
    const m = createMetrics();
    m.inc("syncs", "synced");
    m.inc("syncs", "synced");
    m.inc("syncs", "failed");
    m.inc("blobs", "mounted", 3);
    m.inc("bytes", "", 1024);
    m.observeDuration(1.5);
    m.observeDuration(0.5);
    m.observeDuration(0.02, "failed");
    m.observeLag(0.3);
    m.observeLag(4);
    m.setInFlight(1);
    const text = await m.render();
    expect(text).toContain('georep_transfer_syncs_total{outcome="synced"} 2\ngeorep_transfer_syncs_total{outcome="failed"} 1\n');
    expect(text).toContain('georep_transfer_blobs_total{action="mounted"} 3\n');
    expect(text).toContain("georep_transfer_bytes_copied_total 1024\n");
    expect(text).toContain("# TYPE georep_transfer_sync_duration_seconds histogram\n");
    expect(text).toContain('georep_transfer_sync_duration_seconds_bucket{outcome="synced",le="1"} 1\n');
    expect(text).toContain('georep_transfer_sync_duration_seconds_sum{outcome="synced"} 2\ngeorep_transfer_sync_duration_seconds_count{outcome="synced"} 2\n');
    expect(text).toContain('georep_transfer_sync_duration_seconds_count{outcome="failed"} 1\n');
    expect(text).toContain('georep_replication_lag_seconds_bucket{le="0.5"} 1\ngeorep_replication_lag_seconds_bucket{le="1"} 1\ngeorep_replication_lag_seconds_bucket{le="2"} 1\ngeorep_replication_lag_seconds_bucket{le="5"} 2\n');
    expect(text).toContain("# TYPE georep_transfer_syncs_in_flight gauge\ngeorep_transfer_syncs_in_flight 1\n");
    expect(m.lagSamples()).toBe(2);
  });
});

describe("concurrency helpers", () => {
  it("a limiter never runs more than its limit at once", async () => {
    const limiter = createLimiter(2);
    let active = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 8 }, () =>
        limiter.run(async () => {
          peak = Math.max(peak, ++active);
          await new Promise((r) => setTimeout(r, 5));
          active--;
        }),
      ),
    );
    expect(peak).toBe(2);
  });

  it("mapLimited keeps order; settleAll rejects with the first failure only after everything settled", async () => {
    expect(await mapLimited([3, 1, 2], 2, async (n) => n * 2)).toEqual([6, 2, 4]);
    let finished = false;
    const slow = new Promise<void>((r) => setTimeout(() => {
      finished = true;
      r();
    }, 20));
    await expect(settleAll([Promise.reject(new Error("first")), slow])).rejects.toThrow("first");
    expect(finished).toBe(true);
  });
});

describe("TagsFailedError", () => {
  it("names every failing tag and its cause", () => {
    const error = new TagsFailedError("team/app", [
      { tag: "v1", error: new Error("digest mismatch in team/app") },
      { tag: "v2", error: new Error("GET …\nanswered 500") },
    ], 5);
    expect(error.message).toBe('team/app: 2 of 5 tag(s) failed: tag "v1": digest mismatch in team/app; tag "v2": GET … answered 500');
    expect(error.code).toBe("TRANSFER_ERR_TAGS");
  });
});

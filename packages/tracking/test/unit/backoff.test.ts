import { describe, expect, it } from "vitest";
import { DEFAULT_BACKOFF, retryDelayMs } from "../../src/index.js";

describe("retryDelayMs", () => {
  it.each([
    [1, 10_000],
    [2, 20_000],
    [3, 40_000],
    [10, 3_600_000],
    [100, 3_600_000],
  ])("retry %i: between half and all of %i ms", (n, full) => {
    expect(retryDelayMs(n, DEFAULT_BACKOFF, () => 0)).toBe(full / 2);
    expect(retryDelayMs(n, DEFAULT_BACKOFF, () => 1)).toBe(full);
  });

  it("jitters", () => {
    const seen = new Set(Array.from({ length: 50 }, () => retryDelayMs(5)));
    expect(seen.size).toBeGreaterThan(10);
  });
});

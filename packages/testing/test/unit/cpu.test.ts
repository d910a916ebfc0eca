/** The machine's busy CPU seconds (/proc/stat): a busy loop in this process shows in it. */
import { describe, expect, it } from "vitest";
import { machineBusySeconds } from "../../src/index.js";

describe("machineBusySeconds", () => {
  it("grows by at least the CPU time this process spends, and never shrinks", () => {
    const before = machineBusySeconds();
    const cpuBefore = process.cpuUsage();
    const until = performance.now() + 300;
    let spins = 0;
    while (performance.now() < until) spins++;
    const used = process.cpuUsage(cpuBefore);
    const spent = (used.user + used.system) / 1e6;
    const after = machineBusySeconds();
    expect(spins).toBeGreaterThan(0);
    // the kernel counts in 10 ms ticks: allow two of them
    expect(after - before).toBeGreaterThanOrEqual(spent - 0.02);
    expect(after).toBeGreaterThanOrEqual(before);
  });
});

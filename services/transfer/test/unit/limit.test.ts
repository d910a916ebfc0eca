import { describe, expect, it } from "vitest";
import { createTurnLoader } from "../../src/limit.js";

describe("createTurnLoader", () => {
  it("loads the keys asked for in one turn with one call, each answer to its own key", async () => {
    const calls: (readonly string[])[] = [];
    const load = createTurnLoader<string, number>(
      async (keys) => {
        calls.push(keys);
        return new Map(keys.filter((k) => k !== "none").map((k) => [k, k.length]));
      },
      () => -1,
    );
    const first = await Promise.all([load("a"), load("bbb"), load("a"), load("none")]);
    expect(first).toEqual([1, 3, 1, -1]);
    expect(calls).toEqual([["a", "bbb", "none"]]);
    expect(await load("cc")).toBe(2);
    expect(calls).toHaveLength(2);
  });

  it("a failed load rejects every lookup of its batch, and the next batch loads again", async () => {
    let fail = true;
    const load = createTurnLoader<string, string>(
      async (keys) => {
        if (fail) throw new Error("database down");
        return new Map(keys.map((k) => [k, k.toUpperCase()]));
      },
      () => "",
    );
    const results = await Promise.allSettled([load("x"), load("y")]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    fail = false;
    expect(await load("x")).toBe("X");
  });
});

/** The pure helpers of the ingest app. */
import { MANIFEST_EVENT_MEDIA_TYPES } from "@georep/deploy-templates";
import { MEDIA_TYPES, isManifestMediaType } from "@georep/registry-client";
import { describe, expect, it } from "vitest";
import { createSecretCheck, createTurnBatcher } from "../../src/app.js";

describe("createSecretCheck", () => {
  const check = createSecretCheck("Bearer s3cret-0123456789");
  it.each([
    ["the exact value", "Bearer s3cret-0123456789", true],
    ["a missing header", undefined, false],
    ["an empty header", "", false],
    ["a prefix", "Bearer s3cret", false],
    ["a longer value", "Bearer s3cret-01234567890", false],
    ["another case", "bearer s3cret-0123456789", false],
  ])("%s", (_what, given, expected) => {
    expect(check(given)).toBe(expected);
  });
});

describe("createTurnBatcher", () => {
  it("starts the tasks of one turn together, in order, after the current code", async () => {
    const together = createTurnBatcher();
    const log: string[] = [];
    const task = (name: string) => () => {
      log.push(`start ${name}`);
      // A microtask queued by the first task must run only after every task of the turn started.
      queueMicrotask(() => log.push(`microtask ${name}`));
      return Promise.resolve(name);
    };
    const all = Promise.all([together(task("a")), together(task("b")), together(task("c"))]);
    log.push("handed over");
    expect(await all).toEqual(["a", "b", "c"]);
    expect(log).toEqual(["handed over", "start a", "start b", "start c", "microtask a", "microtask b", "microtask c"]);
  });

  it("a failing task rejects its own promise only, whether it throws or rejects", async () => {
    const together = createTurnBatcher();
    const results = await Promise.allSettled([
      together(() => Promise.resolve(1)),
      together(() => Promise.reject(new Error("rejected"))),
      together((): Promise<number> => {
        throw new Error("thrown");
      }),
      together(() => Promise.resolve(4)),
    ]);
    expect(results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as Error).message))).toEqual([1, "rejected", "thrown", 4]);
  });

  it("a task handed over in a later turn runs in a later pass", async () => {
    const together = createTurnBatcher();
    const order: number[] = [];
    const first = together(async () => order.push(1));
    await first;
    await together(async () => order.push(2));
    expect(order).toEqual([1, 2]);
  });
});

describe("the blob endpoint's filter (@georep/deploy-templates) and ingest's idea of a manifest", () => {
  it("leave out of the blob endpoint every manifest type ingest replicates", () => {
    const manifestTypes = Object.values(MEDIA_TYPES).filter((type) => isManifestMediaType(type));
    expect(manifestTypes.length).toBeGreaterThan(4);
    for (const type of manifestTypes) expect(MANIFEST_EVENT_MEDIA_TYPES, type).toContain(type);
  });
});

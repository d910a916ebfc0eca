import { defineConfig } from "vitest/config";

/**
 * The fault suite runs on its own (`pnpm test:faults`), never under turbo's
 * `test`: each file starts a whole local stack, and the faults take minutes.
 * One file at a time, one test at a time, in file order.
 */
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["src/global-setup.ts"],
    testTimeout: 600_000,
    hookTimeout: 180_000,
    pool: "forks",
    fileParallelism: false,
    sequence: { concurrent: false, shuffle: false },
    // A stack start is not worth repeating: a failure is reported, not retried.
    retry: 0,
  },
});

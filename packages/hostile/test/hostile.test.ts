/**
 * The hostile-input and security suite (issue 9), against ONE real local
 * stack (a primary and a secondary with every georep service, Distribution
 * 2.8 registries with token auth, NATS with JetStream and the leafnode,
 * Postgres). The suites run in this order on the same stack: bad
 * notifications, bad content on the primary, bad status API calls, then
 * security — which greps every log the others produced for the secrets.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { loadCorpus } from "./support/corpus.js";
import { ARTIFACTS, startHostileStack, stopHostileStack } from "./support/stack.js";
import type { HostileStack } from "./support/stack.js";
import { contentSuite } from "./suites/content.js";
import { notificationSuite } from "./suites/notifications.js";
import { securitySuite } from "./suites/security.js";
import { statusApiSuite } from "./suites/status-api.js";

const corpus = await loadCorpus();
let h: HostileStack | undefined;
const get = (): HostileStack => {
  if (h === undefined) throw new Error("the stack did not start");
  return h;
};

beforeAll(async () => {
  h = await startHostileStack();
}, 180_000);

afterAll(async () => {
  if (h !== undefined) await writeFile(join(ARTIFACTS, "hostile-report.txt"), `${h.report.join("\n")}\n`);
  await stopHostileStack(h);
}, 60_000);

notificationSuite(get, corpus);
contentSuite(get);
statusApiSuite(get);
securitySuite(get);

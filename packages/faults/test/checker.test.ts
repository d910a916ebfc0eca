/**
 * The background checker itself, on a plain Distribution registry: it finds
 * nothing on complete content, and it reports a tag whose layer or child
 * manifest is gone. (A fault test reporting "0 incomplete-visible" means
 * something only if the checker can see a violation.)
 */
import { createRegistryClient, manifestChildren } from "@georep/registry-client";
import type { RegistryClient } from "@georep/registry-client";
import { startRegistry } from "@georep/testing";
import type { RunningRegistry } from "@georep/testing";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChecker } from "../src/checker.js";
import { pushImage, pushIndex, sleep } from "../src/content.js";
import { missingContent } from "../src/verify.js";

let registry: RunningRegistry;
let client: RegistryClient;

beforeAll(async () => {
  registry = await startRegistry();
  client = createRegistryClient({ url: registry.url, retry: { retries: 0 } });
});

afterAll(async () => {
  await registry?.stop();
});

describe("the background checker", () => {
  it("sees nothing wrong with complete content, and reports a tag whose layer or child manifest is missing", async () => {
    const image = await pushImage(client, "check/image", "v1");
    const index = await pushIndex(client, "check/index", "v1");
    await pushImage(client, "other/untouched", "v1");

    const checker = startChecker({ secondary: client, prefixes: ["check/"], intervalMs: 50 });
    await sleep(500);
    // A layer removed under a tag, and one platform manifest of an index.
    const manifest = await client.getManifest("check/image", image.digest);
    const layer = manifestChildren(manifest).find((c) => c.role === "layer")!.descriptor.digest;
    const deletedFrom = Date.now();
    expect(await client.deleteBlob("check/image", layer)).toBe(true);
    const indexManifest = await client.getManifest("check/index", index.digest);
    const child = manifestChildren(indexManifest).find((c) => c.kind === "manifest")!.descriptor.digest;
    expect(await client.deleteManifest("check/index", child)).toBe(true);
    await sleep(500);
    const summary = await checker.stop();

    expect(summary.rounds).toBeGreaterThan(3);
    expect(summary.errors).toBe(0);
    const seen = new Set(summary.violations.map((v) => `${v.repository}:${v.tag}`));
    expect([...seen].sort()).toEqual(["check/image:v1", "check/index:v1"]);
    expect(summary.violations.some((v) => v.problem.includes(`layer blob ${layer} missing`))).toBe(true);
    expect(summary.violations.some((v) => v.problem.includes(`${child}: manifest unknown`))).toBe(true);
    // Before the deletions, the rounds saw nothing.
    expect(Math.min(...summary.violations.map((v) => Date.parse(v.at)))).toBeGreaterThanOrEqual(deletedFrom);
    expect(await missingContent(client, "other/untouched", "v1")).toEqual([]);
  });

  it("a listed tag without its current pointer counts only when it stays so: Distribution writes a tag's index link first", async () => {
    await pushImage(client, "tagwrite/brief", "v1");
    await pushImage(client, "tagwrite/stuck", "v1");
    const current = (repository: string) => join(registry.storageDir, "docker/registry/v2/repositories", repository, "_manifests/tags/v1/current/link");
    const checker = startChecker({ secondary: client, prefixes: ["tagwrite/"], intervalMs: 50 });
    await sleep(200);
    // The moment between Distribution's two writes of a tag, stretched to 300 ms; and a tag left so.
    const brief = await readFile(current("tagwrite/brief"));
    await rm(current("tagwrite/brief"));
    await rm(current("tagwrite/stuck"));
    expect(await client.listTags("tagwrite/brief")).toContain("v1");
    await sleep(300);
    await writeFile(current("tagwrite/brief"), brief);
    await sleep(1_500);
    const summary = await checker.stop();
    expect(summary.errors).toBe(0);
    expect(summary.violations.map((v) => `${v.repository}:${v.tag} ${v.problem}`)).toContain("tagwrite/stuck:v1 tagwrite/stuck@v1: manifest unknown");
    expect(summary.violations.filter((v) => v.repository === "tagwrite/brief")).toEqual([]);
  });
});

/**
 * The built `georep` binary against the real local stack (primary + one
 * secondary, each with its status service): the CLI finds
 * `.georep/stack.json` from a subdirectory, talks to the secondary by
 * default and to the primary for `status`, and exits with the documented
 * codes. Content is pushed to the primary's registry as a client would.
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRegistryClient } from "@georep/registry-client";
import type { RegistryClient } from "@georep/registry-client";
import { startStack, stopStack } from "@georep/stack";
import type { StackDescription } from "@georep/stack";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const main = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

let dir: string;
let cwd: string;
let stack: StackDescription;
let primary: RegistryClient;

/** The CLI's environment: no colours, and no admin token unless a test passes one. */
const baseEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
  delete env.GEOREP_ADMIN_TOKEN;
  return env;
};

/** Runs `georep ARGS` as a child process in a subdirectory of the stack's checkout. */
async function georep(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [main, ...args], { cwd, env: { ...baseEnv(), ...options.env }, timeout: 120_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** `georep ARGS --json`, expecting exit 0, parsed. */
async function georepJson<T>(args: string[]): Promise<T> {
  const result = await georep([...args, "--json"]);
  expect(result.code, `georep ${args.join(" ")}: ${result.stderr}`).toBe(0);
  return JSON.parse(result.stdout) as T;
}

/** Polls `probe` until it returns true (or gives up after `timeoutMs`). */
async function eventually(what: string, probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function pushImage(repository: string, tag: string): Promise<string> {
  const blob = async (bytes: Buffer) => {
    const d = { digest: sha256(bytes), size: bytes.length };
    await primary.uploadBlob(repository, d, bytes);
    return d;
  };
  const config = await blob(Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", salt: randomBytes(8).toString("hex") })));
  const layer = await blob(randomBytes(4096));
  const raw = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }],
    }),
  );
  await primary.putManifest(repository, tag, { raw, mediaType: OCI_MANIFEST });
  return sha256(raw);
}

interface Summary {
  site: string;
  role: string;
  paused: boolean;
  counts: Record<string, number>;
}
interface SitesView {
  items: { site: string; health: string; report: { paused?: boolean } }[];
}
interface Page {
  items: { repository: string; state: string }[];
  next_cursor: string | null;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "georep-cli-stack-"));
  // The CLI looks for .georep/stack.json from its working directory upwards, as in a checkout.
  ({ stack } = await startStack({
    stateDir: join(dir, ".georep"),
    secondaries: 1,
    persistent: false,
    serviceEnv: { STATUS_REPORT_INTERVAL_MS: "500", DISPATCHER_BACKFILL_INTERVAL_MS: "3000" },
  }));
  cwd = join(dir, "work", "deeper");
  await mkdir(cwd, { recursive: true });
  primary = createRegistryClient({ url: stack.sites[0]!.registry, credentials: { type: "basic", ...stack.credentials } });
}, 180_000);

afterAll(async () => {
  if (dir !== undefined) {
    await stopStack(join(dir, ".georep"));
    await rm(dir, { recursive: true, force: true });
  }
});

describe("georep against the local stack", () => {
  let digest: string;

  it("stack.json names every site's status service", () => {
    for (const site of stack.sites) expect(site.status, site.name).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it("wait: exit 0 once a pushed tag is replicated, by tag and by digest", async () => {
    digest = await pushImage("cli/app", "v1");
    await pushImage("cli/other", "v1");
    const byTag = await georep(["wait", "cli/app:v1", "--timeout", "60"]);
    expect(byTag.code, byTag.stderr).toBe(0);
    expect(byTag.stdout).toMatch(new RegExp(`^cli/app:v1 is replicated on secondary-1 \\(http://127\\.0\\.0\\.1:\\d+\\) as ${digest} \\(waited `));
    const byDigest = await georepJson<{ repository: string; digest: string; tag: string | null }>(["wait", `cli/app@${digest}`, "--timeout", "10"]);
    expect(byDigest).toMatchObject({ repository: "cli/app", digest });
    expect((await georep(["wait", "cli/other:v1", "--timeout", "60"])).code).toBe(0);
  });

  it("wait: exit 2 at the timeout for a tag never pushed", async () => {
    const started = Date.now();
    const { code, stderr } = await georep(["wait", "cli/app:never-pushed", "--timeout", "1"]);
    expect(code, stderr).toBe(2);
    expect(stderr).toContain("[timeout, HTTP 408]");
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it("repos: lists every repository, filters by state and name, and stops at --limit", async () => {
    await eventually("both repositories synced", async () => {
      const page = await georepJson<Page>(["repos"]);
      return ["cli/app", "cli/other"].every((name) => page.items.some((r) => r.repository === name && r.state === "synced"));
    });
    const all = await georep(["repos"]);
    expect(all.code).toBe(0);
    expect(all.stdout.split("\n")[0]).toMatch(/^REPOSITORY +STATE +RETRIES +LAST SYNCED +COPIED +LAST FAILURE$/);
    expect(all.stdout).toMatch(/^cli\/app +synced +0 /m);
    expect(all.stdout).toMatch(/^cli\/other +synced +0 /m);
    expect(all.stdout).toContain("2 repositories\n");

    expect((await georepJson<Page>(["repos", "--state", "failed"])).items).toEqual([]);
    expect((await georepJson<Page>(["repos", "--name", "other"])).items.map((r) => r.repository)).toEqual(["cli/other"]);
    const limited = await georepJson<Page>(["repos", "--limit", "1"]);
    expect(limited.items.map((r) => r.repository)).toEqual(["cli/app"]);
    expect(limited.next_cursor).not.toBeNull();
    expect((await georep(["repos", "--limit", "1"])).stdout).toContain("1 repository (more exist; raise --limit)");
  });

  it("repo: the row, the tags on both sides and the recent syncs; 404 for an unknown repository", async () => {
    const { code, stdout, stderr } = await georep(["repo", "cli/app"]);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/^repository +cli\/app$/m);
    expect(stdout).toMatch(/^state +synced$/m);
    expect(stdout).toMatch(new RegExp(`^v1 +${digest.slice(0, 19)} +${digest.slice(0, 19)} +ok$`, "m"));
    expect(stdout).toContain("1 tags, no drift");
    expect(stdout).toMatch(/^STARTED +OUTCOME +REASON/m);
    expect(stdout).toMatch(/ synced +(event|backfill|retry|resync) /);

    const detail = await georepJson<{ tags: { tag: string; primary_digest: string; secondary_digest: string; in_sync: boolean }[] }>(["repo", "cli/app"]);
    expect(detail.tags).toEqual([{ tag: "v1", primary_digest: digest, secondary_digest: digest, in_sync: true }]);

    const unknown = await georep(["repo", "cli/nothing-here"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^georep: .*\[not_found, HTTP 404\]$/m);
  });

  it("status: the primary's summary and every site in the sites view", async () => {
    await eventually("both sites in the sites view", async () => {
      const { sites } = await georepJson<{ site: Summary; sites: SitesView }>(["status"]);
      return sites.items.map((s) => s.site).join(",") === "primary,secondary-1";
    });
    const { code, stdout } = await georep(["status"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^site +primary \(primary\)$/m);
    expect(stdout).toMatch(/^events +\d+ recorded/m);
    expect(stdout).toMatch(/^SITE +ROLE +HEALTH +PAUSED +PENDING +STARTED +SYNCED +FAILED +LAG P50 +LAG P99 +COPIED +LAST SEEN$/m);
    expect(stdout).toMatch(/^primary +primary +ok +no /m);
    expect(stdout).toMatch(/^secondary-1 +secondary +ok +no +\d+ +\d+ +\d+ +0 /m);

    const secondary = await georepJson<{ site: Summary }>(["status", "--site", "secondary-1"]);
    expect(secondary.site).toMatchObject({ site: "secondary-1", role: "secondary", paused: false });
    expect(secondary.site.counts.synced).toBeGreaterThanOrEqual(2);
  });

  it("a secondary-only command on the primary prints the service's wrong_role error", async () => {
    const { code, stderr } = await georep(["repos", "--site", "primary"]);
    expect(code).toBe(1);
    expect(stderr).toContain("[wrong_role, HTTP 409]");
  });

  it("verify: no drift → exit 0, for one repository and for all", async () => {
    const one = await georep(["verify", "cli/app"]);
    expect(one.code, one.stdout + one.stderr).toBe(0);
    expect(one.stdout).toBe("verified 1 repository: no drift\n");
    const all = await georep(["verify"]);
    expect(all.code, all.stdout + all.stderr).toBe(0);
    expect(all.stdout).toBe("verified 2 repositories: no drift\n");
    // stderr is not a terminal here: a plain progress line, no bar
    expect(all.stderr).toBe("verify: 2/2 (100%)\n");
  });

  it("pause: a tag pushed meanwhile is drift (verify exit 1) until resume replicates it", async () => {
    const paused = await georep(["pause"]);
    expect(paused.code, paused.stderr).toBe(0);
    expect(paused.stdout).toMatch(/^replication paused on secondary-1 /);
    expect((await georepJson<{ site: Summary }>(["status", "--site", "secondary-1"])).site.paused).toBe(true);
    await eventually("the primary's sites view to show the pause", async () => {
      const { sites } = await georepJson<{ sites: SitesView }>(["status"]);
      return sites.items.find((s) => s.site === "secondary-1")?.report.paused === true;
    });
    expect((await georep(["status"])).stdout).toMatch(/^secondary-1 +secondary +\w+ +yes /m);

    const v2 = await pushImage("cli/app", "v2");
    // Paused: nothing copies v2, however long we look.
    await new Promise((r) => setTimeout(r, 2000));
    const drift = await georep(["verify", "cli/app"]);
    expect(drift.code).toBe(1);
    expect(drift.stdout).toMatch(new RegExp(`^cli/app +v2 +${v2.slice(0, 19)} +-$`, "m"));
    expect(drift.stdout).toContain("verified 1 repository: 1 with drift (1 tag)");
    const report = await georep(["verify", "--json"]);
    expect(report.code).toBe(1);
    expect(JSON.parse(report.stdout)).toMatchObject({ checked: 2, ok: false, drifted: [{ repository: "cli/app", tags: [{ tag: "v2", primary_digest: v2, secondary_digest: null, in_sync: false }] }] });
    expect((await georep(["repo", "cli/app"])).stdout).toMatch(/^v2 +sha256:\w{12} +- +DRIFT$/m);

    const resumed = await georep(["resume"]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/^replication running on secondary-1 /);
    expect((await georep(["wait", "cli/app:v2", "--timeout", "60"])).code).toBe(0);
    const clean = await georep(["verify"]);
    expect(clean.code, clean.stdout).toBe(0);
  });

  it("resync: one repository, all, failed", async () => {
    const one = await georep(["resync", "cli/app"]);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(/^resync of cli\/app accepted on secondary-1 \(http:\/\/127\.0\.0\.1:\d+\): 1 repository queued\n$/);
    const all = await georepJson<{ accepted: number }>(["resync", "--all"]);
    expect(all.accepted).toBe(2);
    const failed = await georep(["resync", "--failed"]);
    expect(failed.code, failed.stderr).toBe(0);
    expect(failed.stdout).toContain("resync of the failed repositories accepted on secondary-1");
    // the resynced repositories come back to synced, still without drift
    await eventually("the resyncs to finish", async () => (await georepJson<Page>(["repos"])).items.every((r) => r.state === "synced"));
    expect((await georep(["verify"])).code).toBe(0);
  });

  it("exit 5 when the admin token is wrong or missing, naming which", async () => {
    const wrong = await georep(["pause", "--token", "not-the-token"]);
    expect(wrong.code).toBe(5);
    expect(wrong.stderr).toMatch(/authentication refused by http:\/\/127\.0\.0\.1:\d+\/api\/v1\/pause: the admin token from --token is wrong/);
    const fromEnv = await georep(["resync", "--all"], { env: { GEOREP_ADMIN_TOKEN: "also-wrong" } });
    expect(fromEnv.code).toBe(5);
    expect(fromEnv.stderr).toContain("the admin token from GEOREP_ADMIN_TOKEN is wrong");
    // --url: stack.json's token is not used, so none is sent
    const missing = await georep(["pause", "--url", stack.sites[1]?.status ?? ""]);
    expect(missing.code).toBe(5);
    expect(missing.stderr).toContain("the admin token is missing");
    expect(missing.stderr).toContain("hint: pass --token TOKEN or set GEOREP_ADMIN_TOKEN");
    expect((await georepJson<{ site: Summary }>(["status", "--site", "secondary-1"])).site.paused).toBe(false);
  });

  it("exit 4 when the status service is unreachable, naming the URL", async () => {
    const server = createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    server.close();
    await once(server, "close");
    const { code, stderr } = await georep(["status", "--url", `http://127.0.0.1:${port}`]);
    expect(code).toBe(4);
    expect(stderr).toContain(`status service unreachable at http://127.0.0.1:${port}: connection refused`);
  });
});

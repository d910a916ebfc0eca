/**
 * The status dashboard (services/status/public) in a real headless Chromium,
 * against the local stack: real registries, NATS, Postgres and every georep
 * service, the status service at each site serving the page and its API.
 * Images are pushed to the primary; the secondary's page must show what its
 * API says, send resyncs with the admin token, show hostile repository names
 * and errors as text, and the primary's page must list the secondary.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { chromium } from "playwright-core";
import type { Browser, BrowserContext, Locator, Page } from "playwright-core";
import { createRegistryClient } from "@georep/registry-client";
import type { RegistryClient } from "@georep/registry-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, stopStack } from "../src/index.js";
import type { StackDescription, StackSite } from "../src/index.js";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = fileURLToPath(new URL("../test-artifacts/", import.meta.url));
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** The page's localStorage key for the admin token (services/status/public/app.js). */
const TOKEN_STORAGE_KEY = "georep.status.admin-token";
/** A tracking row no registry would accept, and an error message that is markup: both must be shown as text. */
const XSS_REPOSITORY = '<img src=x onerror="window.__xss=1">';
const XSS_FAILURE = "<script>window.__xss=2</script>";
const IMAGES = ["dash/app", "dash/tools"] as const;

const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

let dir: string | undefined;
let stack: StackDescription;
let primarySite: StackSite;
let secondarySite: StackSite;
let primary: RegistryClient;
let secondary: RegistryClient;
let db: pg.Pool | undefined;
let browser: Browser | undefined;
const pushed = new Map<string, string>();

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is missing (${CHROMIUM}): run scripts/setup.sh, which installs it`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
  await mkdir(ARTIFACTS, { recursive: true });

  dir = await mkdtemp(join(tmpdir(), "georep-dashboard-"));
  ({ stack } = await startStack({ stateDir: dir, secondaries: 1, persistent: false, serviceEnv: { LOG_LEVEL: "info" } }));
  primarySite = stack.sites.find((s) => s.role === "primary")!;
  secondarySite = stack.sites.find((s) => s.role === "secondary")!;
  for (const site of stack.sites) {
    if (typeof site.status !== "string") throw new Error(`stack.json has no status URL for ${site.name}: packages/stack/src/stack.ts does not start the status service`);
  }
  const credentials = { type: "basic" as const, ...stack.credentials };
  primary = createRegistryClient({ url: primarySite.registry, credentials });
  secondary = createRegistryClient({ url: secondarySite.registry, credentials });
  db = new pg.Pool({ connectionString: secondarySite.database, max: 2 });

  for (const repository of IMAGES) pushed.set(repository, await pushImage(repository, "v1"));
  await waitUntil("the pushed images are replicated and tracked as synced", 90_000, async () => {
    for (const [repository, digest] of pushed) {
      const head = await secondary.headManifest(repository, "v1").catch(() => undefined);
      if (head?.digest !== digest) return false;
    }
    const rows = await db!.query<{ n: string }>("select count(*) as n from repository_sync where repository = any($1) and state = 'synced'", [[...IMAGES]]);
    return Number(rows.rows[0]!.n) === IMAGES.length;
  });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await db?.end();
  if (dir !== undefined) {
    await stopStack(dir);
    await rm(dir, { recursive: true, force: true });
  }
});

async function pushBlob(repository: string, bytes: Buffer): Promise<{ digest: string; size: number }> {
  const d = { digest: sha256(bytes), size: bytes.length };
  await primary.uploadBlob(repository, d, bytes);
  return d;
}

/** Pushes a small OCI image under `tag`; returns its manifest digest. */
async function pushImage(repository: string, tag: string): Promise<string> {
  const config = await pushBlob(repository, Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", salt: randomBytes(8).toString("hex") })));
  const layer = await pushBlob(repository, randomBytes(16 * 1024));
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

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

interface SiteSummary {
  site: string;
  role: string;
  paused: boolean;
  counts: { pending: number; started: number; synced: number; failed: number };
  total: number;
  progress: number;
}

interface SitesAnswer {
  items: { site: string; role: string; health: string; stale: boolean; report: { counts: { failed: number } } }[];
}

/** A number the page shows (grouping separators dropped). */
async function shownNumber(locator: Locator): Promise<number> {
  const text = (await locator.textContent()) ?? "";
  return Number(text.replace(/[^\d]/g, ""));
}

async function trackingRow(repository: string) {
  const r = await db!.query<{ state: string; pending_generation: string; history: string }>(
    "select state, pending_generation, (select count(*) from sync_history h where h.repository = s.repository) as history from repository_sync s where repository = $1",
    [repository],
  );
  const row = r.rows[0];
  if (row === undefined) throw new Error(`no tracking row for ${repository}`);
  return { state: row.state, pendingGeneration: Number(row.pending_generation), history: Number(row.history) };
}

/** A fresh browser context (its own localStorage) and page; errors thrown by the page's script fail the test. */
async function openPage(url: string): Promise<{ context: BrowserContext; page: Page; pageErrors: string[] }> {
  const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await page.goto(url);
  return { context, page, pageErrors };
}

/** The failing-repositories row of `repository`. */
const failedRow = (page: Page, repository: string) => page.getByTestId("failed-row").filter({ has: page.getByRole("link", { name: repository, exact: true }) });

describe("the status dashboard in Chromium on the local stack", () => {
  it("shows the secondary's counts, progress and repositories as its API reports them", async () => {
    const { context, page, pageErrors } = await openPage(`${secondarySite.status}/`);
    try {
      await expect.poll(() => page.getByTestId("site-name").textContent(), { timeout: 15_000 }).toBe(secondarySite.name);
      await expect.poll(() => page.getByTestId("site-role").textContent()).toBe("secondary");

      // The page and the API agree (the page may be one refresh behind, hence the poll on both).
      await expect
        .poll(
          async () => {
            const api = await getJson<SiteSummary>(`${secondarySite.status}/api/v1/site`);
            const shown = {
              pending: await shownNumber(page.getByTestId("count-pending")),
              started: await shownNumber(page.getByTestId("count-started")),
              synced: await shownNumber(page.getByTestId("count-synced")),
              failed: await shownNumber(page.getByTestId("count-failed")),
              total: await shownNumber(page.getByTestId("count-total")),
              progress: await page.getByTestId("progress").getAttribute("aria-valuenow"),
            };
            return { shown, api: { ...api.counts, total: api.total, progress: String(Math.round(api.progress * 1000) / 10) } };
          },
          { timeout: 20_000, interval: 500 },
        )
        .toSatisfy(({ shown, api }) => JSON.stringify(shown) === JSON.stringify(api));
      expect(await shownNumber(page.getByTestId("count-synced"))).toBeGreaterThanOrEqual(IMAGES.length);
      expect(await page.getByTestId("progress-percent").textContent()).toMatch(/^\d+(\.\d)? %$/);
      expect(await page.getByTestId("paused-badge").isVisible()).toBe(false);

      for (const repository of IMAGES) {
        const row = page.getByTestId("repo-row").filter({ has: page.getByRole("link", { name: repository, exact: true }) });
        await expect.poll(() => row.getAttribute("data-state")).toBe("synced");
      }
      // The name filter narrows the table through the API's `name` query.
      await page.getByTestId("repo-filter").fill("dash/too");
      await expect.poll(async () => page.getByTestId("repo-row").allTextContents(), { timeout: 10_000 }).toEqual([expect.stringContaining("dash/tools")]);

      // The detail view: both sides' tags, in sync.
      await page.getByRole("link", { name: "dash/tools", exact: true }).click();
      await expect.poll(() => page.getByTestId("detail-name").textContent()).toBe("dash/tools");
      const tag = page.locator('[data-testid="tag-row"][data-tag="v1"]');
      await expect.poll(() => tag.getAttribute("data-in-sync"), { timeout: 10_000 }).toBe("true");
      expect(await tag.locator("code").nth(1).getAttribute("title")).toBe(pushed.get("dash/tools"));
      expect(await tag.locator("code").nth(2).getAttribute("title")).toBe(pushed.get("dash/tools"));
      expect(pageErrors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 90_000);

  it("shows a hostile repository name and error message literally, never as markup", async () => {
    // missing_on_primary and a far retry_at keep the dispatcher's backfill and retries away from the row.
    await db!.query(
      `insert into repository_sync (repository, state, last_sync_failure, retry_count, retry_at, missing_on_primary, pending_generation, synced_generation, dispatched_generation)
       values ($1, 'failed', $2, 1, now() + interval '1 day', true, 1, 0, 1)`,
      [XSS_REPOSITORY, XSS_FAILURE],
    );
    const { context, page, pageErrors } = await openPage(`${secondarySite.status}/`);
    try {
      const row = failedRow(page, XSS_REPOSITORY);
      await expect.poll(() => row.count(), { timeout: 15_000 }).toBe(1);
      expect(await row.getAttribute("data-repository")).toBe(XSS_REPOSITORY);
      expect(await row.getByTestId("failed-error").textContent()).toBe(XSS_FAILURE);
      const listed = page.getByTestId("repo-row").filter({ has: page.getByRole("link", { name: XSS_REPOSITORY, exact: true }) });
      await expect.poll(() => listed.count()).toBe(1);
      expect(await page.locator("main img").count()).toBe(0);
      expect(await page.locator("main script").count()).toBe(0);

      // The detail route carries the name percent-encoded and shows it as text too; the API refuses a
      // name outside the OCI grammar (400 invalid_request), and the page shows that answer.
      await row.getByRole("link", { name: XSS_REPOSITORY, exact: true }).click();
      await expect.poll(() => page.getByTestId("detail-name").textContent()).toBe(XSS_REPOSITORY);
      await expect.poll(() => page.getByTestId("detail-error").textContent(), { timeout: 10_000 }).toContain("invalid_request");
      expect(await page.locator("main img").count()).toBe(0);

      await page.waitForTimeout(500); // an injected onerror would have run by now
      expect(await page.evaluate("typeof window.__xss")).toBe("undefined");
      expect(pageErrors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);

  it("sends a failing repository's resync with the admin token from the token field, and refuses without it", async () => {
    const repository = "dash/tools";
    // A real row made to fail: the dispatcher will not retry it on its own before the test asks.
    const failed = await db!.query(
      "update repository_sync set state = 'failed', retry_count = 1, retry_at = now() + interval '1 day', last_sync_failure = 'made to fail by the dashboard test' where repository = $1 and state = 'synced'",
      [repository],
    );
    expect(failed.rowCount).toBe(1);
    const before = await trackingRow(repository);

    const { context, page, pageErrors } = await openPage(`${secondarySite.status}/`);
    try {
      const row = failedRow(page, repository);
      await expect.poll(() => row.count(), { timeout: 15_000 }).toBe(1);
      expect(await row.getByTestId("failed-error").textContent()).toBe("made to fail by the dashboard test");
      await expect.poll(async () => shownNumber(page.getByTestId("count-failed"))).toBeGreaterThanOrEqual(2);

      // No token, then a wrong one: the API's refusal is shown and nothing changes.
      const message = page.getByTestId("action-message");
      await row.getByTestId("resync-button").click();
      await expect.poll(() => message.textContent()).toContain("admin token missing/wrong");
      expect(await message.textContent()).toContain("unauthorized");
      await page.getByTestId("admin-token").fill("not-the-admin-token");
      await row.getByTestId("resync-button").click();
      await expect.poll(() => message.textContent()).toContain("forbidden");
      expect((await trackingRow(repository)).pendingGeneration).toBe(before.pendingGeneration);

      await page.getByTestId("admin-token").fill(stack.admin_token);
      await row.getByTestId("resync-button").click();
      await expect.poll(() => message.textContent(), { timeout: 10_000 }).toBe(`Resync of ${repository} requested.`);
      expect(await page.evaluate(`localStorage.getItem(${JSON.stringify(TOKEN_STORAGE_KEY)})`)).toBe(stack.admin_token);
      await page.screenshot({ path: join(ARTIFACTS, "dashboard.png"), fullPage: true });

      // The dispatcher took it: a new generation, then a sync that lands in the history and leaves the row synced.
      await expect.poll(async () => (await trackingRow(repository)).pendingGeneration, { timeout: 15_000 }).toBeGreaterThan(before.pendingGeneration);
      await expect
        .poll(async () => trackingRow(repository), { timeout: 60_000, interval: 500 })
        .toSatisfy((now: Awaited<ReturnType<typeof trackingRow>>) => now.state === "synced" && now.history > before.history);
      // ...and the page, refreshing by itself, drops it from the failing repositories.
      await expect.poll(() => row.count(), { timeout: 15_000 }).toBe(0);
      expect(pageErrors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 120_000);

  it("pauses and resumes the secondary from its header", async () => {
    const { context, page, pageErrors } = await openPage(`${secondarySite.status}/`);
    try {
      await page.getByTestId("admin-token").fill(stack.admin_token);
      const badge = page.getByTestId("paused-badge");
      await page.getByTestId("pause-button").click();
      await expect.poll(() => badge.isVisible(), { timeout: 10_000 }).toBe(true);
      expect((await getJson<SiteSummary>(`${secondarySite.status}/api/v1/site`)).paused).toBe(true);
      await page.getByTestId("resume-button").click();
      await expect.poll(() => badge.isVisible(), { timeout: 10_000 }).toBe(false);
      expect((await getJson<SiteSummary>(`${secondarySite.status}/api/v1/site`)).paused).toBe(false);
      expect(pageErrors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);

  it("lists the secondary on the primary's sites view with the health the API reports", async () => {
    const { context, page, pageErrors } = await openPage(`${primarySite.status}/`);
    try {
      await expect.poll(() => page.getByTestId("site-role").textContent(), { timeout: 15_000 }).toBe("primary");
      const row = page.locator(`[data-testid="site-row"][data-site="${secondarySite.name}"]`);
      await expect.poll(() => row.count(), { timeout: 20_000 }).toBe(1);
      // The hostile row of the previous test is still failing there.
      await expect
        .poll(
          async () => {
            const api = await getJson<SitesAnswer>(`${primarySite.status}/api/v1/sites`);
            const item = api.items.find((i) => i.site === secondarySite.name);
            return { shown: await row.getAttribute("data-health"), api: item?.health, failed: item?.report.counts.failed };
          },
          { timeout: 30_000, interval: 500 },
        )
        .toSatisfy(({ shown, api, failed }) => shown === api && api === "failing" && failed !== undefined && failed >= 1);
      expect(await row.getByTestId("site-health").textContent()).toBe("failing");
      expect(await shownNumber(row.getByTestId("site-failed"))).toBeGreaterThanOrEqual(1);
      expect(await row.getByTestId("site-progress").getAttribute("role")).toBe("progressbar");
      expect(await page.getByTestId("count-synced").count()).toBe(0); // no replication counts of its own on the primary
      await page.screenshot({ path: join(ARTIFACTS, "dashboard-primary.png"), fullPage: true });

      // The row's "Resync failed" goes through the primary's API, over NATS, to the secondary's dispatcher.
      const before = await trackingRow(XSS_REPOSITORY);
      await page.getByTestId("admin-token").fill(stack.admin_token);
      await row.getByTestId("site-resync-failed").click();
      await expect.poll(() => page.getByTestId("action-message").textContent(), { timeout: 10_000 }).toBe(`${secondarySite.name}: 1 failed repository will be synced again.`);
      expect((await trackingRow(XSS_REPOSITORY)).pendingGeneration).toBeGreaterThan(before.pendingGeneration);
      expect(pageErrors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});

/**
 * Security, last, on the stack every other suite used: admin endpoints
 * refuse without the token and with a wrong one; a pull-only token cannot
 * push (minted directly, through the token endpoint for a pull-only user,
 * and as the secondaries use the primary); the dashboard shows a hostile
 * tag, failure and sync error as text; NATS refuses clients without a
 * site's credentials; and no log of the suite holds a secret.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import fastify from "fastify";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTokenIssuer, hashPassword, loadSigningKey, tokenEndpoint } from "@georep/jwt";
import type { UsersFile } from "@georep/jwt";
import { rawRequest } from "../support/http.js";
import { pushImage, tagsOf } from "../support/registry.js";
import type { HostileStack } from "../support/stack.js";
import { ARTIFACTS } from "../support/stack.js";

const CHROMIUM = "/usr/bin/chromium";

/** The `access` claim of a JWT (no signature check: the registry does that). */
function accessOf(token: string): { type: string; name: string; actions: string[] }[] {
  const payload = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")) as { access: { type: string; name: string; actions: string[] }[] };
  return payload.access;
}

/** What the registry answers to a push attempt with `token`: the blob upload start and a manifest PUT. */
async function pushAttempt(registry: string, repository: string, token: string): Promise<{ upload: number; manifest: number; del: number }> {
  const auth = { authorization: `Bearer ${token}` };
  const upload = await fetch(`${registry}/v2/${repository}/blobs/uploads/`, { method: "POST", headers: auth });
  await upload.body?.cancel();
  const manifest = await fetch(`${registry}/v2/${repository}/manifests/pwned`, {
    method: "PUT",
    headers: { ...auth, "content-type": "application/vnd.oci.image.manifest.v1+json" },
    body: JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: `sha256:${"0".repeat(64)}`, size: 2 }, layers: [] }),
  });
  await manifest.body?.cancel();
  const del = await fetch(`${registry}/v2/${repository}/manifests/sha256:${"0".repeat(64)}`, { method: "DELETE", headers: auth });
  await del.body?.cancel();
  return { upload: upload.status, manifest: manifest.status, del: del.status };
}

/** Every line of `text` that holds one of `secrets`, as "file:line: secret name" (never the value). */
function findSecrets(file: string, text: string, secrets: Readonly<Record<string, readonly string[]>>): string[] {
  const hits: string[] = [];
  const lines = text.split("\n");
  for (const [name, values] of Object.entries(secrets)) {
    for (const value of values) {
      if (value.length < 12) throw new Error(`secret ${name} is too short to grep for`);
      lines.forEach((line, i) => {
        if (line.includes(value)) hits.push(`${file}:${i + 1}: ${name}${line.length < 400 ? ` in: ${line.replaceAll(value, "<SECRET>").slice(0, 300)}` : ""}`);
      });
    }
  }
  return hits;
}

export function securitySuite(get: () => HostileStack): void {
  describe("security", () => {
    const suffix = randomBytes(3).toString("hex");

    it("admin endpoints refuse without the token (401) and with a wrong one (403), and change nothing", async () => {
      const h = get();
      // A repository synced long ago: nothing but a resync would give it a new generation now.
      const settled = await h.secondaryDb.query<{ repository: string }>(
        "select repository from repository_sync where state = 'synced' and pending_generation = synced_generation and repository like 'hostile/content-%' order by updated_at limit 1",
      );
      const repository = settled.rows[0]!.repository;
      const generation = async () =>
        (await h.secondaryDb.query<{ g: string }>("select pending_generation as g from repository_sync where repository = $1", [repository])).rows[0]?.g;
      const before = await generation();

      const secondary = h.secondarySite.status;
      const primary = h.primarySite.status;
      const actions: { origin: string; path: string; body?: string }[] = [
        { origin: secondary, path: "/api/v1/pause" },
        { origin: secondary, path: "/api/v1/resume" },
        { origin: secondary, path: "/api/v1/resync", body: JSON.stringify({ scope: "all" }) },
        { origin: secondary, path: `/api/v1/repositories/${repository}/resync` },
        { origin: primary, path: `/api/v1/sites/${h.secondarySite.name}/resync`, body: JSON.stringify({ scope: "all" }) },
      ];
      const token = h.stack.admin_token;
      const flipped = token.replace(/[a-zA-Z]/, (c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()));
      const refusals: { authorization: string | undefined; status: number; code: string }[] = [
        { authorization: undefined, status: 401, code: "unauthorized" },
        { authorization: "", status: 401, code: "unauthorized" },
        { authorization: `Basic ${Buffer.from(`admin:${token}`).toString("base64")}`, status: 401, code: "unauthorized" },
        { authorization: token, status: 401, code: "unauthorized" },
        { authorization: "Bearer", status: 401, code: "unauthorized" },
        { authorization: "Bearer not-the-admin-token-at-all", status: 403, code: "forbidden" },
        { authorization: `Bearer ${token}x`, status: 403, code: "forbidden" },
        { authorization: `Bearer ${token.slice(0, -1)}`, status: 403, code: "forbidden" },
        { authorization: `Bearer ${flipped}`, status: 403, code: "forbidden" },
        { authorization: `Bearer ${token} ${token}`, status: 401, code: "unauthorized" },
      ];
      const wrong: string[] = [];
      for (const action of actions) {
        for (const refusal of refusals) {
          const headers: Record<string, string> = {};
          if (refusal.authorization !== undefined) headers.authorization = refusal.authorization;
          if (action.body !== undefined) headers["content-type"] = "application/json";
          const res = await rawRequest(action.origin, { method: "POST", path: action.path, headers, ...(action.body === undefined ? {} : { body: action.body }) });
          const code = (res.json as { code?: unknown } | undefined)?.code;
          if (res.status !== refusal.status || code !== refusal.code) wrong.push(`${action.path} with ${refusal.authorization === undefined ? "no header" : JSON.stringify(refusal.authorization.replaceAll(token, "<token>"))}: ${res.status} ${String(code)}`);
        }
        // A token in the query string is no token (the real one is not sent that way: request lines are logged).
        const query = await rawRequest(action.origin, { method: "POST", path: `${action.path}?token=not-the-admin-token&access_token=not-the-admin-token` });
        if (query.status !== 401) wrong.push(`${action.path} with a token in the query: ${query.status}`);
      }
      expect(wrong).toEqual([]);
      const site = (await (await fetch(`${secondary}/api/v1/site`)).json()) as { paused: boolean };
      expect(site.paused, "a refused pause paused nothing").toBe(false);
      expect(await generation(), "a refused resync asked for no new generation").toBe(before);
    });

    it("a pull-only token cannot push: minted with the shared key, issued by the token endpoint to a pull-only user, and as the secondaries read the primary", async () => {
      const h = get();
      const registry = h.primarySite.registry;
      const audience = h.primarySite.registry_service;
      const repository = `hostile/pull-only-${suffix}`;
      await pushImage(h.primary, repository, "v1");
      const key = await loadSigningKey({ keyPath: h.stack.signing.key_file, certificatePath: h.stack.signing.certificate_file });
      const issuer = createTokenIssuer({ issuer: h.stack.signing.issuer, key });

      // 1. A token that grants pull only: reading works, writing is refused by the registry.
      const pullOnly = (await issuer.issue({ subject: "hostile-pull-only", audience, access: [{ type: "repository", name: repository, actions: ["pull"] }] })).token;
      const read = await fetch(`${registry}/v2/${repository}/tags/list`, { headers: { authorization: `Bearer ${pullOnly}` } });
      expect(read.status, "pull works with it").toBe(200);
      await read.body?.cancel();
      expect(await pushAttempt(registry, repository, pullOnly)).toEqual({ upload: 401, manifest: 401, del: 401 });
      // The same key with push granted does push (so the refusals above are about the scope, not the token).
      const pusher = (await issuer.issue({ subject: "hostile-pusher", audience, access: [{ type: "repository", name: repository, actions: ["pull", "push"] }] })).token;
      const upload = await fetch(`${registry}/v2/${repository}/blobs/uploads/`, { method: "POST", headers: { authorization: `Bearer ${pusher}` } });
      expect(upload.status).toBe(202);
      await upload.body?.cancel();

      // 2. The token endpoint (@georep/jwt) for a user whose rules allow pull only: asked for pull and push, it grants pull.
      const password = randomBytes(18).toString("base64url");
      const users: UsersFile = { users: [{ username: "reader", password_hash: await hashPassword(password, { rounds: 4 }), access: [{ repositories: "**", actions: ["pull"] }] }] };
      const endpoint = fastify();
      await endpoint.register(tokenEndpoint, { issuer, services: audience, users });
      try {
        const res = await endpoint.inject({
          method: "GET",
          url: `/token?service=${encodeURIComponent(audience)}&scope=${encodeURIComponent(`repository:${repository}:pull,push,delete`)}`,
          headers: { authorization: `Basic ${Buffer.from(`reader:${password}`).toString("base64")}` },
        });
        expect(res.statusCode).toBe(200);
        const issued = res.json<{ token: string }>().token;
        expect(accessOf(issued)).toEqual([{ type: "repository", name: repository, actions: ["pull"] }]);
        expect(await pushAttempt(registry, repository, issued)).toEqual({ upload: 401, manifest: 401, del: 401 });
      } finally {
        await endpoint.close();
      }
      expect(await tagsOf(h.primary, repository)).toEqual(["v1"]);

      // 3. What the secondary's services did on the primary during the whole suite, as its registry logged it: reads only.
      const log = await readFile(join(h.stack.logs_dir, `${h.primarySite.name}-registry.log`), "utf8");
      const methods = new Set<string>();
      let requests = 0;
      for (const line of log.split("\n")) {
        if (!line.includes(`auth.user.name=${h.secondarySite.name} `)) continue;
        const method = /http\.request\.method=(\S+)/.exec(line)?.[1];
        if (method === undefined) continue;
        requests++;
        methods.add(method);
      }
      expect(requests, "the secondary read the primary").toBeGreaterThan(10);
      expect([...methods].sort()).toEqual(expect.arrayContaining(["GET"]));
      expect([...methods].filter((m) => m !== "GET" && m !== "HEAD"), "methods the secondary's tokens were used for on the primary").toEqual([]);
    });

    it("each site's NATS refuses a client without credentials or with a wrong password", async () => {
      const h = get();
      for (const site of h.stack.sites) {
        for (const auth of [{}, { user: "ingest", pass: "wrong" }, { user: "operator", pass: `${site.nats_users.operator}x` }]) {
          const refused = await connect({ servers: site.nats, name: "hostile-intruder", reconnect: false, ...auth }).then(
            async (nc) => {
              await nc.close();
              return undefined;
            },
            (error: unknown) => error,
          );
          expect(String(refused)).toMatch(/authorization violation/i);
        }
        // the site's own users do get in
        const nc = await connect({ servers: site.nats, name: "hostile-operator", user: "operator", pass: site.nats_users.operator });
        await nc.close();
      }
      h.report.push(`security: NATS refused anonymous and wrong-password clients at ${h.stack.sites.length} sites`);
    });

    it("a service's NATS user may do only its own work: ingest can neither write the geo event log nor delete a stream", async () => {
      const h = get();
      const site = h.primarySite;
      const nc = await connect({ servers: site.nats, name: "hostile-as-ingest", user: "ingest", pass: site.nats_users.ingest! });
      try {
        const forged = await jetstream(nc, { timeout: 2_000 })
          .publish("georep.geo.events.push.forged", JSON.stringify({ forged: true }))
          .then(() => "stored", (e: unknown) => String(e));
        expect(forged).not.toBe("stored");
        const deleted = await nc.request("$JS.API.STREAM.DELETE.GEO_EVENTS", "", { timeout: 2_000 }).then(() => "answered", (e: unknown) => String(e));
        expect(deleted).toMatch(/permission/i);
      } finally {
        await nc.close();
      }
      const stored = await h.jsm.streams.getMessage("GEO_EVENTS", { last_by_subj: "georep.geo.events.push.forged" }).then((m) => m, () => null);
      expect(stored).toBeNull();
      expect((await h.jsm.streams.info("GEO_EVENTS")).config.name).toBe("GEO_EVENTS");
      h.report.push("security: ingest's NATS user could not publish a geo event nor delete GEO_EVENTS");
    });

    it("no service's NATS user may delete or purge a stream, even those that manage their site's streams", async () => {
      const h = get();
      const attempts = [
        { site: h.primarySite, user: "event-log", stream: "GEO_EVENTS" },
        { site: h.secondarySite, user: "dispatcher", stream: "GEO_EVENTS" },
        { site: h.secondarySite, user: "transfer", stream: "TRANSFER_JOBS" },
      ];
      for (const { site, user, stream } of attempts) {
        const nc = await connect({ servers: site.nats, name: `hostile-as-${user}`, user, pass: site.nats_users[user]! });
        try {
          for (const op of ["DELETE", "PURGE"]) {
            const answer = await nc.request(`$JS.API.STREAM.${op}.${stream}`, "", { timeout: 2_000 }).then((m) => m.string(), (e: unknown) => String(e));
            expect(answer, `${user} ${op} ${stream}`).toMatch(/permission/i);
          }
          // what the service does need still works: reading its stream
          const info = JSON.parse((await nc.request(`$JS.API.STREAM.INFO.${stream}`, "", { timeout: 2_000 })).string()) as { config?: { name?: string } };
          expect(info.config?.name).toBe(stream);
        } finally {
          await nc.close();
        }
      }
      expect((await h.jsm.streams.info("GEO_EVENTS")).state.messages).toBeGreaterThan(0);
      h.report.push(`security: ${attempts.length} service users refused stream deletion and purge`);
    });

    describe("the dashboard shows a hostile tag, failure and sync error as text", () => {
      let browser: Awaited<ReturnType<typeof chromium.launch>> | undefined;
      beforeAll(async () => {
        if (!existsSync(CHROMIUM)) throw new Error(`Chromium is missing (${CHROMIUM}): run scripts/setup.sh, which installs it`);
        browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
      });
      afterAll(async () => {
        await browser?.close();
      });

      it("no registry stores a tag that is markup, and the repository detail view shows one from the tracking row literally", async () => {
        const h = get();
        // Distribution refuses a tag outside the grammar ([a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}), so the tag
        // table (both registries' tags) cannot carry markup; the tracking row's unremovable tags, the
        // recorded failure and the sync history are what can, and what this test puts there.
        const repository = `hostile/xss-tag-${suffix}`;
        await pushImage(h.primary, repository, "v1");
        const tokenRes = await fetch(`${h.primarySite.token_realm}?service=${encodeURIComponent(h.primarySite.registry_service)}&scope=${encodeURIComponent(`repository:${repository}:pull,push`)}`, {
          headers: { authorization: `Basic ${Buffer.from(`${h.stack.credentials.username}:${h.stack.credentials.password}`).toString("base64")}` },
        });
        const { token } = (await tokenRes.json()) as { token: string };
        const manifest = await h.primary.getManifest(repository, "v1");
        const hostileTag = await fetch(`${h.primarySite.registry}/v2/${repository}/manifests/${encodeURIComponent("<img src=x onerror=alert(1)>")}`, {
          method: "PUT",
          headers: { authorization: `Bearer ${token}`, "content-type": manifest.mediaType },
          body: manifest.raw,
        });
        await hostileTag.body?.cancel();
        expect(hostileTag.status, "Distribution refuses a tag that is markup").toBeGreaterThanOrEqual(400);
        expect(hostileTag.status).toBeLessThan(500);
        expect(await tagsOf(h.primary, repository)).toEqual(["v1"]);

        const XSS_TAG = '<img src=x onerror="window.__xss=1">';
        const XSS_REASON = "<script>window.__xss=2</script>";
        const XSS_FAILURE = `tag "<svg onload=window.__xss=3>": <b>bold</b>`;
        const XSS_SYNC_ERROR = '<iframe src="javascript:window.__xss=4"></iframe>';
        const row = `hostile/xss-row-${suffix}`;
        // missing_on_primary and a far retry_at keep the dispatcher's backfill and retries away from the row.
        await h.secondaryDb.query(
          `insert into repository_sync (repository, state, last_sync_failure, retry_count, retry_at, missing_on_primary, pending_generation, synced_generation, dispatched_generation, unremovable_tags)
           values ($1, 'failed', $2, 1, now() + interval '1 day', true, 1, 0, 1, $3::jsonb)`,
          [row, XSS_FAILURE, JSON.stringify([{ tag: XSS_TAG, reason: XSS_REASON }])],
        );
        await h.secondaryDb.query(
          "insert into sync_history (repository, generation, outcome, reason, started_at, finished_at, duration_ms, error) values ($1, 1, 'failed', 'event', now() - interval '1 second', now(), 1000, $2)",
          [row, XSS_SYNC_ERROR],
        );
        // The API passes them through as data.
        const detail = (await (await fetch(`${h.secondarySite.status}/api/v1/repositories/${row}`)).json()) as { repository: { unremovable_tags: unknown[]; last_sync_failure: string }; recent_syncs: { error: string }[] };
        expect(detail.repository.unremovable_tags).toEqual([{ tag: XSS_TAG, reason: XSS_REASON }]);
        expect(detail.repository.last_sync_failure).toBe(XSS_FAILURE);
        expect(detail.recent_syncs[0]?.error).toBe(XSS_SYNC_ERROR);

        const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
        try {
          const page = await context.newPage();
          const pageErrors: string[] = [];
          const dialogs: string[] = [];
          page.on("pageerror", (error) => pageErrors.push(error.message));
          page.on("dialog", (dialog) => {
            dialogs.push(dialog.message());
            void dialog.dismiss();
          });
          await page.goto(`${h.secondarySite.status}/#/repo/${row}`);
          await expect.poll(() => page.getByTestId("detail-name").textContent(), { timeout: 15_000 }).toBe(row);
          await expect.poll(() => page.getByTestId("detail-failure").textContent(), { timeout: 15_000 }).toBe(XSS_FAILURE);
          const fields = page.getByTestId("detail-fields");
          expect(await fields.locator("code", { hasText: XSS_TAG }).textContent()).toBe(XSS_TAG);
          expect(await fields.textContent()).toContain(`: ${XSS_REASON}`);
          await expect.poll(() => page.getByTestId("syncs-table").locator("pre").first().textContent(), { timeout: 10_000 }).toBe(XSS_SYNC_ERROR);
          await page.screenshot({ path: join(ARTIFACTS, "dashboard-xss-tag.png"), fullPage: true });
          await page.waitForTimeout(500); // an injected handler would have run by now
          for (const element of ["img", "script", "svg", "iframe", "b"]) expect(await page.locator(`main ${element}`).count(), `a <${element}> in the page`).toBe(0);
          expect(await page.evaluate("typeof window.__xss")).toBe("undefined");
          expect(dialogs).toEqual([]);
          expect(pageErrors).toEqual([]);
        } finally {
          await context.close();
        }
      });
    });

    it("no log of the suite holds a secret: notification secret, admin token, registry password, leafnode password, NATS passwords, private key", async () => {
      const h = get();
      // The suite's own record goes in with the services' logs.
      const reportFile = join(ARTIFACTS, "hostile-report.txt");
      await writeFile(reportFile, `${h.report.join("\n")}\n`);
      const pem = await readFile(h.stack.signing.key_file, "utf8");
      const pemLines = pem.split("\n").filter((l) => l !== "" && !l.startsWith("-----"));
      const leafnodePassword = decodeURIComponent(new URL(h.primarySite.leafnode!).password);
      const secrets: Record<string, string[]> = {
        "the notification secret": [h.stack.notification_secret],
        "the admin token": [h.stack.admin_token],
        "the registry password": [h.stack.credentials.password],
        "the leafnode password": [leafnodePassword],
        "a NATS password": h.stack.sites.flatMap((site) => Object.values(site.nats_users)),
        "the private key": [pemLines.join(""), ...pemLines.filter((l) => l.length >= 16)],
      };
      const files = [...(await readdir(h.stack.logs_dir)).map((f) => join(h.stack.logs_dir, f)), reportFile];
      expect(files.length).toBeGreaterThanOrEqual(12);
      const hits: string[] = [];
      for (const file of files) hits.push(...findSecrets(file.slice(file.lastIndexOf("/") + 1), await readFile(file, "utf8"), secrets));
      expect(hits).toEqual([]);
    });
  });
}

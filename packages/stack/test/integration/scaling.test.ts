/**
 * Horizontal scaling on the local stack: two replicas of every georep
 * service (so every notification reaches two ingests, two event-logs race
 * for the same messages, two dispatchers for the same rows, two transfers
 * for the same jobs). A burst of pushes must replicate completely, with no
 * duplicate `geo_events` row and no repository generation synced twice.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { createRegistryClient } from "@georep/registry-client";
import type { RegistryClient } from "@georep/registry-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, stopStack } from "../../src/index.js";
import type { StackDescription } from "../../src/index.js";

const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const REPOSITORIES = 12;
const TAGS = ["v1", "v2", "latest"];

let dir: string;
let stack: StackDescription;
let primary: RegistryClient;
let secondary: RegistryClient;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "georep-scale-"));
  ({ stack } = await startStack({ stateDir: dir, secondaries: 1, replicas: 2, persistent: false }));
  const credentials = { type: "basic" as const, ...stack.credentials };
  primary = createRegistryClient({ url: stack.sites[0]!.registry, credentials });
  secondary = createRegistryClient({ url: stack.sites[1]!.registry, credentials });
}, 180_000);

afterAll(async () => {
  if (dir !== undefined) {
    await stopStack(dir);
    await rm(dir, { recursive: true, force: true });
  }
});

async function pushImage(repository: string, tags: readonly string[]): Promise<void> {
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", salt: randomBytes(8).toString("hex") }));
  const layer = randomBytes(2048);
  for (const b of [config, layer]) await primary.uploadBlob(repository, { digest: sha256(b), size: b.length }, b);
  const raw = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(layer), size: layer.length }],
    }),
  );
  for (const tag of tags) await primary.putManifest(repository, tag, { raw, mediaType: OCI_MANIFEST });
}

async function tagMap(client: RegistryClient, repository: string): Promise<Record<string, string>> {
  const tags = await client.listTags(repository).catch(() => [] as string[]);
  const out: Record<string, string> = {};
  for (const tag of tags.sort()) {
    const head = await client.headManifest(repository, tag);
    if (head !== undefined) out[tag] = head.digest;
  }
  return out;
}

async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

describe("two replicas of every service", () => {
  it("a burst of pushes replicates completely, each event recorded once and each generation synced once", async () => {
    const site = stack.sites[1]!;
    for (const service of ["dispatcher", "transfer", "status"]) expect(site.replicas?.[service]).toHaveLength(2);
    expect(stack.sites[0]!.replicas?.ingest).toHaveLength(2);
    expect(stack.sites[0]!.replicas?.["event-log"]).toHaveLength(2);

    const repositories = Array.from({ length: REPOSITORIES }, (_, i) => `scale/app-${String(i).padStart(2, "0")}`);
    // the burst: every repository at once, the tags of each one after the other
    await Promise.all(repositories.map((repository) => pushImage(repository, TAGS)));
    // a second round moves every tag (a new generation for each repository)
    await Promise.all(repositories.map((repository) => pushImage(repository, TAGS)));

    // A sync that met the second round's tag moves on every pass fails and retries after its
    // backoff (10 s and more): convergence may take that long on a loaded machine.
    const deadline = Date.now() + 120_000;
    for (const repository of repositories) {
      for (;;) {
        const want = await tagMap(primary, repository);
        const have = await tagMap(secondary, repository);
        if (Object.keys(want).length === TAGS.length && JSON.stringify(have) === JSON.stringify(want)) break;
        if (Date.now() > deadline) throw new Error(`${repository} did not converge: primary ${JSON.stringify(want)}, secondary ${JSON.stringify(have)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }

    // each registry event once in the primary's log, though both ingests got every notification
    const [events] = await query<{ rows: string; distinct_ids: string; pushes: string }>(
      stack.sites[0]!.database,
      `select count(*) as rows, count(distinct registry_event_id) as distinct_ids,
              count(*) filter (where repository like 'scale/%' and tag is not null) as pushes
       from geo_events`,
    );
    expect(Number(events!.rows)).toBe(Number(events!.distinct_ids));
    expect(Number(events!.pushes)).toBe(REPOSITORIES * TAGS.length * 2);

    // Every row ends synced. Tags can converge before the last generation's sync: a sync that
    // already copied the final tags is followed by one for events that arrived meanwhile, and a
    // sync that saw a pushed tag not yet linked on the primary records its outcome, then asks for
    // another sync a second later (two statements): so "all synced" must hold twice, 1.5 s apart.
    for (let seen = 0; ; ) {
      const [rows] = await query<{ n: string }>(site.database, `select count(*) as n from repository_sync where repository like 'scale/%' and state = 'synced' and synced_generation = pending_generation`);
      seen = Number(rows!.n) === REPOSITORIES ? seen + 1 : 0;
      if (seen === 2) break;
      if (seen === 1) {
        await new Promise((r) => setTimeout(r, 1500));
        continue;
      }
      if (Date.now() > deadline) {
        const stuck = await query(site.database, `select repository, state, pending_generation, synced_generation, retry_count, last_sync_failure from repository_sync where repository like 'scale/%' and not (state = 'synced' and synced_generation = pending_generation)`);
        throw new Error(`rows not synced at their last generation: ${JSON.stringify(stuck)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }

    // no repository generation synced twice, though two dispatchers and two transfers raced
    const duplicates = await query(
      site.database,
      `select repository, generation, count(*) from sync_history where outcome = 'synced' group by 1, 2 having count(*) > 1`,
    );
    expect(duplicates).toEqual([]);
    const [synced] = await query<{ n: string }>(site.database, `select count(*) as n from repository_sync where repository like 'scale/%' and state = 'synced'`);
    expect(Number(synced!.n)).toBe(REPOSITORIES);

    // both transfer replicas took jobs from the work queue
    const perReplica = await Promise.all(
      site.replicas!.transfer!.map(async (url) => {
        const text = await (await fetch(`${url}/metrics`)).text();
        return Number(/^georep_transfer_syncs_total\{outcome="synced"\} (\d+)$/m.exec(text)?.[1] ?? 0);
      }),
    );
    expect(perReplica.every((n) => n > 0), `syncs per transfer replica: ${perReplica.join(", ")}`).toBe(true);
  }, 180_000);
});

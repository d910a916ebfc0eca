/**
 * Bad content on the primary. What Distribution 2.8 refuses at push time is
 * asserted refused (nothing to replicate). What it stores, or what is made
 * bad on its disk afterwards (with the secondary paused, so nothing is
 * copied before the damage), must end as a failed sync whose recorded
 * failure names the problem, with nothing of it visible on the secondary,
 * other repositories replicated, and every service healthy.
 */
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { RegistryError } from "@georep/registry-client";
import type { HostileStack } from "../support/stack.js";
import { healthOfAll, waitUntil } from "../support/stack.js";
import { OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, blobDataPath, imageParts, incompleteContent, primaryStorageRoot, pushBlob, pushImage, sha256, tagDigest, tagsOf } from "../support/registry.js";

const MiB = 1024 * 1024;
/** Distribution 2.8's manifest size limit, which georep's client shares (MAX_MANIFEST_BYTES). */
const MANIFEST_LIMIT = 4 * MiB;

interface RepositoryRow {
  repository: { state: string; last_sync_failure: string | null };
  recent_syncs: { outcome: string; error: string | null }[];
}

/** The status API's view of a repository on the secondary, or `undefined` before it is tracked. */
async function trackingRow(h: HostileStack, repository: string): Promise<RepositoryRow | undefined> {
  const res = await fetch(`${h.secondarySite.status}/api/v1/repositories/${repository}`);
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  if (!res.ok) throw new Error(`GET /api/v1/repositories/${repository}: ${res.status} ${await res.text()}`);
  return (await res.json()) as RepositoryRow;
}

/** A manifest of exactly `size` bytes (padded with an annotation) for an existing config blob. */
function manifestOfSize(config: { digest: string; size: number }, size: number): Buffer {
  const base = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, ...config }, layers: [], annotations: { pad: "" } });
  return Buffer.from(base.replace('"pad":""', `"pad":"${"x".repeat(size - base.length)}"`));
}

/** What a refused push answered: `<status> <OCI code>`. */
async function refusal(push: Promise<unknown>): Promise<string> {
  try {
    await push;
    return "accepted";
  } catch (error) {
    if (!(error instanceof RegistryError)) throw error;
    return `${error.status} ${error.ociCode}`;
  }
}

async function admin(h: HostileStack, path: string): Promise<number> {
  const res = await fetch(`${h.secondarySite.status}${path}`, { method: "POST", headers: { authorization: `Bearer ${h.stack.admin_token}` } });
  await res.body?.cancel();
  return res.status;
}

/** A stored-but-bad case: how it is made on the primary, and what the recorded failure must say. */
interface StoredCase {
  readonly name: string;
  readonly what: string;
  /** Makes the bad content; returns the digests the failure must name. */
  readonly make: (h: HostileStack, repository: string, storage: string) => Promise<{ failure: RegExp }>;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

const STORED_CASES: readonly StoredCase[] = [
  {
    name: "corrupt-blob",
    what: "a layer whose bytes on the primary's disk no longer match its digest (one byte flipped, same size)",
    async make(h, repository, storage) {
      const parts = await imageParts(h.primary, repository);
      await h.primary.putManifest(repository, "v1", { raw: parts.raw, mediaType: OCI_MANIFEST });
      const file = blobDataPath(storage, parts.layer.digest);
      const bytes = await readFile(file);
      bytes[0] = bytes[0]! ^ 0xff;
      await writeFile(file, bytes);
      return { failure: new RegExp(`digest mismatch.*expected ${escape(parts.layer.digest)}`) };
    },
  },
  {
    name: "missing-blob",
    what: "a manifest whose layer was deleted from the repository after the push (it references a missing blob)",
    async make(h, repository) {
      const parts = await imageParts(h.primary, repository);
      await h.primary.putManifest(repository, "v1", { raw: parts.raw, mediaType: OCI_MANIFEST });
      expect(await h.primary.deleteBlob(repository, parts.layer.digest)).toBe(true);
      return { failure: new RegExp(`blobs/${escape(parts.layer.digest)} answered 404 BLOB_UNKNOWN`) };
    },
  },
  {
    name: "invalid-json",
    what: "a manifest whose stored bytes became invalid JSON (Distribution then cannot serve it: 500)",
    async make(h, repository, storage) {
      const parts = await imageParts(h.primary, repository);
      await h.primary.putManifest(repository, "v1", { raw: parts.raw, mediaType: OCI_MANIFEST });
      await writeFile(blobDataPath(storage, parts.digest), "{not json at all");
      return { failure: new RegExp(`${escape(repository)}/manifests/v1 answered 500`) };
    },
  },
  {
    name: "tampered-manifest",
    what: "a manifest whose stored bytes are valid JSON but not the bytes of its digest (re-indented)",
    async make(h, repository, storage) {
      const parts = await imageParts(h.primary, repository);
      await h.primary.putManifest(repository, "v1", { raw: parts.raw, mediaType: OCI_MANIFEST });
      await writeFile(blobDataPath(storage, parts.digest), JSON.stringify(JSON.parse(parts.raw.toString("utf8")), null, 2));
      return { failure: new RegExp(`does not match the requested ${escape(parts.digest)}`) };
    },
  },
  {
    name: "oversized-manifest",
    what: "a manifest whose stored bytes grew to 5 MiB on disk (Distribution 2.8 will not read a manifest over 4 MiB: 500, \"storage: read exceeds limit\" in its log)",
    async make(h, repository, storage) {
      const parts = await imageParts(h.primary, repository);
      await h.primary.putManifest(repository, "v1", { raw: parts.raw, mediaType: OCI_MANIFEST });
      await writeFile(blobDataPath(storage, parts.digest), manifestOfSize(parts.config, 5 * MiB));
      return { failure: new RegExp(`${escape(repository)}/manifests/v1 answered 500`) };
    },
  },
  {
    name: "self-referencing-index",
    what: "an index whose stored bytes were rewritten to list its own digest as its child (a cycle)",
    async make(h, repository, storage) {
      const parts = await imageParts(h.primary, repository);
      await h.primary.putManifest(repository, parts.digest, { raw: parts.raw, mediaType: OCI_MANIFEST });
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: parts.digest, size: parts.raw.length }] }));
      const digest = sha256(index);
      await h.primary.putManifest(repository, "v1", { raw: index, mediaType: OCI_INDEX });
      const cycle = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_INDEX, digest, size: index.length }] });
      await writeFile(blobDataPath(storage, digest), cycle);
      return { failure: new RegExp(`does not match the requested ${escape(digest)}`) };
    },
  },
  {
    name: "index-child-is-a-blob",
    what: "an index whose child is a config blob, not a manifest (Distribution 2.8 accepts it)",
    async make(h, repository) {
      const config = await pushBlob(h.primary, repository, Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", salt: randomBytes(8).toString("hex") })));
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, ...config }] }));
      await h.primary.putManifest(repository, "v1", { raw: index, mediaType: OCI_INDEX });
      return { failure: new RegExp(`manifests/${escape(config.digest)} answered 500`) };
    },
  },
  {
    name: "wrong-descriptor-size",
    what: "a manifest whose config descriptor claims 100 bytes more than the blob has (Distribution 2.8 accepts it)",
    async make(h, repository) {
      const config = await pushBlob(h.primary, repository, Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", salt: randomBytes(8).toString("hex") })));
      const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size + 100 }, layers: [] }));
      await h.primary.putManifest(repository, "v1", { raw, mediaType: OCI_MANIFEST });
      return { failure: new RegExp(`size mismatch for ${escape(repository)}@${escape(config.digest)}: expected ${config.size + 100} bytes, got ${config.size}`) };
    },
  },
];

export function contentSuite(get: () => HostileStack): void {
  describe("bad content on the primary", () => {
    const suffix = randomBytes(3).toString("hex");
    const refusedRepositories: string[] = [];

    it("Distribution 2.8 refuses missing blobs and children, invalid JSON and manifests over 4 MiB at push time: nothing to replicate", async () => {
      const h = get();
      const repo = (name: string) => {
        const repository = `hostile/refused-${name}-${suffix}`;
        refusedRepositories.push(repository);
        return repository;
      };
      const missing = { digest: sha256(randomBytes(32)), size: 32 };

      let r = repo("missing-layer");
      let parts = await imageParts(h.primary, r);
      const missingLayer = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, ...parts.config }, layers: [{ mediaType: OCI_LAYER, ...missing }] }));
      expect(await refusal(h.primary.putManifest(r, "v1", { raw: missingLayer, mediaType: OCI_MANIFEST }))).toBe("400 MANIFEST_BLOB_UNKNOWN");

      r = repo("missing-config");
      const missingConfig = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, ...missing }, layers: [] }));
      expect(await refusal(h.primary.putManifest(r, "v1", { raw: missingConfig, mediaType: OCI_MANIFEST }))).toBe("400 MANIFEST_BLOB_UNKNOWN");

      r = repo("invalid-json");
      expect(await refusal(h.primary.putManifest(r, "v1", { raw: Buffer.from('{"schemaVersion": 2, "mediaType": '), mediaType: OCI_MANIFEST }))).toBe("400 MANIFEST_INVALID");

      r = repo("oversized");
      parts = await imageParts(h.primary, r);
      expect(await refusal(h.primary.putManifest(r, "v1", { raw: manifestOfSize(parts.config, MANIFEST_LIMIT + 1), mediaType: OCI_MANIFEST }))).toBe("400 MANIFEST_INVALID");

      r = repo("index-missing-child");
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, ...missing }] }));
      expect(await refusal(h.primary.putManifest(r, "v1", { raw: index, mediaType: OCI_INDEX }))).toBe("400 MANIFEST_BLOB_UNKNOWN");

      // An index cannot reference itself at push time: its digest is the hash of its bytes, so listing
      // it is a fixed point no one can compute; the nearest try (a digest not stored yet) is refused like
      // any missing child. The stored-content test below makes the cycle on disk instead.
      r = repo("index-self");
      const self = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_INDEX, digest: sha256("placeholder"), size: 2 }] }));
      expect(await refusal(h.primary.putManifest(r, "v1", { raw: self, mediaType: OCI_INDEX }))).toBe("400 MANIFEST_BLOB_UNKNOWN");

      // The limit is shared: a manifest of exactly 4 MiB is accepted and replicated whole.
      r = `hostile/limit-4mib-${suffix}`;
      parts = await imageParts(h.primary, r);
      const limit = manifestOfSize(parts.config, MANIFEST_LIMIT);
      const digest = await h.primary.putManifest(r, "v1", { raw: limit, mediaType: OCI_MANIFEST });
      await waitUntil(`${r}:v1 (a 4 MiB manifest) is on the secondary`, 60_000, async () => (await tagDigest(h.secondary, r, "v1")) === digest);
      for (const repository of refusedRepositories) h.report.push(`content refused-by-distribution ${repository}`);
    });

    it("content stored bad on the primary ends as a recorded sync failure naming the problem; nothing of it is visible on the secondary", async () => {
      const h = get();
      const storage = await primaryStorageRoot(h.stack);
      const good = `hostile/content-good-${suffix}`;
      const expectations = new Map<string, RegExp>();

      // Paused, the secondary copies nothing while the content is made bad.
      expect(await admin(h, "/api/v1/pause")).toBe(200);
      try {
        for (const c of STORED_CASES) {
          const repository = `hostile/content-${c.name}-${suffix}`;
          expectations.set(repository, (await c.make(h, repository, storage)).failure);
        }
        await pushImage(h.primary, good, "v1");
      } finally {
        expect(await admin(h, "/api/v1/resume")).toBe(200);
      }

      const goodDigest = await tagDigest(h.primary, good, "v1");
      await waitUntil(`${good}:v1 is replicated beside the bad content`, 60_000, async () => (await tagDigest(h.secondary, good, "v1")) === goodDigest);
      for (const [repository, failure] of expectations) {
        let row: RepositoryRow | undefined;
        await waitUntil(`${repository} is failed with a recorded failure`, 90_000, async () => {
          row = await trackingRow(h, repository);
          return row?.repository.state === "failed" && row.repository.last_sync_failure !== null;
        });
        const message = row!.repository.last_sync_failure!;
        h.report.push(`content ${repository.padEnd(48)} failed: ${message.slice(0, 300)}`);
        expect(message, repository).toMatch(failure);
        expect(row!.recent_syncs.some((s) => s.outcome === "failed" && s.error !== null && failure.test(s.error)), `${repository}: the sync history names it too`).toBe(true);
        expect(await tagsOf(h.secondary, repository), `${repository} has no tag on the secondary`).toEqual([]);
      }
    });

    it("after the bad content: nothing incomplete is visible on the secondary, the refused repositories have nothing there, and every service is ready", async () => {
      const h = get();
      expect(await incompleteContent(h.secondary)).toEqual([]);
      for (const repository of refusedRepositories) expect(await tagsOf(h.secondary, repository), repository).toEqual([]);
      expect(Object.entries(await healthOfAll(h.stack)).filter(([, status]) => status !== 200), "services not ready").toEqual([]);
      // A repository pushed now still replicates.
      const repository = `hostile/content-after-${suffix}`;
      const digest = await pushImage(h.primary, repository, "v1");
      await waitUntil(`${repository}:v1 is on the secondary`, 60_000, async () => (await tagDigest(h.secondary, repository, "v1")) === digest);
    });
  });
}

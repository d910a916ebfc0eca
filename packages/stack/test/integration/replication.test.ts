/**
 * End to end on the local stack: two secondaries, real registries with token
 * auth, real NATS with leafnodes and the GEO_EVENTS mirror, real Postgres.
 * Every kind of content pushed to the primary must appear on both
 * secondaries with the same digests and every referenced blob.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRegistryClient, manifestChildren } from "@georep/registry-client";
import type { RegistryClient } from "@georep/registry-client";
import { stopProcessGroup } from "@georep/testing/internal";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, stopStack } from "../../src/index.js";
import type { StackDescription } from "../../src/index.js";

const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";

let dir: string;
let stack: StackDescription;
let primary: RegistryClient;
let secondaries: RegistryClient[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "georep-e2e-"));
  ({ stack } = await startStack({ stateDir: dir, secondaries: 2, persistent: false, serviceEnv: { DISPATCHER_BACKFILL_INTERVAL_MS: "3000", DISPATCHER_REVERIFY_AFTER_MS: "2000", LOG_LEVEL: "info" } }));
  const credentials = { type: "basic" as const, ...stack.credentials };
  primary = createRegistryClient({ url: stack.sites[0]!.registry, credentials });
  secondaries = stack.sites.slice(1).map((s) => createRegistryClient({ url: s.registry, credentials }));
}, 120_000);

afterAll(async () => {
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

async function pushImage(repository: string, options: { tag?: string; mediaType?: string; arch?: string; subject?: { digest: string; size: number; mediaType: string }; artifactType?: string } = {}) {
  const docker = options.mediaType === DOCKER_MANIFEST;
  const config = await pushBlob(repository, Buffer.from(JSON.stringify({ architecture: options.arch ?? "amd64", os: "linux", salt: randomBytes(8).toString("hex") })));
  const layer = await pushBlob(repository, randomBytes(8 * 1024));
  const body: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: options.mediaType ?? OCI_MANIFEST,
    ...(options.artifactType === undefined ? {} : { artifactType: options.artifactType }),
    config: { mediaType: docker ? "application/vnd.docker.container.image.v1+json" : "application/vnd.oci.image.config.v1+json", ...config },
    layers: [{ mediaType: docker ? "application/vnd.docker.image.rootfs.diff.tar.gzip" : "application/vnd.oci.image.layer.v1.tar", ...layer }],
    ...(options.subject === undefined ? {} : { subject: options.subject }),
  };
  const raw = Buffer.from(JSON.stringify(body));
  const mediaType = options.mediaType ?? OCI_MANIFEST;
  await primary.putManifest(repository, sha256(raw), { raw, mediaType });
  if (options.tag !== undefined) await primary.putManifest(repository, options.tag, { raw, mediaType });
  return { raw, digest: sha256(raw), size: raw.length, mediaType };
}

/** Tag → digest on a registry (empty when the repository is unknown there). */
async function tagMap(client: RegistryClient, repository: string): Promise<Record<string, string>> {
  const tags = await client.listTags(repository).catch(() => [] as string[]);
  const out: Record<string, string> = {};
  for (const tag of tags.sort()) {
    const head = await client.headManifest(repository, tag);
    if (head !== undefined) out[tag] = head.digest;
  }
  return out;
}

/** Waits until every secondary has the same tag → digest map as the primary. */
async function converged(repository: string, timeoutMs = 60_000): Promise<Record<string, string>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const want = await tagMap(primary, repository);
    const have = await Promise.all(secondaries.map((s) => tagMap(s, repository)));
    if (have.every((h) => JSON.stringify(h) === JSON.stringify(want))) return want;
    if (Date.now() > deadline) throw new Error(`${repository} did not converge: primary ${JSON.stringify(want)}, secondaries ${JSON.stringify(have)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Every manifest under the tags, and every blob they reference, is on every secondary with the same bytes digest. */
async function assertComplete(repository: string, tags: Record<string, string>): Promise<void> {
  for (const secondary of secondaries) {
    const seen = new Set<string>();
    const walk = async (reference: string) => {
      if (seen.has(reference)) return;
      seen.add(reference);
      const manifest = await secondary.getManifest(repository, reference);
      expect(manifest.digest).toBe(reference);
      for (const child of manifestChildren(manifest)) {
        if (child.role === "subject") continue;
        if (child.kind === "manifest") await walk(child.descriptor.digest);
        else expect(await secondary.headBlob(repository, child.descriptor.digest), `${repository} blob ${child.descriptor.digest}`).toEqual({ size: child.descriptor.size });
      }
    };
    for (const digest of Object.values(tags)) await walk(digest);
  }
}

describe("replication on the local stack (primary + 2 secondaries)", () => {
  it("replicates Docker and OCI images, a multi-arch index, an artifact with a subject and a cosign-style signature tag", async () => {
    await pushImage("e2e/docker", { tag: "v1", mediaType: DOCKER_MANIFEST });
    await pushImage("e2e/oci", { tag: "v1" });

    const amd = await pushImage("e2e/multi", { arch: "amd64" });
    const arm = await pushImage("e2e/multi", { arch: "arm64" });
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          { mediaType: OCI_MANIFEST, digest: amd.digest, size: amd.size, platform: { architecture: "amd64", os: "linux" } },
          { mediaType: OCI_MANIFEST, digest: arm.digest, size: arm.size, platform: { architecture: "arm64", os: "linux" } },
        ],
      }),
    );
    await primary.putManifest("e2e/multi", "v1", { raw: index, mediaType: OCI_INDEX });

    const app = await pushImage("e2e/signed", { tag: "v1" });
    const sbom = await pushImage("e2e/signed", { artifactType: "application/vnd.example.sbom", subject: { digest: app.digest, size: app.size, mediaType: OCI_MANIFEST } });
    const fallback = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: sbom.digest, size: sbom.size, artifactType: "application/vnd.example.sbom" }] }));
    await primary.putManifest("e2e/signed", `sha256-${app.digest.slice(7)}`, { raw: fallback, mediaType: OCI_INDEX });
    await pushImage("e2e/signed", { tag: `sha256-${app.digest.slice(7)}.sig` });

    for (const repository of ["e2e/docker", "e2e/oci", "e2e/multi", "e2e/signed"]) {
      const tags = await converged(repository);
      expect(Object.keys(tags).length).toBeGreaterThan(0);
      await assertComplete(repository, tags);
    }
    expect(Object.keys(await converged("e2e/signed")).sort()).toEqual([`sha256-${app.digest.slice(7)}`, `sha256-${app.digest.slice(7)}.sig`, "v1"].sort());
    const multi = await secondaries[0]!.getManifest("e2e/multi", "v1");
    expect(multi.kind === "index" ? multi.manifests.map((m) => m.platform?.architecture) : []).toEqual(["amd64", "arm64"]);
  });

  it("moves a tag, deletes a tag and deletes a repository's content", async () => {
    const first = await pushImage("e2e/moves", { tag: "latest" });
    await pushImage("e2e/moves", { tag: "stable" });
    await converged("e2e/moves");
    const second = await pushImage("e2e/moves", { tag: "latest" }); // the tag moves
    expect(second.digest).not.toBe(first.digest);
    let tags = await converged("e2e/moves");
    expect(tags.latest).toBe(second.digest);

    await primary.deleteManifest("e2e/moves", tags.stable!); // deletes the tag "stable" (2.8 deletes by digest)
    tags = await converged("e2e/moves");
    expect(Object.keys(tags)).toEqual(["latest"]);

    await pushImage("e2e/gone", { tag: "v1" });
    const gone = await converged("e2e/gone");
    for (const digest of Object.values(gone)) await primary.deleteManifest("e2e/gone", digest);
    expect(await converged("e2e/gone")).toEqual({});
  });

  it("copies a large layer to every secondary as soon as the primary stores it, before its manifest is pushed", async () => {
    const repository = "e2e/prefetch";
    const layer = await pushBlob(repository, randomBytes(2 * 1024 * 1024));
    // Only the blob is on the primary: ingest announced it, each site's transfer copied it.
    const deadline = Date.now() + 30_000;
    for (const secondary of secondaries) {
      while ((await secondary.headBlob(repository, layer.digest))?.size !== layer.size) {
        if (Date.now() > deadline) throw new Error(`the announced layer ${layer.digest} never reached a secondary`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(await Promise.all(secondaries.map((s) => s.listTags(repository).catch(() => [])))).toEqual(secondaries.map(() => []));
    const config = await pushBlob(repository, Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux" })));
    const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config }, layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }] }));
    await primary.putManifest(repository, "v1", { raw, mediaType: OCI_MANIFEST });
    const tags = await converged(repository);
    expect(tags).toEqual({ v1: sha256(raw) });
    await assertComplete(repository, tags);
  });

  it("notifications that never arrive are repaired by the next backfill", async () => {
    const ingestPid = (JSON.parse(await readFile(join(dir, "pids.json"), "utf8")) as { processes: { name: string; pid: number }[] }).processes.find((p) => p.name === "primary/ingest")!.pid;
    await pushImage("e2e/known", { tag: "v1" });
    await converged("e2e/known");
    await stopProcessGroup(ingestPid, "SIGKILL", 1000); // the registry's notifications now go nowhere
    await pushImage("e2e/unnotified", { tag: "v1" }); // a new repository: found by the catalog walk
    const moved = await pushImage("e2e/known", { tag: "v1" }); // a known one: found by re-verification
    const tags = await converged("e2e/unnotified", 60_000);
    expect(Object.keys(tags)).toEqual(["v1"]);
    await assertComplete("e2e/unnotified", tags);
    expect((await converged("e2e/known", 60_000)).v1).toBe(moved.digest);
  });
});

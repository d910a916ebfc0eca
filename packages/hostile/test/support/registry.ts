/** Pushing content to the primary and checking what the secondary serves. */
import { createHash, randomBytes } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { manifestChildren } from "@georep/registry-client";
import type { RegistryClient } from "@georep/registry-client";
import type { StackDescription } from "@georep/stack";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
export const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar";

export const sha256 = (b: Uint8Array | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

export interface Pushed {
  readonly digest: string;
  readonly size: number;
}

export async function pushBlob(client: RegistryClient, repository: string, bytes: Buffer): Promise<Pushed> {
  const d = { digest: sha256(bytes), size: bytes.length };
  await client.uploadBlob(repository, d, bytes);
  return d;
}

/** A small OCI image's parts, pushed blob by blob; the manifest bytes are returned, not pushed. */
export async function imageParts(client: RegistryClient, repository: string): Promise<{ config: Pushed; layer: Pushed; raw: Buffer; digest: string }> {
  const config = await pushBlob(client, repository, Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", salt: randomBytes(8).toString("hex") })));
  const layer = await pushBlob(client, repository, randomBytes(8 * 1024));
  const raw = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, ...config }, layers: [{ mediaType: OCI_LAYER, ...layer }] }),
  );
  return { config, layer, raw, digest: sha256(raw) };
}

/** Pushes a small OCI image under `tag`; returns its manifest digest. */
export async function pushImage(client: RegistryClient, repository: string, tag: string): Promise<string> {
  const parts = await imageParts(client, repository);
  await client.putManifest(repository, tag, { raw: parts.raw, mediaType: OCI_MANIFEST });
  return parts.digest;
}

/** The digest a tag resolves to, or `undefined` (unknown tag or repository). */
export async function tagDigest(client: RegistryClient, repository: string, tag: string): Promise<string | undefined> {
  return (await client.headManifest(repository, tag).catch(() => undefined))?.digest;
}

/** Tags of a repository, [] when the registry does not know it. */
export async function tagsOf(client: RegistryClient, repository: string): Promise<string[]> {
  return client.listTags(repository).catch(() => []);
}

/**
 * What is incomplete on `client`: for every tag of every repository, each
 * manifest reachable from it must be there (by digest, bytes checked) and
 * every blob it references must be there with its size. Returns the
 * problems (empty when everything visible is complete).
 */
export async function incompleteContent(client: RegistryClient): Promise<string[]> {
  const problems: string[] = [];
  for (const repository of await client.catalog()) {
    for (const tag of await tagsOf(client, repository)) {
      const seen = new Set<string>();
      const walk = async (reference: string): Promise<void> => {
        if (seen.has(reference)) return;
        seen.add(reference);
        const manifest = await client.getManifest(repository, reference).catch((e: Error) => e);
        if (manifest instanceof Error) {
          problems.push(`${repository}:${tag} → ${reference}: ${manifest.message}`);
          return;
        }
        for (const child of manifestChildren(manifest)) {
          if (child.role === "subject") continue;
          if (child.kind === "manifest") await walk(child.descriptor.digest);
          else {
            const head = await client.headBlob(repository, child.descriptor.digest).catch(() => undefined);
            if (head?.size !== child.descriptor.size) problems.push(`${repository}:${tag} → blob ${child.descriptor.digest}: ${head === undefined ? "missing" : `size ${head.size}, expected ${child.descriptor.size}`}`);
          }
        }
      };
      const head = await client.headManifest(repository, tag).catch(() => undefined);
      if (head === undefined) problems.push(`${repository}:${tag} is listed but does not resolve`);
      else await walk(head.digest);
    }
  }
  return problems;
}

/**
 * The primary registry's filesystem storage root, found through its
 * config.yml in the stack's data dir (the one whose `addr` is the
 * primary's port).
 */
export async function primaryStorageRoot(stack: StackDescription): Promise<string> {
  const primary = stack.sites.find((s) => s.role === "primary")!;
  const port = new URL(primary.registry).port;
  for (const entry of await readdir(stack.data_dir)) {
    if (!entry.startsWith("georep-registry-")) continue;
    const config = await readFile(join(stack.data_dir, entry, "config.yml"), "utf8").catch(() => "");
    if (!new RegExp(`addr:\\s*"?127\\.0\\.0\\.1:${port}"?\\s*$`, "m").test(config)) continue;
    const root = /rootdirectory:\s*"?([^"\n]+?)"?\s*$/im.exec(config)?.[1];
    if (root !== undefined) return root;
  }
  throw new Error(`no registry config in ${stack.data_dir} listens on the primary's port ${port}`);
}

/** Where Distribution's filesystem driver keeps a blob's (or a manifest's) bytes. */
export function blobDataPath(storageRoot: string, digest: string): string {
  const hex = digest.slice("sha256:".length);
  return join(storageRoot, "docker", "registry", "v2", "blobs", "sha256", hex.slice(0, 2), hex, "data");
}

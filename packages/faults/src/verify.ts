/**
 * What "nothing lost" and "nothing incomplete" mean, checked through the
 * registry API as a user would see it: tag → digest maps on both sides, and
 * every manifest, child manifest and blob a tag reaches.
 */
import { RegistryHttpError, manifestChildren } from "@georep/registry-client";
import type { RegistryClient } from "@georep/registry-client";

/** Whether an error is the registry saying "not here" (a 404). */
export const isNotFound = (error: unknown): boolean => error instanceof RegistryHttpError && error.status === 404;

/** Tag → digest of a repository (empty when the registry does not know the repository). */
export async function tagMap(client: RegistryClient, repository: string): Promise<Record<string, string>> {
  let tags: string[];
  try {
    tags = await client.listTags(repository);
  } catch (error) {
    if (isNotFound(error)) return {};
    throw error;
  }
  const out: Record<string, string> = {};
  for (const tag of tags.sort()) {
    const head = await client.headManifest(repository, tag);
    if (head !== undefined) out[tag] = head.digest;
  }
  return out;
}

/**
 * What is missing under `reference` in `repository`: the manifest itself,
 * child manifests of an index (recursively) and blobs (config, layers),
 * each as a problem line; empty when the tree is complete. A subject is not
 * content of the manifest (it may legitimately live elsewhere) and is not
 * followed. Errors other than 404 are thrown: they say nothing either way.
 */
export async function missingContent(client: RegistryClient, repository: string, reference: string, seen = new Set<string>()): Promise<string[]> {
  if (seen.has(reference)) return [];
  seen.add(reference);
  let manifest;
  try {
    manifest = await client.getManifest(repository, reference);
  } catch (error) {
    if (isNotFound(error)) return [`${repository}@${reference}: manifest unknown`];
    throw error;
  }
  const problems: string[] = [];
  for (const child of manifestChildren(manifest)) {
    if (child.role === "subject") continue;
    const { digest, size } = child.descriptor;
    if (child.kind === "manifest") {
      const below = await missingContent(client, repository, digest, seen);
      problems.push(...below.map((p) => `${repository}@${reference} → ${p}`));
    } else {
      if (seen.has(digest)) continue;
      seen.add(digest);
      const head = await client.headBlob(repository, digest);
      if (head === undefined) problems.push(`${repository}@${reference}: ${child.role} blob ${digest} missing`);
      else if (head.size !== size) problems.push(`${repository}@${reference}: ${child.role} blob ${digest} has ${head.size} bytes, the manifest says ${size}`);
    }
  }
  return problems;
}

/** Runs `fn` over `items`, `limit` at a time. */
export async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

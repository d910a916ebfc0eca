/**
 * A repository's tags on both sides, resolved to digests (DESIGN.md, "One
 * sync of one repository", step 1): `listTags` follows `Link` pagination,
 * and each tag is resolved with a manifest HEAD whose `Accept` names every
 * manifest media type, a bounded number at a time.
 */
import { RegistryHttpError } from "@georep/registry-client";
import type { RegistryClient } from "@georep/registry-client";

/** Tags resolved at once per registry by default. */
export const DEFAULT_TAG_CONCURRENCY = 8;

/** One tag and where it points on each side. */
export interface TagComparison {
  readonly tag: string;
  readonly primary_digest: string | null;
  readonly secondary_digest: string | null;
  /** Both sides point at the same digest (a tag on one side only is not in sync). */
  readonly in_sync: boolean;
}

/** The comparison, or why it could not be made (`tags` is then empty). */
export interface TagsResult {
  readonly tags: readonly TagComparison[];
  readonly error: string | null;
}

/** A registry error that means "no such repository" (or tag), not "cannot tell". */
export function isUnknown(error: unknown): boolean {
  return error instanceof RegistryHttpError && error.status === 404;
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Runs `fn` over `items`, at most `concurrency` at a time; rejects with the first failure. */
export async function mapLimit<T, R>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  return results;
}

/** Every tag of one side, mapped to its digest; an unknown repository has none. */
async function sideTags(client: RegistryClient, repository: string, concurrency: number): Promise<Map<string, string>> {
  let tags: string[];
  try {
    tags = await client.listTags(repository);
  } catch (error) {
    if (isUnknown(error)) return new Map();
    throw error;
  }
  const digests = await mapLimit(tags, concurrency, async (tag) => (await client.headManifest(repository, tag))?.digest);
  const map = new Map<string, string>();
  tags.forEach((tag, i) => {
    const digest = digests[i];
    // A tag listed and gone by the time of the HEAD is simply not there.
    if (digest !== undefined) map.set(tag, digest);
  });
  return map;
}

/**
 * The union of both sides' tags, sorted, each with its digest per side.
 * When a registry cannot be read, `tags` is empty and `error` says which
 * side failed and why.
 */
export async function compareTags(
  registries: { readonly primary: RegistryClient; readonly secondary: RegistryClient },
  repository: string,
  concurrency = DEFAULT_TAG_CONCURRENCY,
): Promise<TagsResult> {
  const [primary, secondary] = await Promise.allSettled([
    sideTags(registries.primary, repository, concurrency),
    sideTags(registries.secondary, repository, concurrency),
  ]);
  const problems: string[] = [];
  if (primary.status === "rejected") problems.push(`primary unreachable: ${messageOf(primary.reason)}`);
  if (secondary.status === "rejected") problems.push(`secondary unreachable: ${messageOf(secondary.reason)}`);
  if (primary.status === "rejected" || secondary.status === "rejected") return { tags: [], error: problems.join("; ") };
  const names = [...new Set([...primary.value.keys(), ...secondary.value.keys()])].sort();
  const tags = names.map((tag) => {
    const p = primary.value.get(tag) ?? null;
    const s = secondary.value.get(tag) ?? null;
    return { tag, primary_digest: p, secondary_digest: s, in_sync: p !== null && p === s };
  });
  return { tags, error: null };
}

/**
 * What a manifest references: the content a copy must move before the
 * manifest itself can be pushed (a registry may reject a manifest whose
 * blobs or children it does not hold, MANIFEST_BLOB_UNKNOWN).
 */
import { parseDigest } from "../ref/digest.js";
import type { Descriptor, Manifest } from "./manifest.js";
import { MEDIA_TYPES, isManifestMediaType } from "./media-types.js";

/** Why a manifest references a descriptor. */
export const CHILD_ROLES = {
  /** The image config, including the empty `{}` config of artifacts. */
  config: "config",
  layer: "layer",
  /** An entry of an artifact manifest's `blobs`. */
  blob: "blob",
  /** An entry of an index's `manifests`. */
  child: "child",
  /** The manifest this one refers to; copying it is the caller's choice. */
  subject: "subject",
} as const;

/** One of {@link CHILD_ROLES}. */
export type ChildRole = (typeof CHILD_ROLES)[keyof typeof CHILD_ROLES];

/** A referenced descriptor and how to fetch it: `/blobs/` for "blob", `/manifests/` for "manifest". */
export interface ManifestChild {
  readonly kind: "blob" | "manifest";
  readonly role: ChildRole;
  readonly descriptor: Descriptor;
}

/**
 * Everything `manifest` references, in document order: for an image its
 * config (always, even the empty descriptor), layers and blobs; for an index
 * every entry for every platform. Index entries whose media type is not a
 * manifest type are blobs, which is how BuildKit's registry cache stores its
 * layers and cache config in an OCI index. The `subject`, if any, comes
 * last with role "subject". Duplicates (one blob used twice) are kept; the
 * caller dedupes by digest. Foreign layers (with `urls`) are listed like any
 * other; whether to copy them is the caller's policy.
 */
export function manifestChildren(manifest: Manifest): ManifestChild[] {
  const children: ManifestChild[] = [];
  if (manifest.kind === "index") {
    for (const descriptor of manifest.manifests) {
      children.push({ kind: isManifestMediaType(descriptor.mediaType) ? "manifest" : "blob", role: "child", descriptor });
    }
  } else {
    if (manifest.config !== undefined) children.push({ kind: "blob", role: "config", descriptor: manifest.config });
    for (const descriptor of manifest.layers) children.push({ kind: "blob", role: "layer", descriptor });
    for (const descriptor of manifest.blobs) children.push({ kind: "blob", role: "blob", descriptor });
  }
  if (manifest.subject !== undefined) children.push({ kind: "manifest", role: "subject", descriptor: manifest.subject });
  return children;
}

/**
 * Whether `manifest` is a BuildKit registry cache (`--cache-to type=registry`):
 * an index listing a `application/vnd.buildkit.cacheconfig.v0` blob, or whose
 * entries are all blobs rather than manifests.
 */
export function isBuildkitCacheIndex(manifest: Manifest): boolean {
  if (manifest.kind !== "index" || manifest.manifests.length === 0) return false;
  return (
    manifest.manifests.some((d) => d.mediaType === MEDIA_TYPES.buildkitCacheConfig) ||
    manifest.manifests.every((d) => !isManifestMediaType(d.mediaType))
  );
}

/**
 * The tag holding the referrers index of `digest` on registries without the
 * referrers API (distribution-spec "Referrers Tag Schema"): `<alg>-<hex>`,
 * e.g. `sha256-e3b0…`, the algorithm cut to 32 and the hex to 64 characters
 * so it stays a valid tag.
 * @throws InvalidReferenceError when `digest` is not a valid digest.
 */
export function referrersFallbackTag(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return `${algorithm.slice(0, 32)}-${hex.slice(0, 64)}`;
}

/**
 * Media types of manifests, configs and layers (OCI image-spec
 * media-types.md, Docker image manifest v2 schema 2, BuildKit cache).
 */

/** Media types this package knows by name. */
export const MEDIA_TYPES = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  /** Dropped from OCI 1.1 final but stored by some registries (ACR, zot); parsed like an image manifest with `blobs`. */
  ociArtifactManifest: "application/vnd.oci.artifact.manifest.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  /** Docker schema 1: recognised only to be rejected with a clear error. */
  dockerManifestV1: "application/vnd.docker.distribution.manifest.v1+json",
  /** Docker schema 1, signed: recognised only to be rejected with a clear error. */
  dockerManifestV1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
  /** `{}`: the config of artifacts that have none (image-spec manifest.md "Guidance for an Empty Descriptor"). */
  ociEmpty: "application/vnd.oci.empty.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  /** Layers served from `urls`, not the registry (Windows base layers). */
  dockerForeignLayer: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  /** The cache description in a BuildKit `--cache-to type=registry` index. */
  buildkitCacheConfig: "application/vnd.buildkit.cacheconfig.v0",
} as const;

/** One of {@link MEDIA_TYPES}. */
export type MediaType = (typeof MEDIA_TYPES)[keyof typeof MEDIA_TYPES];

/**
 * Value for the `Accept` header of manifest requests, joined with ", ": every
 * manifest type this package parses, indexes first so a registry returns the
 * multi-platform index rather than resolving a platform for us.
 */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.dockerManifestList,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerManifest,
  MEDIA_TYPES.ociArtifactManifest,
] as const;

/** A manifest media type this package parses (one of {@link MANIFEST_ACCEPT}). */
export type ManifestMediaType = (typeof MANIFEST_ACCEPT)[number];

/** Media types whose manifests list other manifests. */
export const INDEX_MEDIA_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList]);

const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set(MANIFEST_ACCEPT);

/** Whether `mediaType` (without parameters) is a manifest type this package parses. */
export function isManifestMediaType(mediaType: string): mediaType is ManifestMediaType {
  return MANIFEST_MEDIA_TYPES.has(mediaType);
}

/** `Application/JSON; charset=utf-8` → `application/json`. */
export function normalizeContentType(contentType: string): string {
  const semicolon = contentType.indexOf(";");
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
}

/**
 * Parsing manifests (OCI image-spec manifest.md and image-index.md, Docker
 * image manifest v2 schema 2 and manifest list). The parsed object keeps the
 * exact bytes it came from: a manifest is pushed and digested as those bytes,
 * never re-serialised, or its digest would change.
 */
import { InvalidManifestError } from "../errors.js";
import { isRecord } from "../json.js";
import { digestProblem, sha256Digest } from "../ref/digest.js";
import { INDEX_MEDIA_TYPES, MEDIA_TYPES, isManifestMediaType, normalizeContentType } from "./media-types.js";
import type { ManifestMediaType } from "./media-types.js";

/** Platform of an index entry (image-index.md). */
export interface Platform {
  readonly architecture: string;
  readonly os: string;
  readonly "os.version"?: string;
  readonly "os.features"?: readonly string[];
  readonly variant?: string;
  readonly features?: readonly string[];
}

/** A content descriptor (descriptor.md): what a manifest says about a blob or another manifest. */
export interface Descriptor {
  readonly mediaType: string;
  /** Validated sha256 or sha512 digest. */
  readonly digest: string;
  /** Size in bytes, a non-negative integer. */
  readonly size: number;
  /** Where non-distributable (foreign) content can be fetched from instead of the registry. */
  readonly urls?: readonly string[];
  readonly annotations?: Readonly<Record<string, string>>;
  readonly artifactType?: string;
  /** Only on index entries. */
  readonly platform?: Platform;
  /** The content itself, base64, when embedded. */
  readonly data?: string;
}

/** What every parsed manifest has. */
interface ManifestBase {
  /** The exact bytes fetched or to be pushed. Push these, never a re-serialisation. */
  readonly raw: Uint8Array;
  /** `sha256:` digest of {@link raw}. To check a sha512 reference, use `verifyDigest(raw, expected)`. */
  readonly digest: string;
  /** `raw.byteLength`, for the descriptor of this manifest. */
  readonly size: number;
  /** Effective media type: the `mediaType` field, else the Content-Type, else detected from the shape. */
  readonly mediaType: ManifestMediaType;
  readonly artifactType?: string;
  /** The manifest this one refers to (signatures, SBOMs, attestations), for the referrers API. */
  readonly subject?: Descriptor;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** An image manifest (OCI or Docker schema 2) or an OCI artifact manifest. */
export interface ImageManifest extends ManifestBase {
  readonly kind: "image";
  /** Always present except on OCI artifact manifests (which have `blobs` instead). May be the empty descriptor. */
  readonly config?: Descriptor;
  /** Empty when the manifest has none (artifacts). */
  readonly layers: readonly Descriptor[];
  /** Artifact-manifest style content; empty when absent. */
  readonly blobs: readonly Descriptor[];
}

/** An OCI image index or a Docker manifest list. */
export interface IndexManifest extends ManifestBase {
  readonly kind: "index";
  /** Every entry, for all platforms, in document order. */
  readonly manifests: readonly Descriptor[];
}

/** A parsed manifest; switch on `kind`. */
export type Manifest = ImageManifest | IndexManifest;

/** Options of {@link parseManifest}. */
export interface ParseManifestOptions {
  /** Named in error messages and set on errors. */
  readonly repository?: string;
}

type Fail = (problem: string) => never;

/**
 * Parses manifest bytes as fetched from a registry.
 *
 * The media type is the document's `mediaType` field; without one, the
 * `contentType` header when it names a manifest type; without that, the
 * shape: a `manifests` array is an OCI index, a `config` an image manifest
 * (Docker's when the config has Docker's media type), `blobs` alone an OCI
 * artifact manifest. Descriptors are validated (media type, digest, size).
 *
 * @param bytes Exact response body; kept as `raw` and digested as is.
 * @param contentType The response's Content-Type header, parameters allowed.
 * @throws InvalidManifestError for invalid JSON or UTF-8, Docker schema 1,
 *   an unknown media type, or an invalid descriptor, naming the repository
 *   (when given), the digest and the offending field.
 */
export function parseManifest(bytes: Uint8Array, contentType?: string, options: ParseManifestOptions = {}): Manifest {
  const digest = sha256Digest(bytes);
  const fail: Fail = (problem) => {
    throw new InvalidManifestError(problem, { repository: options.repository, digest });
  };

  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw new InvalidManifestError(`not valid UTF-8 JSON: ${(err as Error).message}`, {
      repository: options.repository,
      digest,
      cause: err,
    });
  }
  if (!isRecord(doc)) return fail("not a JSON object");

  if (doc.schemaVersion === 1) {
    return fail("Docker schema 1 manifests are not supported (deprecated; convert with a current Docker or skopeo)");
  }
  if (doc.schemaVersion !== undefined && doc.schemaVersion !== 2) {
    return fail(`schemaVersion must be 2, not ${JSON.stringify(doc.schemaVersion)}`);
  }

  const mediaType = effectiveMediaType(doc, contentType, fail);
  const common = {
    raw: bytes,
    digest,
    size: bytes.byteLength,
    mediaType,
    ...optionalString(doc, "artifactType", "artifactType", fail),
    ...(isAbsent(doc.subject) ? {} : { subject: descriptor(doc.subject, "subject", fail) }),
    ...optionalAnnotations(doc.annotations, "annotations", fail),
  };

  if (INDEX_MEDIA_TYPES.has(mediaType)) {
    if (!Array.isArray(doc.manifests)) return fail(`${mediaType} must have a "manifests" array`);
    return {
      ...common,
      kind: "index",
      manifests: doc.manifests.map((d: unknown, i) => descriptor(d, `manifests[${i}]`, fail)),
    };
  }

  if (isAbsent(doc.config) && mediaType !== MEDIA_TYPES.ociArtifactManifest) {
    return fail(`${mediaType} must have a "config" descriptor`);
  }
  return {
    ...common,
    kind: "image",
    ...(isAbsent(doc.config) ? {} : { config: descriptor(doc.config, "config", fail) }),
    layers: descriptorList(doc.layers, "layers", fail),
    blobs: descriptorList(doc.blobs, "blobs", fail),
  };
}

/** Field, then header, then shape; see {@link parseManifest}. */
function effectiveMediaType(
  doc: Record<string, unknown>,
  contentType: string | undefined,
  fail: Fail,
): ManifestMediaType {
  if (!isAbsent(doc.mediaType)) {
    if (typeof doc.mediaType !== "string") return fail("mediaType must be a string");
    return supported(doc.mediaType, "mediaType field", fail);
  }
  if (contentType !== undefined) {
    const header = normalizeContentType(contentType);
    if (isManifestMediaType(header) || isSchema1(header)) return supported(header, "Content-Type", fail);
    // Anything else (application/json, text/plain, octet-stream): fall through to the shape.
  }
  if (Array.isArray(doc.manifests)) return MEDIA_TYPES.ociIndex;
  if (!isAbsent(doc.config)) {
    const configType = isRecord(doc.config) ? doc.config.mediaType : undefined;
    return configType === MEDIA_TYPES.dockerConfig ? MEDIA_TYPES.dockerManifest : MEDIA_TYPES.ociManifest;
  }
  if (Array.isArray(doc.blobs)) return MEDIA_TYPES.ociArtifactManifest;
  return fail(
    'cannot tell the manifest type: no mediaType field, no manifest Content-Type, and no "manifests", "config" or "blobs"',
  );
}

function isSchema1(mediaType: string): boolean {
  return mediaType === MEDIA_TYPES.dockerManifestV1 || mediaType === MEDIA_TYPES.dockerManifestV1Signed;
}

function supported(mediaType: string, source: string, fail: Fail): ManifestMediaType {
  if (isManifestMediaType(mediaType)) return mediaType;
  if (isSchema1(mediaType)) return fail(`Docker schema 1 manifests (${mediaType}) are not supported`);
  return fail(`unsupported manifest media type ${JSON.stringify(mediaType)} in ${source}`);
}

function descriptorList(value: unknown, path: string, fail: Fail): Descriptor[] {
  if (isAbsent(value)) return [];
  if (!Array.isArray(value)) return fail(`${path} must be an array of descriptors`);
  return value.map((d: unknown, i) => descriptor(d, `${path}[${i}]`, fail));
}

/** Validates one descriptor; `path` (e.g. `layers[2]`) names it in errors. */
function descriptor(value: unknown, path: string, fail: Fail): Descriptor {
  if (!isRecord(value)) return fail(`${path} must be a descriptor object`);
  const { mediaType, digest, size } = value;
  if (typeof mediaType !== "string" || mediaType === "") return fail(`${path}.mediaType must be a non-empty string`);
  if (typeof digest !== "string") return fail(`${path}.digest must be a string`);
  const problem = digestProblem(digest);
  if (problem !== undefined) return fail(`${path}.digest ${JSON.stringify(digest)} is invalid: ${problem}`);
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    return fail(`${path}.size must be a non-negative integer, not ${JSON.stringify(size)}`);
  }
  return {
    mediaType,
    digest,
    size,
    ...optionalStringList(value.urls, `${path}.urls`, "urls", fail),
    ...optionalAnnotations(value.annotations, `${path}.annotations`, fail),
    ...optionalString(value, "artifactType", `${path}.artifactType`, fail),
    ...(isAbsent(value.platform) ? {} : { platform: platform(value.platform, `${path}.platform`, fail) }),
    ...optionalString(value, "data", `${path}.data`, fail),
  };
}

function platform(value: unknown, path: string, fail: Fail): Platform {
  if (!isRecord(value)) return fail(`${path} must be an object`);
  const { architecture, os } = value;
  if (typeof architecture !== "string") return fail(`${path}.architecture must be a string`);
  if (typeof os !== "string") return fail(`${path}.os must be a string`);
  return {
    architecture,
    os,
    ...optionalString(value, "os.version", `${path}["os.version"]`, fail),
    ...optionalStringList(value["os.features"], `${path}["os.features"]`, "os.features", fail),
    ...optionalString(value, "variant", `${path}.variant`, fail),
    ...optionalStringList(value.features, `${path}.features`, "features", fail),
  };
}

function optionalString<K extends string>(
  record: Record<string, unknown>,
  key: K,
  path: string,
  fail: Fail,
): Partial<Record<K, string>> {
  const value = record[key];
  if (isAbsent(value)) return {};
  if (typeof value !== "string") return fail(`${path} must be a string`);
  return { [key]: value } as Partial<Record<K, string>>;
}

function optionalStringList<K extends string>(
  value: unknown,
  path: string,
  key: K,
  fail: Fail,
): Partial<Record<K, string[]>> {
  if (isAbsent(value)) return {};
  if (!Array.isArray(value) || !value.every((s) => typeof s === "string")) {
    return fail(`${path} must be an array of strings`);
  }
  return { [key]: value } as Partial<Record<K, string[]>>;
}

function optionalAnnotations(
  value: unknown,
  path: string,
  fail: Fail,
): { annotations?: Readonly<Record<string, string>> } {
  if (isAbsent(value)) return {};
  if (!isRecord(value) || !Object.values(value).every((s) => typeof s === "string")) {
    return fail(`${path} must map strings to strings`);
  }
  return { annotations: value as Record<string, string> };
}

/** Optional fields may be missing or `null` (Go encoders without `omitempty` write `null`). */
function isAbsent(value: unknown): value is undefined | null {
  return value === undefined || value === null;
}

/**
 * The registry client: OCI Distribution operations over one transport.
 * Repository names and digests are validated before any request; every
 * failure is a typed error naming the repository and digest.
 */
import type { Hash } from "node:crypto";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { VerifyingStream, skipBytes, takeBytes, uploadOffset } from "./blob.js";
import { DigestMismatchError, InvalidManifestError, RegistryError, RegistryHttpError, REGISTRY_ERROR_CODES, SizeMismatchError } from "./errors.js";
import { parseManifest } from "./manifest/manifest.js";
import type { Descriptor, IndexManifest, Manifest } from "./manifest/manifest.js";
import { MANIFEST_ACCEPT, MEDIA_TYPES, normalizeContentType } from "./manifest/media-types.js";
import { referrersFallbackTag } from "./manifest/children.js";
import { computeDigest, parseDigest } from "./ref/digest.js";
import type { DigestAlgorithm } from "./ref/digest.js";
import { validateRepositoryName, validateTag } from "./ref/reference.js";
import { CATALOG_SCOPE, repositoryScope } from "./transport/auth.js";
import { createTransport } from "./transport/transport.js";
import type { RequestSpec, Transport, TransportOptions, TransportResponse } from "./transport/transport.js";

/** Entries asked for per page of the catalog and tag lists. */
export const DEFAULT_PAGE_SIZE = 1000;
/** The largest manifest accepted (the spec's "at least 4 MiB" registries must take). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/**
 * Blobs up to this size go up in one request: `PUT <location>?digest=` with
 * the bytes (the spec's monolithic upload) instead of a PATCH and an empty
 * PUT. Saves one request per blob; a failure restarts such a blob from the
 * registry's offset as with PATCHes.
 */
export const DEFAULT_MONOLITHIC_MAX_BYTES = 1024 * 1024;
/** The `Accept` header of every manifest request: every manifest type we understand. */
export const MANIFEST_ACCEPT_HEADER = MANIFEST_ACCEPT.join(", ");

export type RegistryClientOptions = TransportOptions;

/** What a HEAD on a manifest says. */
export interface ManifestInfo {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
}

/** A blob download: the stream starts at `offset` of a blob of `size` bytes. */
export interface BlobDownload {
  readonly stream: Readable;
  readonly offset: number;
  readonly size: number;
}

/**
 * Where upload bytes come from. A byte array or an opener (called with the
 * offset to start at) can be resumed after a failure; a plain stream cannot.
 */
export type BlobSource = Uint8Array | Readable | ((offset: number) => Promise<Readable>);

export interface UploadOptions {
  /** Send in PATCH requests of this many bytes (Content-Range); default: one request. */
  readonly chunkSize?: number;
  /** Resume attempts after a failed PATCH (the registry's offset is asked for each time). */
  readonly resumeAttempts?: number;
  /** Largest blob sent in one PUT with its bytes; default {@link DEFAULT_MONOLITHIC_MAX_BYTES} (0: always PATCH, then PUT). */
  readonly monolithicMaxBytes?: number;
  /** An upload session to continue (a `Location` from {@link RegistryClient.startUpload} or a mount). */
  readonly location?: string;
}

/** Referrers of a manifest and where they were found. */
export interface Referrers {
  readonly descriptors: readonly Descriptor[];
  /** "api": the OCI 1.1 referrers API; "tag": the `sha256-<hex>` fallback tag; "none": neither exists. */
  readonly via: "api" | "tag" | "none";
}

export interface RegistryClient {
  /** The registry origin. */
  readonly url: string;
  /** GET /v2/: throws unless the registry answers 200 (with auth, after the challenge). */
  ping(): Promise<void>;
  /** Every repository, following `Link` pagination to the end. */
  catalog(options?: { pageSize?: number }): Promise<string[]>;
  /** Every tag of a repository, following `Link` pagination to the end; [] for an unknown repository only if `missingOk`. */
  listTags(repository: string, options?: { pageSize?: number }): Promise<string[]>;
  /** HEAD a manifest by tag or digest; `undefined` when it does not exist. */
  headManifest(repository: string, reference: string): Promise<ManifestInfo | undefined>;
  /** GET and parse a manifest; checked against the digest when fetched by digest. */
  getManifest(repository: string, reference: string): Promise<Manifest>;
  /** PUT manifest bytes as they are, by tag or digest; returns the digest. */
  putManifest(repository: string, reference: string, manifest: { readonly raw: Uint8Array; readonly mediaType: string }): Promise<string>;
  /** DELETE a manifest by digest; false when it was not there. */
  deleteManifest(repository: string, digest: string): Promise<boolean>;
  /** HEAD a blob; its size, or `undefined` when missing. */
  headBlob(repository: string, digest: string): Promise<{ size: number } | undefined>;
  /** GET a blob as a stream, from `offset` with a Range request. */
  getBlob(repository: string, digest: string, options?: { offset?: number }): Promise<BlobDownload>;
  /** DELETE a blob; false when it was not there. */
  deleteBlob(repository: string, digest: string): Promise<boolean>;
  /** Cross-repository mount; `{ mounted: false, location }` when the registry answers 202 (upload there instead). */
  mountBlob(repository: string, digest: string, from: string): Promise<{ mounted: true } | { mounted: false; location: string }>;
  /** POST a new upload session; its `Location`. */
  startUpload(repository: string): Promise<string>;
  /** The offset an upload session has reached (GET on its location). */
  uploadStatus(repository: string, location: string): Promise<{ offset: number; location: string }>;
  /** DELETE an upload session (best effort). */
  cancelUpload(repository: string, location: string): Promise<void>;
  /**
   * Uploads a blob, verifying size and digest while streaming, PATCH by PATCH
   * with Content-Range, resuming from the registry's offset after a failure.
   */
  uploadBlob(repository: string, descriptor: Pick<Descriptor, "digest" | "size">, source: BlobSource, options?: UploadOptions): Promise<void>;
  /** Referrers of a manifest: the referrers API when the registry has it, else the fallback tag. */
  referrers(repository: string, digest: string, options?: { artifactType?: string }): Promise<Referrers>;
  /** The underlying transport (for tools that need raw requests). */
  readonly transport: Transport;
}

function header(res: TransportResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The `rel="next"` target of a `Link` header (RFC 8288), if any. */
export function nextLink(link: string | undefined): string | undefined {
  if (link === undefined) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/s.exec(part);
    if (m !== null && /(?:^|;)\s*rel\s*=\s*"?(?:[^";]*\s)?next(?:\s[^";]*)?"?\s*(?:;|$)/i.test(m[2]!)) return m[1];
  }
  return undefined;
}

function checkDigest(digest: string, repository: string): string {
  try {
    parseDigest(digest);
  } catch (error) {
    throw new RegistryError(REGISTRY_ERROR_CODES.invalidReference, `${repository}: invalid digest "${digest}": ${(error as Error).message}`, { repository, cause: error });
  }
  return digest;
}

function checkReference(reference: string, repository: string): string {
  if (reference.includes(":")) return checkDigest(reference, repository);
  validateTag(reference);
  return reference;
}

async function readAll(body: Readable, limit: number, context: { repository: string; reference: string }): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > limit) {
      body.destroy();
      throw new RegistryError(REGISTRY_ERROR_CODES.tooLarge, `${context.repository}:${context.reference}: manifest larger than ${limit} bytes`, { repository: context.repository });
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/** Creates a client for one registry. */
export function createRegistryClient(options: RegistryClientOptions): RegistryClient {
  const transport = createTransport(options);
  const pull = (repository: string) => [repositoryScope(repository, ["pull"])];
  const push = (repository: string) => [repositoryScope(repository, ["pull", "push"])];
  const del = (repository: string) => [repositoryScope(repository, ["delete"])];
  const send = (spec: RequestSpec) => transport.send(spec);

  async function paginate(first: string, scopes: readonly string[], key: "repositories" | "tags", repository?: string): Promise<string[]> {
    const all: string[] = [];
    let url: string | undefined = first;
    const seen = new Set<string>();
    while (url !== undefined) {
      if (seen.has(url)) throw new RegistryError(REGISTRY_ERROR_CODES.http, `pagination loop at ${url}`, { repository });
      seen.add(url);
      const res = await send({ method: "GET", url, scopes, accept: [200], ...(repository === undefined ? {} : { repository }) });
      const body = (await res.body.json()) as Record<string, unknown>;
      const page = body[key];
      if (page !== null && page !== undefined && !Array.isArray(page)) {
        throw new RegistryError(REGISTRY_ERROR_CODES.http, `${url}: "${key}" is not a list`, { repository });
      }
      for (const entry of (page ?? []) as unknown[]) if (typeof entry === "string") all.push(entry);
      const next = nextLink(header(res, "link"));
      url = next === undefined ? undefined : transport.resolve(next);
    }
    return all;
  }

  async function startUpload(repository: string): Promise<string> {
    validateRepositoryName(repository);
    const res = await send({ method: "POST", url: `/v2/${repository}/blobs/uploads/`, scopes: push(repository), accept: [202], repository });
    await res.body.dump();
    const location = header(res, "location");
    if (location === undefined) throw new RegistryError(REGISTRY_ERROR_CODES.http, `${repository}: upload started without a Location`, { repository });
    return transport.resolve(location);
  }

  async function uploadStatus(repository: string, location: string): Promise<{ offset: number; location: string }> {
    const res = await send({ method: "GET", url: location, scopes: push(repository), accept: [204], repository });
    await res.body.dump();
    return { offset: uploadOffset(header(res, "range")), location: transport.resolve(header(res, "location") ?? location) };
  }

  async function cancelUpload(repository: string, location: string): Promise<void> {
    try {
      const res = await send({ method: "DELETE", url: location, scopes: push(repository), accept: [204, 404], repository });
      await res.body.dump();
    } catch {
      // best effort: the registry purges stale uploads itself
    }
  }

  /** Re-hashes the first `offset` bytes of a resumable source (after a failure mid-chunk). */
  async function hashPrefix(source: Uint8Array | ((offset: number) => Promise<Readable>), algorithm: string, offset: number): Promise<Hash> {
    const hash = createHash(algorithm);
    if (offset === 0) return hash;
    if (source instanceof Uint8Array) return hash.update(source.subarray(0, offset));
    for await (const chunk of takeBytes(await source(0), offset)) hash.update(chunk as Buffer);
    return hash;
  }

  async function uploadBlob(repository: string, descriptor: Pick<Descriptor, "digest" | "size">, source: BlobSource, options: UploadOptions = {}): Promise<void> {
    validateRepositoryName(repository);
    const { digest, size } = descriptor;
    const { algorithm } = parseDigest(checkDigest(digest, repository));
    if (!Number.isSafeInteger(size) || size < 0) throw new SizeMismatchError(size, 0, { repository, digest });
    if (source instanceof Uint8Array && source.length !== size) throw new SizeMismatchError(size, source.length, { repository, digest });
    const resumable = !(source instanceof Readable);
    // A plain stream is read once, so it goes in one request.
    const chunkSize = source instanceof Readable ? Number.POSITIVE_INFINITY : (options.chunkSize ?? Number.POSITIVE_INFINITY);
    if (!(chunkSize > 0)) throw new RangeError(`chunkSize must be positive, got ${chunkSize}`);
    const attempts = resumable ? (options.resumeAttempts ?? 5) : 0;
    const open = async (offset: number, length: number): Promise<Readable> => {
      if (source instanceof Uint8Array) return Readable.from([Buffer.from(source.buffer, source.byteOffset + offset, length)]);
      if (source instanceof Readable) return source;
      return takeBytes(await source(offset), length);
    };

    const monolithicMax = options.monolithicMaxBytes ?? DEFAULT_MONOLITHIC_MAX_BYTES;
    let location = options.location ?? (await startUpload(repository));
    let offset = 0;
    /** Whether a monolithic PUT committed the blob (then no closing PUT is sent). */
    let committed = false;
    let hash = createHash(algorithm);
    let failures = 0;
    // The last failure, while the registry's offset has yet to be asked for. Asking (and
    // re-reading the source up to that offset) can fail too, and then counts as another attempt.
    let failed: { readonly error: unknown } | undefined;
    try {
      while (offset < size || failed !== undefined) {
        let input: Readable | undefined;
        try {
          if (failed !== undefined) {
            const { error } = failed;
            failed = undefined;
            // Ask the registry how far it got; start a fresh session if it lost ours.
            let status: { offset: number; location: string };
            try {
              status = error instanceof RegistryHttpError && error.status === 416 ? { offset: 0, location: await startUpload(repository) } : await uploadStatus(repository, location);
            } catch {
              status = { offset: 0, location: await startUpload(repository) };
            }
            location = status.location;
            const from = Math.min(status.offset, size);
            if (from !== offset) hash = await hashPrefix(source as Uint8Array | ((o: number) => Promise<Readable>), algorithm, from);
            offset = from;
            continue;
          }
          const length = Math.min(chunkSize, size - offset);
          const final = offset + length === size;
          // The whole blob, small, at the first try: one PUT carries the bytes and commits them.
          const monolithic = offset === 0 && final && size > 0 && size <= monolithicMax && failures === 0;
          // Hash state is copied in: a failed chunk must not advance ours.
          const verifier = new VerifyingStream({ digest, size, offset, hash: hash.copy(), repository, final });
          await transport.prepare(push(repository));
          input = await open(offset, length);
          input.once("error", (error) => verifier.destroy(error));
          input.pipe(verifier);
          if (monolithic) {
            const url = new URL(location);
            url.searchParams.set("digest", digest);
            const res = await send({
              method: "PUT",
              url: url.toString(),
              headers: { "content-type": "application/octet-stream", "content-length": String(length) },
              stream: verifier,
              scopes: push(repository),
              accept: [201],
              repository,
              digest,
            });
            await res.body.dump();
            committed = true;
            offset += length;
            continue;
          }
          const res = await send({
            method: "PATCH",
            url: location,
            headers: { "content-type": "application/octet-stream", "content-length": String(length), "content-range": `${offset}-${offset + length - 1}` },
            stream: verifier,
            scopes: push(repository),
            accept: [202],
            repository,
            digest,
          });
          await res.body.dump();
          location = transport.resolve(header(res, "location") ?? location);
          if (!final) hash = verifier.snapshot();
          offset += length;
        } catch (error) {
          // pipe() leaves the source paused, not closed, when the upload side fails: close it, or its
          // connection (and its client's concurrency slot) stays taken.
          if (input !== undefined && input !== source) input.destroy();
          if (error instanceof RegistryError && (error.code === REGISTRY_ERROR_CODES.digestMismatch || error.code === REGISTRY_ERROR_CODES.sizeMismatch)) throw error;
          // A 401 on a chunk is a token refused before the expiry we were told (clock skew, revocation):
          // the transport has dropped it, and the next attempt authenticates afresh.
          if (error instanceof RegistryHttpError && !error.retryable && error.status !== 401 && error.status !== 416 && error.ociCode !== "BLOB_UPLOAD_UNKNOWN") throw error;
          if (++failures > attempts) throw error;
          failed = { error };
        }
      }
      if (size === 0 && computeDigest(new Uint8Array(0), algorithm) !== digest) {
        throw new DigestMismatchError(digest, computeDigest(new Uint8Array(0), algorithm), { repository });
      }
      if (committed) return;
      const url = new URL(location);
      url.searchParams.set("digest", digest);
      const done = await send({ method: "PUT", url: url.toString(), headers: { "content-length": "0" }, body: new Uint8Array(0), scopes: push(repository), accept: [201], repository, digest });
      await done.body.dump();
    } catch (error) {
      await cancelUpload(repository, location);
      throw error;
    }
  }

  const client: RegistryClient = {
    url: transport.origin,
    transport,

    async ping() {
      const res = await send({ method: "GET", url: "/v2/", scopes: [], accept: [200] });
      await res.body.dump();
    },

    async catalog(opts = {}) {
      return paginate(`/v2/_catalog?n=${opts.pageSize ?? DEFAULT_PAGE_SIZE}`, [CATALOG_SCOPE], "repositories");
    },

    async listTags(repository, opts = {}) {
      validateRepositoryName(repository);
      return paginate(`/v2/${repository}/tags/list?n=${opts.pageSize ?? DEFAULT_PAGE_SIZE}`, pull(repository), "tags", repository);
    },

    async headManifest(repository, reference) {
      validateRepositoryName(repository);
      checkReference(reference, repository);
      const res = await send({ method: "HEAD", url: `/v2/${repository}/manifests/${reference}`, headers: { accept: MANIFEST_ACCEPT_HEADER }, scopes: pull(repository), accept: [200, 404], repository });
      if (res.status === 404) return undefined;
      const digest = header(res, "docker-content-digest");
      if (digest === undefined) {
        // Without the header only a GET can tell the digest.
        const manifest = await client.getManifest(repository, reference);
        return { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.size };
      }
      return { digest, mediaType: normalizeContentType(header(res, "content-type") ?? ""), size: Number(header(res, "content-length") ?? -1) };
    },

    async getManifest(repository, reference) {
      validateRepositoryName(repository);
      checkReference(reference, repository);
      const res = await send({ method: "GET", url: `/v2/${repository}/manifests/${reference}`, headers: { accept: MANIFEST_ACCEPT_HEADER }, scopes: pull(repository), accept: [200], repository });
      const raw = await readAll(res.body, MAX_MANIFEST_BYTES, { repository, reference });
      const manifest = parseManifest(raw, header(res, "content-type"), { repository });
      if (reference.includes(":") && manifest.digest !== reference) {
        const actual = reference.startsWith("sha256:") ? manifest.digest : computeDigest(raw, parseDigest(reference).algorithm);
        if (actual !== reference) throw new InvalidManifestError(`content digest ${actual} does not match the requested ${reference}`, { repository, digest: reference });
      }
      if (!reference.includes(":")) {
        // By tag, the registry's Docker-Content-Digest is what the tag points at: bytes that hash
        // to something else are damaged (stored or in transit), not another manifest.
        const stated = header(res, "docker-content-digest");
        let algorithm: DigestAlgorithm | undefined;
        try {
          algorithm = stated === undefined ? undefined : parseDigest(stated).algorithm;
        } catch {
          algorithm = undefined; // a malformed header proves nothing either way
        }
        if (stated !== undefined && algorithm !== undefined) {
          const actual = algorithm === "sha256" ? manifest.digest : computeDigest(raw, algorithm);
          if (actual !== stated) throw new InvalidManifestError(`content digest ${actual} of tag "${reference}" does not match the registry's Docker-Content-Digest ${stated}`, { repository, digest: stated });
        }
      }
      return manifest;
    },

    async putManifest(repository, reference, manifest) {
      validateRepositoryName(repository);
      checkReference(reference, repository);
      const res = await send({
        method: "PUT",
        url: `/v2/${repository}/manifests/${reference}`,
        headers: { "content-type": manifest.mediaType },
        body: manifest.raw,
        scopes: push(repository),
        accept: [201],
        repository,
        ...(reference.includes(":") ? { digest: reference } : {}),
      });
      await res.body.dump();
      return header(res, "docker-content-digest") ?? computeDigest(manifest.raw);
    },

    async deleteManifest(repository, digest) {
      validateRepositoryName(repository);
      checkDigest(digest, repository);
      const res = await send({ method: "DELETE", url: `/v2/${repository}/manifests/${digest}`, scopes: del(repository), accept: [202, 404], repository, digest });
      await res.body.dump();
      return res.status === 202;
    },

    async headBlob(repository, digest) {
      validateRepositoryName(repository);
      checkDigest(digest, repository);
      const res = await send({ method: "HEAD", url: `/v2/${repository}/blobs/${digest}`, scopes: pull(repository), accept: [200, 404], repository, digest, followRedirects: true });
      return res.status === 404 ? undefined : { size: Number(header(res, "content-length") ?? -1) };
    },

    async getBlob(repository, digest, opts = {}) {
      validateRepositoryName(repository);
      checkDigest(digest, repository);
      const offset = opts.offset ?? 0;
      const res = await send({
        method: "GET",
        url: `/v2/${repository}/blobs/${digest}`,
        headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
        scopes: pull(repository),
        accept: [200, 206],
        repository,
        digest,
        followRedirects: true,
      });
      if (res.status === 206) {
        const total = /\/(\d+)$/.exec(header(res, "content-range") ?? "")?.[1];
        return { stream: res.body, offset, size: total === undefined ? offset + Number(header(res, "content-length") ?? 0) : Number(total) };
      }
      const size = Number(header(res, "content-length") ?? -1);
      return { stream: offset > 0 ? skipBytes(res.body, offset) : res.body, offset, size };
    },

    async deleteBlob(repository, digest) {
      validateRepositoryName(repository);
      checkDigest(digest, repository);
      const res = await send({ method: "DELETE", url: `/v2/${repository}/blobs/${digest}`, scopes: del(repository), accept: [202, 404], repository, digest });
      await res.body.dump();
      return res.status === 202;
    },

    async mountBlob(repository, digest, from) {
      validateRepositoryName(repository);
      validateRepositoryName(from);
      checkDigest(digest, repository);
      const query = new URLSearchParams({ mount: digest, from });
      const res = await send({
        method: "POST",
        url: `/v2/${repository}/blobs/uploads/?${query.toString()}`,
        scopes: [...push(repository), ...pull(from)],
        accept: [201, 202],
        repository,
        digest,
      });
      await res.body.dump();
      if (res.status === 201) return { mounted: true };
      const location = header(res, "location");
      if (location === undefined) throw new RegistryError(REGISTRY_ERROR_CODES.http, `${repository}: mount answered 202 without a Location`, { repository, digest });
      return { mounted: false, location: transport.resolve(location) };
    },

    startUpload,
    uploadStatus,
    cancelUpload,
    uploadBlob,

    async referrers(repository, digest, opts = {}) {
      validateRepositoryName(repository);
      checkDigest(digest, repository);
      const filter = opts.artifactType === undefined ? "" : `?${new URLSearchParams({ artifactType: opts.artifactType }).toString()}`;
      const res = await send({ method: "GET", url: `/v2/${repository}/referrers/${digest}${filter}`, headers: { accept: MEDIA_TYPES.ociIndex }, scopes: pull(repository), accept: [200, 404], repository, digest });
      if (res.status === 200 && normalizeContentType(header(res, "content-type") ?? "") === MEDIA_TYPES.ociIndex) {
        const index = parseManifest(await readAll(res.body, MAX_MANIFEST_BYTES, { repository, reference: digest }), MEDIA_TYPES.ociIndex, { repository }) as IndexManifest;
        const descriptors = opts.artifactType === undefined ? index.manifests : index.manifests.filter((d) => d.artifactType === opts.artifactType);
        return { descriptors, via: "api" };
      }
      await res.body.dump();
      // No referrers API (a 404, or a 200 that is not an index): the fallback tag schema.
      const tag = referrersFallbackTag(digest);
      if ((await client.headManifest(repository, tag)) === undefined) return { descriptors: [], via: "none" };
      const index = await client.getManifest(repository, tag);
      if (index.kind !== "index") throw new InvalidManifestError(`referrers fallback tag ${tag} is not an index`, { repository, digest });
      const descriptors = opts.artifactType === undefined ? index.manifests : index.manifests.filter((d) => d.artifactType === opts.artifactType);
      return { descriptors, via: "tag" };
    },
  };
  return client;
}

/**
 * @georep/registry-client: an OCI Distribution client on undici. The pure
 * model (errors, references, digests, media types, manifests) does no I/O;
 * the transport and client build on it.
 */

// ---- Pure model: errors, references, digests, manifests (no I/O) ----------
export {
  AuthError,
  DigestMismatchError,
  InvalidManifestError,
  InvalidReferenceError,
  OCI_ERROR_CODES,
  REGISTRY_ERROR_CODES,
  RegistryError,
  RegistryHttpError,
  SizeMismatchError,
  errorFromResponse,
  isRetryableStatus,
  parseOciErrorBody,
  parseRetryAfter,
} from "./errors.js";
export type {
  FailedResponse,
  OciErrorCode,
  OciErrorCodeLike,
  OciErrorEntry,
  RegistryErrorCode,
  RegistryErrorOptions,
  RegistryHttpErrorInit,
} from "./errors.js";

export {
  DEFAULT_TAG,
  DOCKER_HUB_REGISTRY,
  NAME_TOTAL_LENGTH_MAX,
  TAG_MAX_LENGTH,
  formatReference,
  parseReference,
  referenceTarget,
  validateRepositoryName,
  validateTag,
} from "./ref/reference.js";
export type { ParseReferenceOptions, Reference } from "./ref/reference.js";

export {
  DIGEST_ALGORITHMS,
  computeDigest,
  isDigest,
  parseDigest,
  sha256Digest,
  verifyDigest,
} from "./ref/digest.js";
export type { DigestAlgorithm, ParsedDigest } from "./ref/digest.js";

export { MANIFEST_ACCEPT, MEDIA_TYPES, isManifestMediaType, normalizeContentType } from "./manifest/media-types.js";
export type { ManifestMediaType, MediaType } from "./manifest/media-types.js";

export { parseManifest } from "./manifest/manifest.js";
export type {
  Descriptor,
  ImageManifest,
  IndexManifest,
  Manifest,
  ParseManifestOptions,
  Platform,
} from "./manifest/manifest.js";

export { CHILD_ROLES, isBuildkitCacheIndex, manifestChildren, referrersFallbackTag } from "./manifest/children.js";
export type { ChildRole, ManifestChild } from "./manifest/children.js";
// ---- End of pure model ------------------------------------------------------

// ---- HTTP: transport, auth, client, copy ------------------------------------
export { NetworkError } from "./errors.js";
export { createRegistryClient, nextLink, DEFAULT_PAGE_SIZE, MAX_MANIFEST_BYTES, MANIFEST_ACCEPT_HEADER } from "./client.js";
export type { RegistryClient, RegistryClientOptions, ManifestInfo, BlobDownload, BlobSource, UploadOptions, Referrers } from "./client.js";
export { createTransport, DEFAULT_RETRY, DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_BODY_TIMEOUT_MS } from "./transport/transport.js";
export type { Transport, TransportOptions, TransportEvent, TransportResponse, RequestSpec, RetryPolicy } from "./transport/transport.js";
export { parseChallenge, repositoryScope, basicAuthorization, CATALOG_SCOPE, TokenCache, DEFAULT_TOKEN_RENEW_MARGIN_S } from "./transport/auth.js";
export type { Credentials, TokenProvider, TokenRequest, IssuedToken, Challenge } from "./transport/auth.js";
export { VerifyingStream, uploadOffset } from "./blob.js";
export type { VerifyOptions } from "./blob.js";
export { copyBlob, copyImage } from "./copy.js";
export type { CopyEnd, CopyBlobOptions, CopyBlobResult, CopyBlobAction, CopyImageOptions, CopyImageResult } from "./copy.js";

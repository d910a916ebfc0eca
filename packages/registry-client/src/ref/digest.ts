/**
 * Content digests `<algorithm>:<hex>` (OCI image-spec, descriptor.md
 * "Digests"). Only the registered algorithms are accepted: a digest we cannot
 * compute is a digest we cannot verify.
 */
import { createHash } from "node:crypto";
import { DigestMismatchError, InvalidReferenceError } from "../errors.js";

/** Supported digest algorithms and the length of their hex encoding. */
export const DIGEST_ALGORITHMS = {
  sha256: 64,
  sha512: 128,
} as const;

/** One of the keys of {@link DIGEST_ALGORITHMS}. */
export type DigestAlgorithm = keyof typeof DIGEST_ALGORITHMS;

/** A digest split into its parts. */
export interface ParsedDigest {
  readonly algorithm: DigestAlgorithm;
  /** Lower-case hex, 64 characters for sha256, 128 for sha512. */
  readonly hex: string;
}

/**
 * What is wrong with `digest`, or `undefined` when it is valid. Shared with
 * the manifest parser, which reports the same problems as
 * `InvalidManifestError`.
 * @internal
 */
export function digestProblem(digest: string): string | undefined {
  const colon = digest.indexOf(":");
  if (colon === -1) return 'digest must have the form "<algorithm>:<hex>"';
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  if (!Object.hasOwn(DIGEST_ALGORITHMS, algorithm)) {
    return `unsupported digest algorithm ${JSON.stringify(algorithm)} (supported: ${Object.keys(DIGEST_ALGORITHMS).join(", ")})`;
  }
  const length = DIGEST_ALGORITHMS[algorithm as DigestAlgorithm];
  // The image-spec requires lower case for the registered algorithms.
  if (!/^[a-f0-9]*$/.test(hex)) return `${algorithm} digest must be lower-case hex`;
  if (hex.length !== length) return `${algorithm} digest must have ${length} hex characters, not ${hex.length}`;
  return undefined;
}

/**
 * Splits and validates a digest such as `sha256:e3b0…`.
 * @throws InvalidReferenceError naming the problem (unknown algorithm, wrong length, upper-case hex).
 */
export function parseDigest(digest: string): ParsedDigest {
  const problem = digestProblem(digest);
  if (problem !== undefined) throw new InvalidReferenceError(digest, problem);
  const colon = digest.indexOf(":");
  return { algorithm: digest.slice(0, colon) as DigestAlgorithm, hex: digest.slice(colon + 1) };
}

/** Whether `digest` is a valid sha256 or sha512 digest. */
export function isDigest(digest: string): boolean {
  return digestProblem(digest) === undefined;
}

/** The digest of exactly these bytes, e.g. `sha256:e3b0…` for no bytes. */
export function computeDigest(bytes: Uint8Array, algorithm: DigestAlgorithm = "sha256"): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

/** `sha256:<hex>` of exactly these bytes. Never digest a re-serialised manifest: the registry digests what it stored. */
export function sha256Digest(bytes: Uint8Array): string {
  return computeDigest(bytes, "sha256");
}

/**
 * Checks that `bytes` hash to `expected`, using `expected`'s algorithm.
 * @throws DigestMismatchError with the repository when given.
 * @throws InvalidReferenceError when `expected` is not a valid digest.
 */
export function verifyDigest(bytes: Uint8Array, expected: string, context: { repository?: string } = {}): void {
  const { algorithm } = parseDigest(expected);
  const actual = computeDigest(bytes, algorithm);
  if (actual !== expected) throw new DigestMismatchError(expected, actual, { repository: context.repository });
}

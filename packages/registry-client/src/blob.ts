/**
 * Streaming blob helpers: a pass-through that checks size and digest while
 * bytes flow (a mismatch fails the stream before its end reaches the
 * registry), and byte-range plumbing for resumable transfers.
 */
import type { Hash } from "node:crypto";
import { createHash } from "node:crypto";
import { Readable, Transform } from "node:stream";
import type { TransformCallback } from "node:stream";
import { DigestMismatchError, SizeMismatchError } from "./errors.js";
import { parseDigest } from "./ref/digest.js";

export interface VerifyOptions {
  /** `sha256:<hex>` or `sha512:<hex>`. */
  readonly digest: string;
  /** Total blob size. */
  readonly size: number;
  /** Bytes already verified before this stream (a resumed transfer); the hash must hold them. */
  readonly offset?: number;
  /** A hash that has consumed the first `offset` bytes; a new one when `offset` is 0. */
  readonly hash?: Hash;
  readonly repository?: string;
  /** Whether this stream carries the blob's end (checks size and digest there); default true. */
  readonly final?: boolean;
}

/**
 * A Transform that counts and hashes what passes. It errors with
 * {@link SizeMismatchError} as soon as more bytes than `size` arrive, and at
 * the end with SizeMismatchError or {@link DigestMismatchError} — before it
 * ends its output, so an upload fed by it is aborted, never completed.
 */
export class VerifyingStream extends Transform {
  readonly #digest: string;
  readonly #size: number;
  readonly #hash: Hash;
  readonly #repository: string | undefined;
  readonly #final: boolean;
  #seen: number;

  constructor(options: VerifyOptions) {
    super();
    const { algorithm } = parseDigest(options.digest);
    this.#digest = options.digest;
    this.#size = options.size;
    this.#seen = options.offset ?? 0;
    this.#hash = options.hash ?? createHash(algorithm);
    this.#repository = options.repository;
    this.#final = options.final ?? true;
  }

  /** Bytes seen so far, including the resumed offset. */
  get position(): number {
    return this.#seen;
  }

  /** A copy of the hash state at the current position (for resuming from here). */
  snapshot(): Hash {
    return this.#hash.copy();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#size) {
      callback(new SizeMismatchError(this.#size, this.#seen, { repository: this.#repository, digest: this.#digest }));
      return;
    }
    this.#hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (!this.#final) {
      callback();
      return;
    }
    if (this.#seen !== this.#size) {
      callback(new SizeMismatchError(this.#size, this.#seen, { repository: this.#repository, digest: this.#digest }));
      return;
    }
    const actual = `${this.#digest.slice(0, this.#digest.indexOf(":"))}:${this.#hash.digest("hex")}`;
    if (actual !== this.#digest) {
      callback(new DigestMismatchError(this.#digest, actual, { repository: this.#repository }));
      return;
    }
    callback();
  }
}

/** A stream that ends after `length` bytes of `source` (and destroys the rest). */
export function takeBytes(source: Readable, length: number): Readable {
  let left = length;
  return Readable.from(
    (async function* () {
      try {
        for await (const chunk of source) {
          const b = chunk as Buffer;
          if (b.length >= left) {
            if (left > 0) yield b.subarray(0, left);
            left = 0;
            return;
          }
          left -= b.length;
          yield b;
        }
      } finally {
        source.destroy();
      }
    })(),
    { objectMode: false },
  );
}

/** Drops the first `count` bytes of `source` (a server that ignored our Range). */
export function skipBytes(source: Readable, count: number): Readable {
  let skip = count;
  return Readable.from(
    (async function* () {
      for await (const chunk of source) {
        const b = chunk as Buffer;
        if (skip >= b.length) {
          skip -= b.length;
          continue;
        }
        yield skip > 0 ? b.subarray(skip) : b;
        skip = 0;
      }
    })(),
    { objectMode: false },
  );
}

/** Parses an upload status `Range: 0-<last>` header into the next offset; 0 without one. */
export function uploadOffset(range: string | undefined): number {
  if (range === undefined) return 0;
  const m = /^(?:bytes=)?0-(\d+)$/.exec(range.trim());
  return m === null ? 0 : Number(m[1]) + 1;
}

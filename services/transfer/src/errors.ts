/**
 * Errors of the transfer service. Each has a stable `code`, names the
 * repository (and the tags concerned) in its message, and keeps the
 * original error in `cause`.
 */

/** Stable error codes of the transfer service. */
export const TRANSFER_ERROR_CODES = {
  /** The primary could not be read (unreachable, refused our credentials, answered an error). */
  primary: "TRANSFER_ERR_PRIMARY",
  /** One or more tags could not be copied; `failures` names each with its cause. */
  tags: "TRANSFER_ERR_TAGS",
  /** After copying, the secondary does not serve what the primary does. */
  verification: "TRANSFER_ERR_VERIFICATION",
  /** The secondary could not be read or changed outside the copy of a tag (listing, deletions). */
  secondary: "TRANSFER_ERR_SECONDARY",
  /** The sync was stopped (lease lost, shutdown). */
  aborted: "TRANSFER_ERR_ABORTED",
} as const;

/** One of {@link TRANSFER_ERROR_CODES}. */
export type TransferErrorCode = (typeof TRANSFER_ERROR_CODES)[keyof typeof TRANSFER_ERROR_CODES];

/** A tag that failed, and why. */
export interface TagFailure {
  readonly tag: string;
  readonly error: unknown;
}

/** Base class of the transfer service's errors. */
export class TransferError extends Error {
  override readonly name: string = "TransferError";
  readonly code: TransferErrorCode;
  readonly repository: string;

  constructor(code: TransferErrorCode, repository: string, message: string, options: { cause?: unknown } = {}) {
    super(`${repository}: ${message}`, { cause: options.cause });
    this.code = code;
    this.repository = repository;
  }
}

/** The message of any thrown value, on one line. */
export function describeError(error: unknown): string {
  const text = error instanceof Error ? error.message : typeof error === "string" ? error : JSON.stringify(error);
  return (text ?? String(error)).replace(/\s+/g, " ").trim();
}

/** Some tags could not be copied: the message names every one of them and its cause. */
export class TagsFailedError extends TransferError {
  override readonly name: string = "TagsFailedError";
  readonly failures: readonly TagFailure[];

  constructor(repository: string, failures: readonly TagFailure[], total: number) {
    const detail = failures.map((f) => `tag "${f.tag}": ${describeError(f.error)}`).join("; ");
    super(TRANSFER_ERROR_CODES.tags, repository, `${failures.length} of ${total} tag(s) failed: ${detail}`, { cause: failures[0]?.error });
    this.failures = failures;
  }
}

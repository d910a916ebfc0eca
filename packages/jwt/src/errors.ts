/**
 * Errors raised by `@georep/jwt`. Every class carries a stable `code` that
 * callers may match on, and the original error (fs, crypto, jose) in `cause`;
 * messages are for humans and may change.
 */

/** Stable error codes of this package. */
export const JWT_ERROR_CODES = {
  keyUnreadable: "JWT_ERR_KEY_UNREADABLE",
  keyInvalid: "JWT_ERR_KEY_INVALID",
  keyUnsupported: "JWT_ERR_KEY_UNSUPPORTED",
  keyExists: "JWT_ERR_KEY_EXISTS",
  certificateInvalid: "JWT_ERR_CERT_INVALID",
  certificateMismatch: "JWT_ERR_CERT_MISMATCH",
  scopeInvalid: "JWT_ERR_SCOPE_INVALID",
  usersFile: "JWT_ERR_USERS_FILE",
  sign: "JWT_ERR_SIGN",
  options: "JWT_ERR_OPTIONS",
  unauthorized: "JWT_ERR_UNAUTHORIZED",
  unknownService: "JWT_ERR_UNKNOWN_SERVICE",
  badRequest: "JWT_ERR_BAD_REQUEST",
} as const;

/** One of {@link JWT_ERROR_CODES}. */
export type JwtErrorCode = (typeof JWT_ERROR_CODES)[keyof typeof JWT_ERROR_CODES];

/** Base class of every error this package throws. */
export abstract class JwtError extends Error {
  abstract readonly code: JwtErrorCode;
  /** HTTP status the token endpoint answers with when this error reaches it. */
  readonly statusCode: number = 500;
}

/** A key or certificate file could not be read (missing, permissions, a directory…). */
export class KeyUnreadableError extends JwtError {
  override readonly name = "KeyUnreadableError";
  readonly code = JWT_ERROR_CODES.keyUnreadable;
  /** The file that could not be read. */
  readonly path: string;

  constructor(path: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`cannot read key file ${path}: ${reason}`, { cause });
    this.path = path;
  }
}

/** The key material is not a parseable private key. */
export class KeyInvalidError extends JwtError {
  override readonly name = "KeyInvalidError";
  readonly code = JWT_ERROR_CODES.keyInvalid;
  /** The file it came from, when it came from a file. */
  readonly path: string | undefined;

  constructor(message: string, options: { path?: string; cause?: unknown } = {}) {
    super(options.path === undefined ? message : `${options.path}: ${message}`, { cause: options.cause });
    this.path = options.path;
  }
}

/** A key that parses but cannot sign registry tokens (only RSA ≥ 2048 bits and EC P-256 can). */
export class KeyUnsupportedError extends JwtError {
  override readonly name = "KeyUnsupportedError";
  readonly code = JWT_ERROR_CODES.keyUnsupported;
}

/** `writeKeyMaterial` refused to overwrite an existing key or certificate. */
export class KeyExistsError extends JwtError {
  override readonly name = "KeyExistsError";
  readonly code = JWT_ERROR_CODES.keyExists;
  /** The file that already exists. */
  readonly path: string;

  constructor(path: string, cause: unknown) {
    super(`${path} already exists; remove it or pass overwrite: true`, { cause });
    this.path = path;
  }
}

/** The certificate file is not a parseable X.509 certificate. */
export class CertificateInvalidError extends JwtError {
  override readonly name = "CertificateInvalidError";
  readonly code = JWT_ERROR_CODES.certificateInvalid;
}

/** The certificate does not hold the public half of the signing key. */
export class CertificateMismatchError extends JwtError {
  override readonly name = "CertificateMismatchError";
  readonly code = JWT_ERROR_CODES.certificateMismatch;
}

/** A Docker scope string (`repository:name:pull,push`) is malformed. */
export class ScopeError extends JwtError {
  override readonly name = "ScopeError";
  readonly code = JWT_ERROR_CODES.scopeInvalid;
  override readonly statusCode = 400;
  /** The scope string that was refused. */
  readonly scope: string;

  constructor(scope: string, reason: string) {
    super(`invalid scope ${JSON.stringify(scope)}: ${reason}`);
    this.scope = scope;
  }
}

/** The users file is missing, unreadable, not JSON, or does not match its schema. */
export class UsersFileError extends JwtError {
  override readonly name = "UsersFileError";
  readonly code = JWT_ERROR_CODES.usersFile;
  /** The users file, when the users came from a file. */
  readonly path: string | undefined;

  constructor(message: string, options: { path?: string; cause?: unknown } = {}) {
    super(options.path === undefined ? message : `users file ${options.path}: ${message}`, { cause: options.cause });
    this.path = options.path;
  }
}

/** jose failed to sign a token. */
export class SignError extends JwtError {
  override readonly name = "SignError";
  readonly code = JWT_ERROR_CODES.sign;
}

/** Options passed to a factory are inconsistent (empty issuer, non-positive lifetime…). */
export class OptionsError extends JwtError {
  override readonly name = "OptionsError";
  readonly code = JWT_ERROR_CODES.options;
}

/** The token endpoint refused the credentials (none given, unknown user or wrong password). */
export class UnauthorizedError extends JwtError {
  override readonly name = "UnauthorizedError";
  readonly code = JWT_ERROR_CODES.unauthorized;
  override readonly statusCode = 401;
}

/** The token endpoint was asked for a token for a service it does not issue for. */
export class UnknownServiceError extends JwtError {
  override readonly name = "UnknownServiceError";
  readonly code = JWT_ERROR_CODES.unknownService;
  override readonly statusCode = 400;
  /** The service that was asked for (`undefined` when none was). */
  readonly service: string | undefined;

  constructor(service: string | undefined, accepted: readonly string[]) {
    super(
      service === undefined
        ? `the service query parameter is required (one of ${accepted.join(", ")})`
        : `unknown service ${JSON.stringify(service)}; this endpoint issues tokens for ${accepted.join(", ")}`,
    );
    this.service = service;
  }
}

/** The token endpoint got a request it cannot make sense of. */
export class BadRequestError extends JwtError {
  override readonly name = "BadRequestError";
  readonly code = JWT_ERROR_CODES.badRequest;
  override readonly statusCode = 400;
}

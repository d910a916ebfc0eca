/**
 * Mints Docker token-auth JWTs (docker/distribution docs/spec/auth/jwt.md)
 * that CNCF Distribution's `auth: token` accepts: RS256/ES256, header `kid` in
 * libtrust form (looked up among the `rootcertbundle` keys) and optionally
 * `x5c`; claims `iss`, `sub`, `aud` (a single string: Distribution 2.8 decodes
 * `aud` as a string), `exp`, `nbf`, `iat`, `jti` and `access`.
 */
import { randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import { OptionsError, SignError } from "./errors.js";
import type { SigningAlgorithm, SigningKey } from "./keys.js";
import type { ResourceAccess } from "./scope.js";
import { normalizeAccess } from "./scope.js";

/** Default token lifetime, in seconds (5 minutes). */
export const DEFAULT_TOKEN_TTL_SECONDS = 300;
/**
 * How far `nbf` is set before `iat`, in seconds, so a registry whose clock is
 * slightly behind does not refuse a fresh token (Distribution also allows 60 s).
 */
export const DEFAULT_NOT_BEFORE_SKEW_SECONDS = 10;

/** What to put in one token. */
export interface IssueRequest {
  /** `sub`: who the token is for (a user name, or the site name for service tokens). */
  readonly subject: string;
  /** `aud`: the registry's service name (its `auth.token.service`). */
  readonly audience: string;
  /** `access`: entries for the same resource are merged; empty grants nothing (e.g. `docker login`). */
  readonly access: readonly ResourceAccess[];
  /** Lifetime override for this token, in seconds. */
  readonly ttlSeconds?: number;
}

/** A minted token and its timing, in the shape the token endpoint answers with. */
export interface IssuedToken {
  /** The compact JWS. */
  readonly token: string;
  /** Lifetime in seconds from `issuedAt`. */
  readonly expiresIn: number;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  /** The `access` claim as written into the token. */
  readonly access: readonly ResourceAccess[];
}

/** Signs registry tokens with one key for one issuer name. */
export interface TokenIssuer {
  /** `iss` of every token (the registries' `auth.token.issuer`). */
  readonly issuer: string;
  readonly algorithm: SigningAlgorithm;
  /** libtrust key ID in the header. */
  readonly keyId: string;
  /** Default lifetime in seconds. */
  readonly ttlSeconds: number;
  /** Mints one token. @throws {OptionsError | SignError} */
  issue(request: IssueRequest): Promise<IssuedToken>;
}

/** Options of {@link createTokenIssuer}. */
export interface TokenIssuerOptions {
  /** `iss`; must equal the registries' `auth.token.issuer`. */
  readonly issuer: string;
  readonly key: SigningKey;
  /** Default {@link DEFAULT_TOKEN_TTL_SECONDS}. */
  readonly ttlSeconds?: number;
  /** Add the certificate chain as `x5c` (needs `key.certificateDer`); `kid` alone is enough for Distribution. */
  readonly includeX5c?: boolean;
  /** Default {@link DEFAULT_NOT_BEFORE_SKEW_SECONDS}. */
  readonly notBeforeSkewSeconds?: number;
  /** Clock, for tests; default `() => new Date()`. */
  readonly now?: () => Date;
}

function checkTtl(ttl: number, what: string): void {
  if (!Number.isInteger(ttl) || ttl <= 0) throw new OptionsError(`${what} must be a positive whole number of seconds, got ${ttl}`);
}

/**
 * Creates a token issuer.
 * @throws {OptionsError} on an empty issuer, a bad lifetime, or `includeX5c` without a certificate.
 */
export function createTokenIssuer(options: TokenIssuerOptions): TokenIssuer {
  const issuer = options.issuer;
  if (issuer.trim() === "") throw new OptionsError("issuer must not be empty");
  const ttlSeconds = options.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
  checkTtl(ttlSeconds, "ttlSeconds");
  const skew = options.notBeforeSkewSeconds ?? DEFAULT_NOT_BEFORE_SKEW_SECONDS;
  const now = options.now ?? (() => new Date());
  const key = options.key;
  if (options.includeX5c === true && key.certificateDer === undefined) {
    throw new OptionsError("includeX5c needs the signing key's certificate (load it with certificatePath)");
  }
  // x5c entries are standard base64 DER (RFC 7515 §4.1.6), not base64url.
  const x5c = options.includeX5c === true && key.certificateDer !== undefined ? [key.certificateDer.toString("base64")] : undefined;

  return {
    issuer,
    algorithm: key.algorithm,
    keyId: key.keyId,
    ttlSeconds,
    async issue(request) {
      const ttl = request.ttlSeconds ?? ttlSeconds;
      checkTtl(ttl, "ttlSeconds");
      if (request.audience === "") throw new OptionsError("audience (the registry service name) must not be empty");
      const issuedAtSeconds = Math.floor(now().getTime() / 1000);
      const access = normalizeAccess(request.access);
      try {
        const token = await new SignJWT({ access: access.map((a) => ({ type: a.type, name: a.name, actions: [...a.actions] })) })
          .setProtectedHeader({ alg: key.algorithm, typ: "JWT", kid: key.keyId, ...(x5c === undefined ? {} : { x5c }) })
          .setIssuer(issuer)
          .setSubject(request.subject)
          .setAudience(request.audience)
          .setIssuedAt(issuedAtSeconds)
          .setNotBefore(issuedAtSeconds - skew)
          .setExpirationTime(issuedAtSeconds + ttl)
          .setJti(randomUUID())
          .sign(key.privateKey);
        return {
          token,
          expiresIn: ttl,
          issuedAt: new Date(issuedAtSeconds * 1000),
          expiresAt: new Date((issuedAtSeconds + ttl) * 1000),
          access,
        };
      } catch (cause) {
        throw new SignError(`cannot sign token: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
      }
    },
  };
}

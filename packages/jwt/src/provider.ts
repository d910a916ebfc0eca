/**
 * A token provider for the registry client: mints tokens locally with the
 * shared key instead of asking an auth server, caches one per (service, scope
 * set) and renews it before it expires, so a long copy never fails on expiry.
 */
import { OptionsError } from "./errors.js";
import type { TokenIssuer } from "./issuer.js";
import type { ResourceAccess } from "./scope.js";
import { formatScope, normalizeAccess, parseScopes } from "./scope.js";

/** What the registry client asks for (same shape as `@georep/registry-client`'s, declared structurally). */
export interface TokenRequest {
  /** Registry host (and port) the token is for. */
  readonly registry: string;
  /** `service` from the registry's `WWW-Authenticate` challenge, when there was one. */
  readonly service: string | undefined;
  /** `realm` from the challenge, when there was one (unused: tokens are minted locally). */
  readonly realm: string | undefined;
  /** Docker scope strings, e.g. `repository:team/app:pull,push`. */
  readonly scopes: readonly string[];
}

/** What the registry client gets back. */
export interface TokenResponse {
  readonly token: string;
  /** Lifetime in seconds from `issuedAt`. */
  readonly expiresIn?: number;
  readonly issuedAt?: Date;
}

/** Plugs into the registry client's token auth. */
export type TokenProvider = (request: TokenRequest) => Promise<TokenResponse>;

/** Renew once less than this fraction of a token's life is left. */
export const DEFAULT_RENEW_BEFORE_RATIO = 0.2;
/** …or once less than this many seconds are left, whichever comes first. */
export const DEFAULT_RENEW_BEFORE_SECONDS = 30;
/** Cached tokens kept at most; the oldest go first. */
export const DEFAULT_MAX_CACHED_TOKENS = 1000;

/** Options of {@link createTokenProvider}. */
export interface TokenProviderOptions {
  readonly issuer: TokenIssuer;
  /** `sub` of the minted tokens, e.g. the site name. */
  readonly subject: string;
  /**
   * Audience when the registry did not name its service (no challenge seen
   * yet); otherwise the challenge's `service` is used. Required for
   * registries that must be called before any challenge.
   */
  readonly service?: string;
  /**
   * Caps the actions granted per repository scope, e.g. `["pull"]` for the
   * primary, so a bug elsewhere can never push there. Default: grant what is asked.
   */
  readonly allowedActions?: readonly string[];
  /** Default {@link DEFAULT_RENEW_BEFORE_RATIO}. */
  readonly renewBeforeRatio?: number;
  /** Default {@link DEFAULT_RENEW_BEFORE_SECONDS}. */
  readonly renewBeforeSeconds?: number;
  /** Default {@link DEFAULT_MAX_CACHED_TOKENS}. */
  readonly maxCachedTokens?: number;
  /** Clock, for tests; default `() => new Date()`. */
  readonly now?: () => Date;
}

interface CacheEntry {
  readonly token: string;
  readonly expiresIn: number;
  readonly issuedAt: Date;
  /** Epoch ms after which the token is renewed. */
  readonly renewAt: number;
}

/**
 * Creates a {@link TokenProvider} that mints tokens with `issuer`.
 * Malformed scopes reject with `ScopeError`; a missing service rejects with `OptionsError`.
 */
export function createTokenProvider(options: TokenProviderOptions): TokenProvider {
  const ratio = options.renewBeforeRatio ?? DEFAULT_RENEW_BEFORE_RATIO;
  const seconds = options.renewBeforeSeconds ?? DEFAULT_RENEW_BEFORE_SECONDS;
  const maxCached = options.maxCachedTokens ?? DEFAULT_MAX_CACHED_TOKENS;
  if (!(ratio >= 0 && ratio < 1)) throw new OptionsError(`renewBeforeRatio must be in [0, 1), got ${ratio}`);
  if (!(seconds >= 0)) throw new OptionsError(`renewBeforeSeconds must not be negative, got ${seconds}`);
  if (!(maxCached >= 1)) throw new OptionsError(`maxCachedTokens must be at least 1, got ${maxCached}`);
  const now = options.now ?? (() => new Date());
  const allowed = options.allowedActions === undefined ? undefined : new Set(options.allowedActions);
  const cache = new Map<string, CacheEntry>();
  const inFlight = new Map<string, Promise<TokenResponse>>();

  const cap = (access: ResourceAccess): ResourceAccess =>
    allowed === undefined ? access : { ...access, actions: access.actions.filter((a) => allowed.has(a)) };

  const mint = async (key: string, audience: string, access: readonly ResourceAccess[]): Promise<TokenResponse> => {
    const issued = await options.issuer.issue({ subject: options.subject, audience, access });
    const lifeMs = issued.expiresIn * 1000;
    // Renew with max(ratio of life, fixed margin) left, but never sooner than half-life,
    // so a very short-lived token is still reused at least briefly.
    const marginMs = Math.min(Math.max(lifeMs * ratio, seconds * 1000), lifeMs / 2);
    const entry: CacheEntry = {
      token: issued.token,
      expiresIn: issued.expiresIn,
      issuedAt: issued.issuedAt,
      renewAt: issued.expiresAt.getTime() - marginMs,
    };
    cache.delete(key);
    cache.set(key, entry);
    while (cache.size > maxCached) {
      const oldest = cache.keys().next();
      if (oldest.done === true) break;
      cache.delete(oldest.value);
    }
    return { token: entry.token, expiresIn: entry.expiresIn, issuedAt: entry.issuedAt };
  };

  return async (request) => {
    const audience = request.service ?? options.service;
    if (audience === undefined || audience === "") {
      throw new OptionsError(`no service name for registry ${request.registry}: the registry sent none and the provider has no default service`);
    }
    const access = normalizeAccess(parseScopes(request.scopes).map(cap));
    const key = `${audience}\u0000${access.map(formatScope).sort().join(" ")}`;
    const cached = cache.get(key);
    if (cached !== undefined && now().getTime() < cached.renewAt) {
      return { token: cached.token, expiresIn: cached.expiresIn, issuedAt: cached.issuedAt };
    }
    // Concurrent requests for the same scopes share one signing operation.
    const pending = inFlight.get(key);
    if (pending !== undefined) return pending;
    const promise = mint(key, audience, access).finally(() => inFlight.delete(key));
    inFlight.set(key, promise);
    return promise;
  };
}

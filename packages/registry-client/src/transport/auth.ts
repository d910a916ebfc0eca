/**
 * Registry authentication: anonymous, basic, and the Docker token flow
 * (`WWW-Authenticate: Bearer realm=…,service=…,scope=…`, distribution
 * "Token Authentication Specification"), with tokens cached per scope set and
 * renewed before they expire, or minted by a pluggable provider.
 */

/** What the caller may authenticate with. */
export type Credentials =
  | { readonly type: "anonymous" }
  | { readonly type: "basic"; readonly username: string; readonly password: string }
  /** A bearer token used as is for every request (no challenge flow). */
  | { readonly type: "token"; readonly token: string }
  /** Tokens from a provider (e.g. `@georep/jwt` minting its own), per challenge. */
  | { readonly type: "provider"; readonly provider: TokenProvider };

/** What a token provider is asked for: the registry's challenge and the scopes needed. */
export interface TokenRequest {
  /** The registry origin, e.g. `http://127.0.0.1:5000`. */
  readonly registry: string;
  readonly realm: string;
  readonly service: string | undefined;
  /** Docker scopes: `repository:team/app:pull,push`, `registry:catalog:*`. */
  readonly scopes: readonly string[];
}

/** A token and, when known, how long it lives. */
export interface IssuedToken {
  readonly token: string;
  /** Seconds from `issuedAt` (or from now) until the token expires. */
  readonly expiresIn?: number | undefined;
  /** Time of issue: ISO-8601 as token endpoints report it, or a Date from a local minter. */
  readonly issuedAt?: string | Date | undefined;
}

/** Mints or fetches a token for a challenge; `@georep/jwt`'s `createTokenProvider` fits. */
export type TokenProvider = (request: TokenRequest) => Promise<IssuedToken>;

/** A parsed `WWW-Authenticate` challenge. */
export interface Challenge {
  /** Lower-cased: "bearer", "basic", … */
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses a `WWW-Authenticate` header (RFC 9110 §11.6.1): the first
 * challenge's scheme and its auth-params, quoted strings unescaped.
 * Returns `undefined` for an empty or unparseable header.
 */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)\s*(.*)$/s.exec(header);
  if (match === null) return undefined;
  const scheme = match[1]!.toLowerCase();
  const params: Record<string, string> = {};
  const rest = match[2] ?? "";
  const param = /\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(?:,|$)/gy;
  let m: RegExpExecArray | null;
  while ((m = param.exec(rest)) !== null && m[0] !== "") {
    params[m[1]!.toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : (m[3] ?? "");
  }
  return { scheme, params };
}

/** Seconds before expiry at which a cached token is renewed. */
export const DEFAULT_TOKEN_RENEW_MARGIN_S = 30;
/** Lifetime assumed when a token endpoint says nothing (the token spec's default). */
export const DEFAULT_TOKEN_LIFETIME_S = 60;

interface CachedToken {
  readonly token: string;
  /** Epoch ms after which the token must not be sent. */
  readonly renewAt: number;
}

/**
 * Tokens by scope set. Concurrent requests for the same scopes share one
 * fetch; a token is renewed when it is within the margin of its expiry (or
 * past half its life, for short-lived tokens), so a long copy never sends an
 * expired one.
 */
export class TokenCache {
  readonly #tokens = new Map<string, CachedToken>();
  readonly #inflight = new Map<string, Promise<string>>();

  constructor(
    private readonly fetchToken: (scopes: readonly string[]) => Promise<IssuedToken>,
    private readonly now: () => number = Date.now,
    private readonly renewMarginS: number = DEFAULT_TOKEN_RENEW_MARGIN_S,
  ) {}

  static key(scopes: readonly string[]): string {
    return [...new Set(scopes)].sort().join(" ");
  }

  /** A valid token for `scopes`, fetched when missing or about to expire. */
  async get(scopes: readonly string[]): Promise<string> {
    const key = TokenCache.key(scopes);
    const cached = this.#tokens.get(key);
    if (cached !== undefined && this.now() < cached.renewAt) return cached.token;
    const pending = this.#inflight.get(key);
    if (pending !== undefined) return pending;
    const fetching = (async () => {
      const issued = await this.fetchToken(scopes);
      const lifetimeS = issued.expiresIn ?? DEFAULT_TOKEN_LIFETIME_S;
      const issuedAt = issued.issuedAt === undefined ? Number.NaN : issued.issuedAt instanceof Date ? issued.issuedAt.getTime() : Date.parse(issued.issuedAt);
      const start = Number.isNaN(issuedAt) ? this.now() : Math.min(issuedAt, this.now());
      const margin = Math.min(this.renewMarginS, lifetimeS / 2);
      this.#tokens.set(key, { token: issued.token, renewAt: start + (lifetimeS - margin) * 1000 });
      return issued.token;
    })().finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, fetching);
    return fetching;
  }

  /** Forgets the token for `scopes` (the registry refused it). */
  invalidate(scopes: readonly string[]): void {
    this.#tokens.delete(TokenCache.key(scopes));
  }
}

/** Scope for a repository: `repository:<name>:<actions>`. */
export function repositoryScope(repository: string, actions: readonly ("pull" | "push" | "delete" | "*")[]): string {
  return `repository:${repository}:${actions.join(",")}`;
}

/** Scope for listing the catalog. */
export const CATALOG_SCOPE = "registry:catalog:*";

/** `Authorization: Basic …` for a username and password. */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, "utf8").toString("base64")}`;
}

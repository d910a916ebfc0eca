/**
 * Credentials for the primary registry: tokens minted with the key the
 * sites share (pull and catalog only), basic auth, or none.
 */
import { createTokenIssuer, createTokenProvider, formatScope, loadSigningKey, parseScopes } from "@georep/jwt";
import type { TokenProvider as JwtTokenProvider } from "@georep/jwt";
import type { Credentials, TokenProvider } from "@georep/registry-client";

/**
 * Narrows what a token may grant to what the dispatcher needs from the
 * primary: `pull` on repositories and the catalog (`registry:catalog:*`).
 *
 * `createTokenProvider`'s `allowedActions` caps every resource type alike,
 * so `["pull"]` would strip the catalog's `*` and `["pull", "*"]` would let a
 * `repository:x:*` scope through; the scopes are narrowed here instead.
 */
export function pullAndCatalogOnly(provider: JwtTokenProvider): TokenProvider {
  return async (request) => {
    const scopes = parseScopes(request.scopes)
      .map((access) =>
        access.type === "registry" && access.name === "catalog"
          ? access
          : { ...access, actions: access.type === "repository" ? access.actions.filter((a) => a === "pull") : [] },
      )
      .filter((access) => access.actions.length > 0)
      .map(formatScope);
    return provider({ registry: request.registry, realm: request.realm, service: request.service, scopes });
  };
}

/** What {@link primaryCredentials} reads (a subset of the config). */
export interface PrimaryCredentialsConfig {
  readonly SITE_NAME: string;
  readonly REGISTRY_TOKEN_KEY_FILE?: string | undefined;
  readonly REGISTRY_TOKEN_CERT_FILE?: string | undefined;
  readonly REGISTRY_TOKEN_ISSUER: string;
  readonly REGISTRY_TOKEN_SERVICE?: string | undefined;
  readonly REGISTRY_TOKEN_TTL_SECONDS?: number | undefined;
  readonly PRIMARY_REGISTRY_USERNAME?: string | undefined;
  readonly PRIMARY_REGISTRY_PASSWORD?: string | undefined;
}

/**
 * The credentials the configuration asks for: a token provider when a
 * signing key is given (subject = the site name), basic auth with a
 * username and password, anonymous otherwise.
 *
 * @throws the `@georep/jwt` key errors when the key or certificate cannot be used.
 */
export async function primaryCredentials(config: PrimaryCredentialsConfig): Promise<Credentials> {
  if (config.REGISTRY_TOKEN_KEY_FILE !== undefined) {
    const key = await loadSigningKey({
      keyPath: config.REGISTRY_TOKEN_KEY_FILE,
      ...(config.REGISTRY_TOKEN_CERT_FILE === undefined ? {} : { certificatePath: config.REGISTRY_TOKEN_CERT_FILE }),
    });
    const issuer = createTokenIssuer({ issuer: config.REGISTRY_TOKEN_ISSUER, key, ...(config.REGISTRY_TOKEN_TTL_SECONDS === undefined ? {} : { ttlSeconds: config.REGISTRY_TOKEN_TTL_SECONDS }) });
    const provider = createTokenProvider({
      issuer,
      subject: config.SITE_NAME,
      ...(config.REGISTRY_TOKEN_SERVICE === undefined ? {} : { service: config.REGISTRY_TOKEN_SERVICE }),
    });
    return { type: "provider", provider: pullAndCatalogOnly(provider) };
  }
  if (config.PRIMARY_REGISTRY_USERNAME !== undefined && config.PRIMARY_REGISTRY_PASSWORD !== undefined) {
    return { type: "basic", username: config.PRIMARY_REGISTRY_USERNAME, password: config.PRIMARY_REGISTRY_PASSWORD };
  }
  return { type: "anonymous" };
}

/**
 * Registry clients of a secondary's status service: the primary's registry
 * and the site's own, both read-only. Tokens minted with the sites' shared
 * key grant `pull` only, so nothing here can ever write to a registry.
 */
import { createTokenIssuer, createTokenProvider, loadSigningKey } from "@georep/jwt";
import { createRegistryClient } from "@georep/registry-client";
import type { Credentials, RegistryClient } from "@georep/registry-client";
import type { RegistryEndpointConfig } from "./config.js";

/**
 * Retries of a status read: a person or a CI job is waiting for the answer,
 * and the replication wait polls anyway, so a dead registry must fail fast.
 */
export const STATUS_REGISTRY_RETRY = { retries: 1, baseDelayMs: 100, maxDelayMs: 500, maxRetryAfterMs: 1_000 } as const;
/** Response headers must arrive within this time. */
export const STATUS_REGISTRY_HEADERS_TIMEOUT_MS = 10_000;

/** Credentials of one side; loads (and checks) the signing key when tokens are minted locally. */
export async function credentialsFor(endpoint: RegistryEndpointConfig): Promise<Credentials> {
  const auth = endpoint.auth;
  switch (auth.type) {
    case "anonymous":
      return { type: "anonymous" };
    case "basic":
      return { type: "basic", username: auth.username, password: auth.password };
    case "token-key": {
      const key = await loadSigningKey({ keyPath: auth.keyFile, ...(auth.certFile === undefined ? {} : { certificatePath: auth.certFile }) });
      const issuer = createTokenIssuer({ issuer: auth.issuer, key });
      const provider = createTokenProvider({
        issuer,
        subject: auth.subject,
        allowedActions: ["pull"],
        ...(auth.service === undefined ? {} : { service: auth.service }),
      });
      return { type: "provider", provider };
    }
  }
}

/** A read-only client for one side. */
export async function createRegistryFromEndpoint(endpoint: RegistryEndpointConfig): Promise<RegistryClient> {
  return createRegistryClient({
    url: endpoint.url,
    credentials: await credentialsFor(endpoint),
    maxConcurrentRequests: endpoint.maxConcurrentRequests,
    headersTimeoutMs: STATUS_REGISTRY_HEADERS_TIMEOUT_MS,
    retry: STATUS_REGISTRY_RETRY,
    userAgent: "georep-status",
  });
}

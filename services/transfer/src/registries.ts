/**
 * Registry clients from the configuration: basic credentials, tokens minted
 * locally with the sites' shared signing key (`@georep/jwt`), or anonymous.
 */
import { createTokenIssuer, createTokenProvider, loadSigningKey } from "@georep/jwt";
import { createRegistryClient } from "@georep/registry-client";
import type { Credentials, RegistryClient, TransportEvent } from "@georep/registry-client";
import type { Dispatcher } from "undici";
import type { RegistryEndpointConfig } from "./config.js";

/** Options shared by both clients. */
export interface RegistryClientFactoryOptions {
  /** The pool the clients use; the caller closes it. */
  readonly dispatcher?: Dispatcher;
  readonly userAgent?: string;
  readonly onEvent?: (event: TransportEvent) => void;
}

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
      const issuer = createTokenIssuer({ issuer: auth.issuer, key, ...(auth.ttlSeconds === undefined ? {} : { ttlSeconds: auth.ttlSeconds }) });
      return { type: "provider", provider: createTokenProvider({ issuer, subject: auth.subject, allowedActions: auth.allowedActions }) };
    }
  }
}

/** A client for one side. */
export async function createRegistryFromEndpoint(endpoint: RegistryEndpointConfig, options: RegistryClientFactoryOptions = {}): Promise<RegistryClient> {
  return createRegistryClient({
    url: endpoint.url,
    credentials: await credentialsFor(endpoint),
    maxConcurrentRequests: endpoint.maxConcurrentRequests,
    userAgent: options.userAgent ?? "georep-transfer",
    ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
    ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
  });
}

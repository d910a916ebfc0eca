/**
 * The one place that talks HTTP to a registry: undici requests with a
 * per-host concurrency limit, timeouts, auth (challenge flow, token
 * renewal), redirects for blob downloads, bounded retries with backoff and
 * jitter honouring Retry-After, and the mapping of failures to typed errors.
 */
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import type { Dispatcher } from "undici";
import { AuthError, NetworkError, RegistryHttpError, errorFromResponse, isRetryableStatus } from "../errors.js";
import { TokenCache, basicAuthorization, parseChallenge } from "./auth.js";
import type { Credentials, IssuedToken } from "./auth.js";
import { Semaphore } from "./semaphore.js";

/** Requests in flight to one registry at once. */
export const DEFAULT_MAX_CONCURRENT_REQUESTS = 8;
/** Time to wait for response headers. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 30_000;
/** Time a response or request body may stall between chunks. */
export const DEFAULT_BODY_TIMEOUT_MS = 60_000;
/** Redirects followed for a blob download (S3/CDN presigned URLs). */
const MAX_REDIRECTS = 5;
/** Error bodies are read up to this size for the OCI error code. */
const MAX_ERROR_BODY = 64 * 1024;

/** Bounded retries: exponential backoff with jitter, Retry-After honoured up to `maxRetryAfterMs`. */
export interface RetryPolicy {
  /** Retries after the first attempt. */
  readonly retries: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 4, baseDelayMs: 250, maxDelayMs: 8_000, maxRetryAfterMs: 60_000 };

/** What the transport reports (retries, token fetches); default: nothing. */
export type TransportEvent =
  | { readonly type: "retry"; readonly method: string; readonly url: string; readonly attempt: number; readonly delayMs: number; readonly reason: string }
  | { readonly type: "token"; readonly scopes: readonly string[]; readonly realm: string }
  | { readonly type: "challenge"; readonly scheme: string };

export interface TransportOptions {
  /** Registry origin: `http://127.0.0.1:5000`, `https://registry.example.com`. */
  readonly url: string;
  readonly credentials?: Credentials;
  /** Injected pool; the owner closes it. Defaults to undici's global dispatcher. */
  readonly dispatcher?: Dispatcher;
  readonly maxConcurrentRequests?: number;
  readonly headersTimeoutMs?: number;
  readonly bodyTimeoutMs?: number;
  readonly retry?: Partial<RetryPolicy>;
  readonly userAgent?: string;
  readonly onEvent?: (event: TransportEvent) => void;
}

export type RequestBody = string | Uint8Array;

export interface RequestSpec {
  readonly method: "GET" | "HEAD" | "PUT" | "POST" | "PATCH" | "DELETE";
  /** A path under the registry (`/v2/…`) or an absolute URL (upload `Location`). */
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** A replayable body: retried and re-sent after an auth challenge. */
  readonly body?: RequestBody;
  /** A streamed body: sent once (no retry, auth prepared beforehand). */
  readonly stream?: Readable;
  /** Docker token scopes this request needs. */
  readonly scopes: readonly string[];
  /** Statuses that are answers, not failures (e.g. 404 for a HEAD that checks existence). */
  readonly accept: readonly number[];
  readonly repository?: string;
  readonly digest?: string;
  /** Follow redirects without credentials (blob downloads). */
  readonly followRedirects?: boolean;
  readonly signal?: AbortSignal;
}

export interface TransportResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The response body; consume or `dump()` it to free the connection slot. */
  readonly body: Dispatcher.ResponseData["body"];
  /** The URL that answered (after redirects). */
  readonly url: string;
}

/** One registry's HTTP transport. */
export interface Transport {
  readonly origin: string;
  send(spec: RequestSpec): Promise<TransportResponse>;
  /** Learns the auth scheme and fetches a token for `scopes` so that a streamed request will not be challenged. */
  prepare(scopes: readonly string[]): Promise<void>;
  /** Resolves an upload `Location` against the registry. */
  resolve(location: string): string;
}

type AuthState = { readonly scheme: "unknown" | "none" | "basic" } | { readonly scheme: "bearer"; readonly realm: string; readonly service: string | undefined };

const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);

function isNetworkError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && NETWORK_CODES.has(code);
}

function header(headers: TransportResponse["headers"], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

async function readLimited(body: TransportResponse["body"]): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const b = chunk as Buffer;
      if (size < MAX_ERROR_BODY) chunks.push(b.subarray(0, MAX_ERROR_BODY - size));
      size += b.length;
    }
  } catch {
    // a broken error body still leaves the status to report
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Creates the transport of one registry. */
export function createTransport(options: TransportOptions): Transport {
  const origin = new URL(options.url).origin;
  const credentials: Credentials = options.credentials ?? { type: "anonymous" };
  const limiter = new Semaphore(options.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS);
  const retry: RetryPolicy = { ...DEFAULT_RETRY, ...options.retry };
  const emit = options.onEvent ?? (() => undefined);
  const baseHeaders: Record<string, string> = { "user-agent": options.userAgent ?? "georep-registry-client" };
  let auth: AuthState = credentials.type === "token" ? { scheme: "none" } : { scheme: "unknown" };

  const tokens = new TokenCache(async (scopes) => {
    if (auth.scheme !== "bearer") throw new Error("no bearer challenge to answer");
    emit({ type: "token", scopes, realm: auth.realm });
    if (credentials.type === "provider") return credentials.provider({ registry: origin, realm: auth.realm, service: auth.service, scopes });
    return fetchToken(auth.realm, auth.service, scopes);
  });

  /** GET realm?service&scope… with basic credentials when we have them (token spec). */
  async function fetchToken(realm: string, service: string | undefined, scopes: readonly string[]): Promise<IssuedToken> {
    const url = new URL(realm);
    if (service !== undefined) url.searchParams.set("service", service);
    for (const scope of scopes) url.searchParams.append("scope", scope);
    const headers: Record<string, string> = { ...baseHeaders };
    if (credentials.type === "basic") headers.authorization = basicAuthorization(credentials.username, credentials.password);
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, { method: "GET", headers, ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}), headersTimeout: options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS, bodyTimeout: options.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS });
    } catch (error) {
      throw new NetworkError({ method: "GET", url: url.toString(), cause: error });
    }
    const text = await readLimited(res.body);
    if (res.statusCode !== 200) {
      const failure = errorFromResponse({ method: "GET", url: url.toString(), status: res.statusCode, headers: res.headers, body: text });
      throw new AuthError({ method: "GET", url: url.toString(), status: res.statusCode, ociCode: failure.ociCode, registryMessage: `token endpoint refused: ${failure.message}` });
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch (error) {
      throw new AuthError({ method: "GET", url: url.toString(), status: res.statusCode, registryMessage: "token endpoint answered with invalid JSON", cause: error });
    }
    const token = typeof body.token === "string" ? body.token : body.access_token;
    if (typeof token !== "string" || token === "") {
      throw new AuthError({ method: "GET", url: url.toString(), status: res.statusCode, registryMessage: "token endpoint answered without a token" });
    }
    return {
      token,
      expiresIn: typeof body.expires_in === "number" ? body.expires_in : undefined,
      issuedAt: typeof body.issued_at === "string" ? body.issued_at : undefined,
    };
  }

  async function authorization(scopes: readonly string[]): Promise<string | undefined> {
    if (credentials.type === "token") return `Bearer ${credentials.token}`;
    if (auth.scheme === "basic" && credentials.type === "basic") return basicAuthorization(credentials.username, credentials.password);
    if (auth.scheme === "bearer") return `Bearer ${await tokens.get(scopes)}`;
    return undefined;
  }

  /** Learns from a 401 how to authenticate; false when there is nothing new to try. */
  function learn(challengeHeader: string | undefined): boolean {
    const challenge = parseChallenge(challengeHeader);
    if (challenge === undefined) return false;
    emit({ type: "challenge", scheme: challenge.scheme });
    if (challenge.scheme === "bearer" && challenge.params.realm !== undefined) {
      auth = { scheme: "bearer", realm: challenge.params.realm, service: challenge.params.service };
      return credentials.type !== "token";
    }
    if (challenge.scheme === "basic" && credentials.type === "basic") {
      const changed = auth.scheme !== "basic";
      auth = { scheme: "basic" };
      return changed;
    }
    return false;
  }

  const resolve = (location: string) => new URL(location, origin).toString();

  function backoff(attempt: number, retryAfterMs: number | undefined): number {
    const exp = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** attempt);
    const jittered = exp / 2 + Math.random() * (exp / 2);
    return retryAfterMs === undefined ? jittered : Math.max(jittered, Math.min(retryAfterMs, retry.maxRetryAfterMs));
  }

  async function once(spec: RequestSpec, url: string, withAuth: boolean): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { ...baseHeaders, ...spec.headers };
    if (withAuth) {
      const value = await authorization(spec.scopes);
      if (value !== undefined) headers.authorization = value;
    }
    const body = spec.stream ?? spec.body;
    return request(url, {
      method: spec.method,
      headers,
      ...(body === undefined ? {} : { body }),
      ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
      ...(spec.signal ? { signal: spec.signal } : {}),
      headersTimeout: options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
      bodyTimeout: options.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS,
    });
  }

  async function send(spec: RequestSpec): Promise<TransportResponse> {
    const replayable = spec.stream === undefined;
    let attempt = 0;
    let challenged = false;
    for (;;) {
      const release = await limiter.acquire();
      let url = spec.url.startsWith("/") ? `${origin}${spec.url}` : spec.url;
      let res: Dispatcher.ResponseData;
      try {
        res = await once(spec, url, true);
        for (let hops = 0; spec.followRedirects === true && [301, 302, 303, 307, 308].includes(res.statusCode) && hops < MAX_REDIRECTS; hops++) {
          const location = header(res.headers, "location");
          if (location === undefined) break;
          await res.body.dump();
          const next = new URL(location, url).toString();
          // Credentials stay with the registry; a presigned URL carries its own.
          const sameOrigin = new URL(next).origin === origin;
          url = next;
          res = await once(spec, url, sameOrigin);
        }
      } catch (error) {
        release();
        if (error instanceof RegistryHttpError || error instanceof NetworkError) throw error;
        const timeout = ["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "UND_ERR_CONNECT_TIMEOUT"].includes((error as { code?: string }).code ?? "");
        if (!isNetworkError(error)) throw error;
        const failure = new NetworkError({ method: spec.method, url, cause: error, repository: spec.repository, digest: spec.digest, timeout });
        if (!replayable || attempt >= retry.retries) throw failure;
        const delayMs = backoff(attempt, undefined);
        emit({ type: "retry", method: spec.method, url, attempt: attempt + 1, delayMs, reason: failure.causeCode ?? failure.message });
        attempt++;
        await sleep(delayMs);
        continue;
      }

      const status = res.statusCode;
      if (spec.accept.includes(status)) {
        let released = false;
        const done = () => {
          if (!released) {
            released = true;
            release();
          }
        };
        res.body.once("close", done);
        res.body.once("end", done);
        res.body.once("error", done);
        if (spec.method === "HEAD") {
          // no body to consume
          await res.body.dump();
          done();
        }
        return { status, headers: res.headers, body: res.body, url };
      }

      const text = spec.method === "HEAD" ? "" : await readLimited(res.body);
      if (spec.method === "HEAD") await res.body.dump();
      release();
      const failure = errorFromResponse({ method: spec.method, url, status, headers: res.headers, body: text, repository: spec.repository, digest: spec.digest });
      if (status === 401 && !challenged && replayable) {
        challenged = true;
        if (auth.scheme === "bearer") tokens.invalidate(spec.scopes);
        const learned = learn(header(res.headers, "www-authenticate"));
        if (learned || auth.scheme === "bearer") continue;
      }
      if (isRetryableStatus(status) && replayable && attempt < retry.retries) {
        const delayMs = backoff(attempt, failure.retryAfterMs);
        emit({ type: "retry", method: spec.method, url, attempt: attempt + 1, delayMs, reason: `HTTP ${status}` });
        attempt++;
        await sleep(delayMs);
        continue;
      }
      throw failure;
    }
  }

  async function prepare(scopes: readonly string[]): Promise<void> {
    if (auth.scheme === "unknown") {
      const res = await send({ method: "GET", url: "/v2/", scopes, accept: [200, 401] });
      await res.body.dump();
      if (res.status === 401) learn(header(res.headers, "www-authenticate"));
      else auth = { scheme: "none" };
    }
    if (auth.scheme === "bearer") await tokens.get(scopes);
  }

  return { origin, send, prepare, resolve };
}

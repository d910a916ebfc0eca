/**
 * Typed client of the status service's HTTP API (docs/status-api.md, v1).
 * HTTP failures become CLI errors here and nowhere else: connection
 * failures and request timeouts → {@link UnreachableError}, 401/403 →
 * {@link AuthError}, other error bodies `{code, message}` → {@link ApiError},
 * anything else → {@link ResponseError}.
 */
import { ApiError, AuthError, ResponseError, UnreachableError } from "./errors.js";
import type { TokenSource } from "./errors.js";

/** How long an ordinary request may take before the service counts as unreachable. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;
/** Extra time a replication wait gets over its own timeout before the request is abandoned. */
export const WAIT_GRACE_MS = 15_000;
/** Largest page the repository list serves. */
export const MAX_PAGE_SIZE = 500;

type Timestamp = string;

/** `GET /api/v1/site`. */
export interface SiteSummary {
  readonly site: string;
  readonly role: "primary" | "secondary";
  readonly paused: boolean;
  readonly counts: { readonly pending: number; readonly started: number; readonly synced: number; readonly failed: number };
  readonly total: number;
  readonly progress: number;
  readonly lag_seconds: { readonly p50: number | null; readonly p99: number | null };
  readonly bytes_copied: number;
  readonly blobs_copied: number;
  readonly blobs_mounted: number;
  readonly last_event_at: Timestamp | null;
  readonly last_synced_at: Timestamp | null;
  readonly missing_on_primary: number;
  readonly unremovable_tags: number;
  readonly events: { readonly total: number; readonly last_id: string | null; readonly dead_letters: number } | null;
  readonly generated_at: Timestamp;
}

/** A site's periodic report (the schema's `SiteStatusReport` plus `paused`). */
export interface SiteStatusReport {
  readonly site: string;
  readonly role: "primary" | "secondary";
  readonly counts: { readonly pending: number; readonly started: number; readonly synced: number; readonly failed: number };
  readonly lag_seconds: { readonly p50: number | null; readonly p99: number | null };
  readonly bytes_copied: number;
  readonly last_event_at: Timestamp | null;
  readonly reported_at: Timestamp;
  readonly paused?: boolean;
}

/** One entry of `GET /api/v1/sites`. */
export interface SiteView {
  readonly site: string;
  readonly role: "primary" | "secondary";
  readonly last_seen_at: Timestamp;
  readonly stale: boolean;
  readonly health: "ok" | "failing" | "stale";
  readonly report: SiteStatusReport;
}

/** A tracking row. */
export interface RepositoryRow {
  readonly repository: string;
  readonly state: "pending" | "started" | "synced" | "failed";
  readonly retry_count: number;
  readonly retry_at: Timestamp | null;
  readonly last_sync_failure: string | null;
  readonly last_synced_at: Timestamp | null;
  readonly last_event_at: Timestamp | null;
  readonly updated_at: Timestamp;
  readonly pending_generation: number;
  readonly synced_generation: number;
  readonly verified_at: Timestamp | null;
  readonly verification_checksum: string | null;
  readonly bytes_copied: number;
  readonly blobs_copied: number;
  readonly blobs_mounted: number;
  readonly last_duration_ms: number | null;
  readonly missing_on_primary: boolean;
  readonly unremovable_tags: readonly { readonly tag: string; readonly reason: string }[];
}

/** `GET /api/v1/repositories`. */
export interface RepositoryPage {
  readonly items: readonly RepositoryRow[];
  readonly next_cursor: string | null;
}

/** A tag on both sides. */
export interface TagComparison {
  readonly tag: string;
  readonly primary_digest: string | null;
  readonly secondary_digest: string | null;
  readonly in_sync: boolean;
}

/** One sync attempt. */
export interface SyncRecord {
  readonly started_at: Timestamp;
  readonly finished_at: Timestamp | null;
  readonly outcome: "synced" | "failed";
  readonly generation: number;
  readonly reason: "event" | "backfill" | "retry" | "resync" | null;
  readonly duration_ms: number | null;
  readonly bytes_copied: number;
  readonly blobs_copied: number;
  readonly blobs_mounted: number;
  readonly error: string | null;
}

/** `GET /api/v1/repositories/<name>`. */
export interface RepositoryDetail {
  readonly repository: RepositoryRow;
  readonly tags: readonly TagComparison[];
  readonly tags_error: string | null;
  readonly recent_syncs: readonly SyncRecord[];
}

/** `GET /api/v1/replication/wait`. */
export interface WaitResult {
  readonly repository: string;
  readonly tag: string | null;
  readonly digest: string;
  readonly waited_ms: number;
}

/** Query of the repository list. */
export interface RepositoryQuery {
  readonly state?: string;
  readonly name?: string;
  readonly sort?: "repository" | "updated_at" | "last_synced_at" | "retry_count";
  readonly order?: "asc" | "desc";
  readonly limit?: number;
  readonly cursor?: string;
}

/** The status service of one site. */
export interface StatusClient {
  readonly url: string;
  site(): Promise<SiteSummary>;
  sites(): Promise<{ readonly items: readonly SiteView[] }>;
  repositories(query?: RepositoryQuery): Promise<RepositoryPage>;
  repository(name: string): Promise<RepositoryDetail>;
  resyncRepository(name: string): Promise<{ readonly accepted: number }>;
  resync(scope: "all" | "failed"): Promise<{ readonly accepted: number }>;
  pause(): Promise<{ readonly paused: boolean }>;
  resume(): Promise<{ readonly paused: boolean }>;
  waitForReplication(request: { repository: string; timeoutSeconds: number } & ({ tag: string } | { digest: string })): Promise<WaitResult>;
}

/** Options of {@link createStatusClient}. */
export interface StatusClientOptions {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** Admin token, sent only on admin calls. */
  readonly token?: string;
  /** Where the token came from, for the authentication error message. */
  readonly tokenSource?: TokenSource;
  readonly requestTimeoutMs?: number;
  /** `fetch` to use (default: the global one). */
  readonly fetch?: typeof fetch;
}

/** `/api/v1/repositories/team/app`: each path segment encoded, the slashes kept (the route is a wildcard). */
export const repositoryPath = (name: string) => `/api/v1/repositories/${name.split("/").map(encodeURIComponent).join("/")}`;

/**
 * Turns an unsuccessful answer into the CLI error for it.
 * @param body the response text (may be anything).
 */
export function errorFromResponse(options: { url: string; status: number; body: string; tokenSource: TokenSource }): Error {
  let parsed: unknown;
  try {
    parsed = JSON.parse(options.body);
  } catch {
    parsed = undefined;
  }
  const fields = typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : {};
  const code = typeof fields.code === "string" ? fields.code : undefined;
  const message = typeof fields.message === "string" ? fields.message : undefined;
  if (options.status === 401 || options.status === 403) {
    return new AuthError({ status: options.status, url: options.url, tokenSource: options.tokenSource, serviceMessage: message });
  }
  if (code === undefined || message === undefined) {
    const excerpt = options.body.replace(/\s+/g, " ").trim().slice(0, 120);
    return new ResponseError(options.url, options.status, `no {code, message} error body${excerpt === "" ? "" : `: ${excerpt}`}`);
  }
  return new ApiError({ status: options.status, code, message, url: options.url });
}

/** Why a fetch failed, in words: the timeout, or the connection error's code and message (undici puts it in `cause`). */
export function networkReason(error: unknown, timeoutMs: number): string {
  if (error instanceof DOMException && error.name === "TimeoutError") return `no answer within ${timeoutMs < 1000 ? `${timeoutMs} ms` : `${Math.round(timeoutMs / 1000)} s`}`;
  type Cause = { code?: string; message?: string; errors?: Cause[] };
  const cause = (error as { cause?: Cause }).cause;
  // Happy eyeballs (`localhost` → ::1 and 127.0.0.1) fails with an AggregateError holding one error per address.
  const first = cause?.code === undefined ? (cause?.errors?.[0] ?? cause) : cause;
  if (first?.code === "ECONNREFUSED") return "connection refused";
  if (first?.code !== undefined) return `${first.code}${first.message ? ` (${first.message})` : ""}`;
  if (first?.message) return first.message;
  return error instanceof Error ? error.message : String(error);
}

class StatusClientImpl implements StatusClient {
  readonly url: string;
  readonly #token: string | undefined;
  readonly #tokenSource: TokenSource;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(options: StatusClientOptions) {
    this.url = options.url.replace(/\/+$/, "");
    this.#token = options.token;
    this.#tokenSource = options.token === undefined ? "none" : (options.tokenSource ?? "flag");
    this.#timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#fetch = options.fetch ?? fetch;
  }

  async #request<T>(method: "GET" | "POST", path: string, options: { query?: Record<string, string | number | undefined>; body?: unknown; admin?: boolean; timeoutMs?: number } = {}): Promise<T> {
    const url = new URL(`${this.url}${path}`);
    for (const [key, value] of Object.entries(options.query ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
    const headers: Record<string, string> = { accept: "application/json" };
    if (options.body !== undefined) headers["content-type"] = "application/json";
    if (options.admin === true && this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const shown = `${url.origin}${url.pathname}`;
    let response: Response;
    let text: string;
    try {
      response = await this.#fetch(url, {
        method,
        headers,
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
        signal: AbortSignal.timeout(timeoutMs),
        redirect: "error",
      });
      text = await response.text();
    } catch (error) {
      throw new UnreachableError(this.url, networkReason(error, timeoutMs), error);
    }
    if (!response.ok) throw errorFromResponse({ url: shown, status: response.status, body: text, tokenSource: this.#tokenSource });
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ResponseError(shown, response.status, `not JSON (${response.headers.get("content-type") ?? "no content-type"})`);
    }
  }

  site() {
    return this.#request<SiteSummary>("GET", "/api/v1/site");
  }

  sites() {
    return this.#request<{ items: SiteView[] }>("GET", "/api/v1/sites");
  }

  repositories(query: RepositoryQuery = {}) {
    return this.#request<RepositoryPage>("GET", "/api/v1/repositories", { query: { ...query } });
  }

  repository(name: string) {
    return this.#request<RepositoryDetail>("GET", repositoryPath(name));
  }

  resyncRepository(name: string) {
    return this.#request<{ accepted: number }>("POST", `${repositoryPath(name)}/resync`, { admin: true });
  }

  resync(scope: "all" | "failed") {
    return this.#request<{ accepted: number }>("POST", "/api/v1/resync", { admin: true, body: { scope } });
  }

  pause() {
    return this.#request<{ paused: boolean }>("POST", "/api/v1/pause", { admin: true });
  }

  resume() {
    return this.#request<{ paused: boolean }>("POST", "/api/v1/resume", { admin: true });
  }

  waitForReplication(request: { repository: string; timeoutSeconds: number } & ({ tag: string } | { digest: string })) {
    return this.#request<WaitResult>("GET", "/api/v1/replication/wait", {
      query: { repository: request.repository, ...("digest" in request ? { digest: request.digest } : { tag: request.tag }), timeout: request.timeoutSeconds },
      timeoutMs: request.timeoutSeconds * 1000 + WAIT_GRACE_MS,
    });
  }
}

/** A client of one status service. */
export function createStatusClient(options: StatusClientOptions): StatusClient {
  return new StatusClientImpl(options);
}

/**
 * Every repository matching `query`, following `next_cursor`, or the first
 * `limit` of them. `next_cursor` of the result is where a further listing
 * would continue (`null` when everything was listed).
 */
export async function listRepositories(client: StatusClient, query: Omit<RepositoryQuery, "cursor" | "limit">, limit?: number): Promise<RepositoryPage> {
  const items: RepositoryRow[] = [];
  let cursor: string | undefined;
  const seen = new Set<string>();
  for (;;) {
    const remaining = limit === undefined ? MAX_PAGE_SIZE : Math.min(MAX_PAGE_SIZE, limit - items.length);
    const page = await client.repositories({ ...query, limit: remaining, ...(cursor === undefined ? {} : { cursor }) });
    items.push(...page.items.slice(0, remaining));
    const done = page.next_cursor === null || page.items.length === 0 || (limit !== undefined && items.length >= limit);
    if (done) return { items, next_cursor: page.next_cursor };
    if (seen.has(page.next_cursor)) throw new ResponseError(`${client.url}/api/v1/repositories`, 200, `next_cursor ${page.next_cursor} repeats`);
    seen.add(page.next_cursor);
    cursor = page.next_cursor;
  }
}

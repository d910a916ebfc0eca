/**
 * Retries against scripted responses: 429 with Retry-After, 503, and the
 * 4xx statuses that must not be retried.
 */
import type { ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { OCI_ERROR_CODES, RegistryHttpError, createRegistryClient } from "../../src/index.js";
import type { TransportEvent } from "../../src/index.js";
import { sendJson, sendOciError, startFixture } from "../fixtures/http-fixture.js";
import type { HttpFixture } from "../fixtures/http-fixture.js";

const TOO_MANY = { errors: [{ code: "TOOMANYREQUESTS", message: "slow down" }] };
/** Small backoff so that any wait near a second can only come from Retry-After. */
const FAST = { retries: 3, baseDelayMs: 5, maxDelayMs: 20, maxRetryAfterMs: 5_000 };

let fixture: HttpFixture | undefined;
afterEach(async () => {
  await fixture?.stop();
  fixture = undefined;
});

/** A fixture answering `/v2/` with the scripted responses in turn, then 200 for ever. */
async function scripted(...steps: ((res: ServerResponse) => void)[]): Promise<HttpFixture> {
  let n = 0;
  fixture = await startFixture((_req, res) => {
    const step = steps[n++];
    if (step === undefined) sendJson(res, 200, {});
    else step(res);
  });
  return fixture;
}

const tooMany = (retryAfter: string) => (res: ServerResponse) => sendJson(res, 429, TOO_MANY, { "retry-after": retryAfter });

describe("429 Too Many Requests", () => {
  it("waits for Retry-After, reports the retry and then succeeds", async () => {
    const fx = await scripted(tooMany("1"));
    const events: TransportEvent[] = [];
    const client = createRegistryClient({ url: fx.url, retry: FAST, onEvent: (e) => events.push(e) });

    const started = performance.now();
    await client.ping();
    const elapsed = performance.now() - started;

    expect(fx.hits("GET", "/v2/")).toHaveLength(2);
    expect(elapsed).toBeGreaterThanOrEqual(950);
    const retries = events.filter((e) => e.type === "retry");
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatchObject({ type: "retry", method: "GET", attempt: 1, reason: "HTTP 429" });
    expect((retries[0] as Extract<TransportEvent, { type: "retry" }>).delayMs).toBeGreaterThanOrEqual(1000);
    // The second request came a Retry-After later, not a backoff later.
    const [first, second] = fx.requests;
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(950);
  });

  it("caps Retry-After at maxRetryAfterMs", async () => {
    const fx = await scripted(tooMany("3"));
    const client = createRegistryClient({ url: fx.url, retry: { ...FAST, maxRetryAfterMs: 100 } });
    const started = performance.now();
    await client.ping();
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(fx.requests).toHaveLength(2);
  });

  it("throws RegistryHttpError 429 TOOMANYREQUESTS once the retries are spent", async () => {
    fixture = await startFixture((_req, res) => sendJson(res, 429, TOO_MANY, { "retry-after": "0" }));
    const events: TransportEvent[] = [];
    const client = createRegistryClient({ url: fixture.url, retry: { ...FAST, retries: 2 }, onEvent: (e) => events.push(e) });

    const error = await client.getManifest("team/app", "v1").catch((e: unknown) => e);

    expect(error).toBeInstanceOf(RegistryHttpError);
    const http = error as RegistryHttpError;
    expect(http.status).toBe(429);
    expect(http.ociCode).toBe(OCI_ERROR_CODES.TOOMANYREQUESTS);
    expect(http.message).toContain("slow down");
    expect(http.retryable).toBe(true);
    expect(http.repository).toBe("team/app");
    // One attempt plus two retries, no more.
    expect(fixture.hits("GET", "/v2/team/app/manifests/v1")).toHaveLength(3);
    expect(events.filter((e) => e.type === "retry").map((e) => (e.type === "retry" ? e.attempt : 0))).toEqual([1, 2]);
  });
});

describe("5xx and 4xx", () => {
  it("retries a 503 and then succeeds", async () => {
    const fx = await scripted((res) => sendOciError(res, 503, "UNAVAILABLE", "try later"), (res) => sendOciError(res, 503, "UNAVAILABLE", "try later"));
    const events: TransportEvent[] = [];
    const client = createRegistryClient({ url: fx.url, retry: FAST, onEvent: (e) => events.push(e) });
    await client.ping();
    expect(fx.requests).toHaveLength(3);
    expect(events.filter((e) => e.type === "retry").map((e) => (e.type === "retry" ? e.reason : ""))).toEqual(["HTTP 503", "HTTP 503"]);
  });

  it.each([
    [400, "MANIFEST_INVALID"],
    [404, "MANIFEST_UNKNOWN"],
    [501, "UNSUPPORTED"],
  ])("does not retry a %i", async (status, code) => {
    fixture = await startFixture((_req, res) => sendOciError(res, status, code, "no"));
    const events: TransportEvent[] = [];
    const client = createRegistryClient({ url: fixture.url, retry: FAST, onEvent: (e) => events.push(e) });

    const error = await client.getManifest("team/app", "v1").catch((e: unknown) => e);

    expect(error).toBeInstanceOf(RegistryHttpError);
    expect((error as RegistryHttpError).status).toBe(status);
    expect((error as RegistryHttpError).ociCode).toBe(code);
    expect((error as RegistryHttpError).retryable).toBe(false);
    expect(fixture.requests).toHaveLength(1);
    expect(events.filter((e) => e.type === "retry")).toEqual([]);
  });

  it("does not retry a PUT whose 404 says the repository is unknown", async () => {
    fixture = await startFixture((_req, res) => sendOciError(res, 404, "NAME_UNKNOWN", "repository name not known to registry"));
    const client = createRegistryClient({ url: fixture.url, retry: FAST });
    const raw = new TextEncoder().encode('{"schemaVersion":2}');
    await expect(client.putManifest("team/app", "v1", { raw, mediaType: "application/vnd.oci.image.manifest.v1+json" })).rejects.toMatchObject({ status: 404, ociCode: "NAME_UNKNOWN" });
    expect(fixture.requests).toHaveLength(1);
  });
});

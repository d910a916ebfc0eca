/** Tag list pagination with scripted `Link` headers (distribution-spec "Listing Tags"). */
import { afterEach, describe, expect, it } from "vitest";
import { REGISTRY_ERROR_CODES, RegistryError, createRegistryClient } from "../../src/index.js";
import { sendJson, startFixture } from "../fixtures/http-fixture.js";
import type { HttpFixture } from "../fixtures/http-fixture.js";

const TAGS = "/v2/x/tags/list";

let fixture: HttpFixture | undefined;
afterEach(async () => {
  await fixture?.stop();
  fixture = undefined;
});

/** Pages keyed by the `last` query parameter ("" for the first), each with its `Link` target. */
async function pagedTags(pages: Record<string, { tags: string[] | null; next?: string }>): Promise<HttpFixture> {
  fixture = await startFixture((_req, res, url) => {
    const page = url.pathname === TAGS ? pages[url.searchParams.get("last") ?? ""] : undefined;
    if (page === undefined) {
      sendJson(res, 404, { errors: [{ code: "NAME_UNKNOWN", message: "no such page" }] });
      return;
    }
    sendJson(res, 200, { name: "x", tags: page.tags }, page.next === undefined ? {} : { link: `<${page.next}>; rel="next"` });
  });
  return fixture;
}

describe("listTags pagination", () => {
  it("follows Link rel=next through three pages, in order", async () => {
    const fx = await pagedTags({
      "": { tags: ["a", "b"], next: `${TAGS}?n=2&last=b` },
      b: { tags: ["c", "d"], next: `${TAGS}?n=2&last=d` },
      d: { tags: ["e"] },
    });
    const client = createRegistryClient({ url: fx.url });

    expect(await client.listTags("x", { pageSize: 2 })).toEqual(["a", "b", "c", "d", "e"]);
    expect(fx.requests.map((r) => `${r.path}?${r.query.toString()}`)).toEqual([`${TAGS}?n=2`, `${TAGS}?n=2&last=b`, `${TAGS}?n=2&last=d`]);
  });

  it("follows an absolute Link on the same registry", async () => {
    let origin = "";
    fixture = await startFixture((_req, res, url) => {
      origin = url.origin;
      if (url.searchParams.get("last") === null) sendJson(res, 200, { name: "x", tags: ["a"] }, { link: `<${origin}${TAGS}?n=1&last=a>; rel="next"` });
      else sendJson(res, 200, { name: "x", tags: ["b"] });
    });
    const client = createRegistryClient({ url: fixture.url });
    expect(await client.listTags("x", { pageSize: 1 })).toEqual(["a", "b"]);
  });

  it("detects a Link loop and fails instead of looping", async () => {
    const fx = await pagedTags({
      "": { tags: ["a", "b"], next: `${TAGS}?n=2&last=b` },
      b: { tags: ["c", "d"], next: `${TAGS}?n=2&last=d` },
      d: { tags: ["e"], next: `${TAGS}?n=2&last=b` },
    });
    const client = createRegistryClient({ url: fx.url });

    const error = await client.listTags("x", { pageSize: 2 }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).code).toBe(REGISTRY_ERROR_CODES.http);
    expect((error as RegistryError).message).toMatch(/pagination loop/);
    expect((error as RegistryError).repository).toBe("x");
    expect(fx.requests).toHaveLength(3);
  });

  it("detects a page linking to itself", async () => {
    const fx = await pagedTags({ "": { tags: ["a"], next: `${TAGS}?n=2&last=a` }, a: { tags: ["b"], next: `${TAGS}?n=2&last=a` } });
    const client = createRegistryClient({ url: fx.url });
    await expect(client.listTags("x", { pageSize: 2 })).rejects.toThrow(/pagination loop/);
    expect(fx.requests).toHaveLength(2);
  });

  it("detects a loop back to the first page within one extra request", async () => {
    const fx = await pagedTags({ "": { tags: ["a"], next: `${TAGS}?n=2&last=a` }, a: { tags: ["b"], next: `${TAGS}?n=2` } });
    const client = createRegistryClient({ url: fx.url });
    await expect(client.listTags("x", { pageSize: 2 })).rejects.toThrow(/pagination loop/);
    expect(fx.requests.length).toBeLessThanOrEqual(3);
  });

  it('takes "tags": null as an empty page', async () => {
    const fx = await pagedTags({ "": { tags: null } });
    const client = createRegistryClient({ url: fx.url });
    expect(await client.listTags("x")).toEqual([]);
  });
});

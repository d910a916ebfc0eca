import { describe, expect, it } from "vitest";
import type { TokenRequest } from "@georep/jwt";
import { pullAndCatalogOnly, primaryCredentials } from "../../src/credentials.js";

describe("pullAndCatalogOnly", () => {
  it.each([
    [["registry:catalog:*"], ["registry:catalog:*"]],
    [["repository:team/app:pull"], ["repository:team/app:pull"]],
    [["repository:team/app:pull,push"], ["repository:team/app:pull"]],
    [["repository:team/app:*"], []],
    [["repository:team/app:delete", "registry:catalog:*"], ["registry:catalog:*"]],
    [["repository:a/b:push repository:c/d:pull"], ["repository:c/d:pull"]],
  ])("narrows %j to %j", async (asked, granted) => {
    const seen: TokenRequest[] = [];
    const provider = pullAndCatalogOnly(async (request) => {
      seen.push(request);
      return { token: "t" };
    });
    expect(await provider({ registry: "http://r", realm: "http://r/token", service: "svc", scopes: asked })).toEqual({ token: "t" });
    expect(seen).toEqual([{ registry: "http://r", realm: "http://r/token", service: "svc", scopes: granted }]);
  });
});

describe("primaryCredentials", () => {
  const base = { SITE_NAME: "secondary-1", REGISTRY_TOKEN_ISSUER: "georep" };
  it("is basic with a username and password, anonymous without", async () => {
    expect(await primaryCredentials({ ...base, PRIMARY_REGISTRY_USERNAME: "a", PRIMARY_REGISTRY_PASSWORD: "b" })).toEqual({ type: "basic", username: "a", password: "b" });
    expect(await primaryCredentials(base)).toEqual({ type: "anonymous" });
  });

  it("refuses a key file it cannot read", async () => {
    await expect(primaryCredentials({ ...base, REGISTRY_TOKEN_KEY_FILE: "/nonexistent/key.pem" })).rejects.toThrow(/key/i);
  });
});

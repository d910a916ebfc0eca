import { describe, expect, it } from "vitest";
import { renderNatsConfig, renderRegistryConfig, toYaml } from "../../src/index.js";

describe("toYaml", () => {
  it.each([
    [{ a: "x" }, 'a: "x"\n'],
    [{ a: 1, b: true, c: null }, "a: 1\nb: true\nc: null\n"],
    [{ a: { b: "1" } }, 'a:\n  b: "1"\n'],
    [{ l: ["x", "y"] }, 'l:\n  - "x"\n  - "y"\n'],
    [{ l: [{ a: "1", b: "2" }] }, 'l:\n  - a: "1"\n    b: "2"\n'],
    [{ e: [], m: {} }, "e: []\nm: {}\n"],
    [{ "X-Header": ["v"] }, 'X-Header:\n  - "v"\n'],
    [{ "needs quoting": "yes: no" }, '"needs quoting": "yes: no"\n'],
  ])("%j", (value, expected) => {
    expect(toYaml(value)).toBe(expected);
  });
});

describe("server configs", () => {
  it("registry: token auth, notifications with headers and ignores", () => {
    const yaml = renderRegistryConfig({
      port: 5000,
      storageDir: "/data",
      httpSecret: "s",
      token: { realm: "http://auth/token", service: "registry", issuer: "georep", rootCertBundle: "/certs/ca.pem" },
      notifications: [{ url: "http://ingest/events", headers: { Authorization: "Bearer x" }, ignoredActions: ["pull"] }],
    });
    expect(yaml).toContain('addr: "127.0.0.1:5000"');
    expect(yaml).toContain('rootcertbundle: "/certs/ca.pem"');
    expect(yaml).toMatch(/headers:\n\s+Authorization:\n\s+- "Bearer x"/);
    expect(yaml).toMatch(/actions:\n\s+- "pull"/);
  });

  it("nats: domain, leafnode listen with auth, remotes", () => {
    const hub = renderNatsConfig({ name: "p", port: 1, monitorPort: 2, storeDir: "/js", domain: "primary", leafnodeListen: { port: 3, auth: { user: "u", password: "p" } } });
    expect(hub).toContain('domain: "primary"');
    expect(hub).toContain('listen: "127.0.0.1:3"');
    expect(hub).toContain('authorization { user: "u", password: "p" }');
    const leaf = renderNatsConfig({ name: "s", port: 1, monitorPort: 2, storeDir: "/js", leafnodeRemotes: ["nats-leaf://u:p@127.0.0.1:3"] });
    expect(leaf).toContain('{ url: "nats-leaf://u:p@127.0.0.1:3" }');
    expect(leaf).not.toContain("domain");
    const denied = renderNatsConfig({ name: "s", port: 1, monitorPort: 2, storeDir: "/js", leafnodeRemotes: ["nats-leaf://h:3"], leafnodeDeny: ["georep.transfer.>"] });
    expect(denied).toContain('{ url: "nats-leaf://h:3", deny_imports: ["georep.transfer.>"], deny_exports: ["georep.transfer.>"] }');
  });
});

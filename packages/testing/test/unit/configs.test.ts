/** The server configs the kit renders (toYaml itself is tested where it lives, @georep/deploy-templates). */
import { describe, expect, it } from "vitest";
import { renderNatsConfig, renderRegistryConfig } from "../../src/index.js";

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

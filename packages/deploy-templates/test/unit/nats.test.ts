import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SITE_LOCAL_SUBJECTS, envReference, natsConfig } from "../../src/index.js";
import type { NatsConfigOptions } from "../../src/index.js";
import { requireBinary, run } from "../support/tools.js";

const hub: NatsConfigOptions = {
  serverName: envReference("NATS_SERVER_NAME"),
  port: 4222,
  monitorPort: 8222,
  jetstream: { storeDir: "/data/jetstream", domain: envReference("NATS_JETSTREAM_DOMAIN") },
  leafnodes: { listen: { port: 7422, authorization: { user: envReference("LEAFNODE_USER"), password: envReference("LEAFNODE_PASSWORD") } } },
};
const leaf: NatsConfigOptions = {
  serverName: "secondary-1",
  host: "127.0.0.1",
  port: 4223,
  monitorPort: 8223,
  jetstream: { storeDir: "/data/js", domain: "secondary-1" },
  leafnodes: { remotes: [{ url: envReference("PRIMARY_LEAFNODE_URL"), denyImports: SITE_LOCAL_SUBJECTS, denyExports: SITE_LOCAL_SUBJECTS }], reconnectSeconds: 2 },
};

describe("natsConfig", () => {
  it("primary: listeners, JetStream domain, leafnode listener with authorization, $NAME references", () => {
    expect(natsConfig(hub)).toBe(
      [
        "server_name: $NATS_SERVER_NAME",
        'listen: "0.0.0.0:4222"',
        'http: "0.0.0.0:8222"',
        "jetstream {",
        '  store_dir: "/data/jetstream"',
        "  domain: $NATS_JETSTREAM_DOMAIN",
        "}",
        "leafnodes {",
        '  listen: "0.0.0.0:7422"',
        "  authorization { user: $LEAFNODE_USER, password: $LEAFNODE_PASSWORD }",
        "}",
        "",
      ].join("\n"),
    );
  });

  it("a hub behind a proxy advertises the address leaves must reconnect to", () => {
    const behind = natsConfig({ ...hub, leafnodes: { listen: { port: 7422, advertise: "proxy.example:7422" } } });
    expect(behind).toContain('leafnodes {\n  listen: "0.0.0.0:7422"\n  advertise: "proxy.example:7422"\n}');
    expect(natsConfig(hub)).not.toContain("advertise");
  });

  it("secondary: a leafnode remote that denies georep.transfer.> both ways", () => {
    const text = natsConfig(leaf);
    expect(SITE_LOCAL_SUBJECTS).toEqual(["georep.transfer.>"]);
    expect(text).toContain('    { url: $PRIMARY_LEAFNODE_URL, deny_imports: ["georep.transfer.>"], deny_exports: ["georep.transfer.>"] }\n');
    expect(text).toContain("  reconnect: 2\n");
    expect(text).toContain('server_name: "secondary-1"\nlisten: "127.0.0.1:4223"\nhttp: "127.0.0.1:8223"\n');
    expect(text).toContain('  domain: "secondary-1"\n');
    expect(text).not.toContain("listen: \"127.0.0.1:7422\"");
  });

  it("denies each direction on its own, and nothing when no list is given", () => {
    const only = (remote: { denyImports?: string[]; denyExports?: string[] }) =>
      natsConfig({ serverName: "s", port: 1, monitorPort: 2, jetstream: { storeDir: "/js" }, leafnodes: { remotes: [{ url: "nats-leaf://h:7422", ...remote }] } });
    expect(only({ denyImports: ["a.>"] })).toContain('{ url: "nats-leaf://h:7422", deny_imports: ["a.>"] }');
    expect(only({ denyExports: ["b.>"] })).toContain('{ url: "nats-leaf://h:7422", deny_exports: ["b.>"] }');
    expect(only({})).toContain('{ url: "nats-leaf://h:7422" }');
  });

  it("quotes literals (JSON escapes), omits the domain and leafnodes when not asked", () => {
    const text = natsConfig({ serverName: 'odd "name"', port: 1, monitorPort: 2, jetstream: { storeDir: "/js" } });
    expect(text).toBe('server_name: "odd \\"name\\""\nlisten: "0.0.0.0:1"\nhttp: "0.0.0.0:2"\njetstream {\n  store_dir: "/js"\n}\n');
  });

  it("refuses environment references that are not variable names", () => {
    expect(() => envReference("NOT-A-NAME")).toThrow(TypeError);
    expect(() => envReference("1X")).toThrow(TypeError);
    expect(() => natsConfig({ ...hub, serverName: { env: "$(whoami)" } })).toThrow(TypeError);
  });

  it("puts the header first as comment lines", () => {
    expect(natsConfig({ ...hub, header: "generated" }).startsWith("# generated\nserver_name: ")).toBe(true);
  });
});

describe("natsConfig output, checked by nats-server -t", () => {
  let dir: string;
  let natsServer: string;
  beforeAll(async () => {
    natsServer = requireBinary("nats-server", ["/usr/sbin", "/usr/local/sbin"]);
    dir = await mkdtemp(join(tmpdir(), "georep-deploy-nats-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const check = async (name: string, text: string, env: Record<string, string>) => {
    const file = join(dir, name);
    await writeFile(file, text);
    return run(natsServer, ["-t", "-c", file], { env: { PATH: process.env.PATH ?? "", ...env } });
  };

  it("accepts the hub and the leaf with their variables set, quoted as compose passes them", async () => {
    const hubResult = await check("hub.conf", natsConfig({ ...hub, jetstream: { ...hub.jetstream, storeDir: join(dir, "js") } }), {
      NATS_SERVER_NAME: '"1st-site"',
      NATS_JETSTREAM_DOMAIN: '"1st-site"',
      LEAFNODE_USER: '"leaf"',
      LEAFNODE_PASSWORD: '"12345"',
    });
    expect(hubResult.code, hubResult.stderr).toBe(0);
    const leafResult = await check("leaf.conf", natsConfig(leaf), { PRIMARY_LEAFNODE_URL: '"nats-leaf://leaf:pw@primary.example.com:7422"' });
    expect(leafResult.code, leafResult.stderr).toBe(0);
  });

  it("refuses the hub when a referenced variable is missing", async () => {
    const result = await check("hub-missing.conf", natsConfig(hub), { NATS_SERVER_NAME: '"p"', NATS_JETSTREAM_DOMAIN: '"p"', LEAFNODE_USER: '"leaf"' });
    expect(result.code).not.toBe(0);
    expect(result.stderr + result.stdout).toContain("LEAFNODE_PASSWORD");
  });
});

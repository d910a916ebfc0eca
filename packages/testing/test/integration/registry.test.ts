import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingHttpHeaders } from "node:http";
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegistry } from "../../src/index.js";
import type { RunningRegistry } from "../../src/index.js";

const digestOf = (data: Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

async function pushBlob(registry: RunningRegistry, repository: string, blob: Buffer, headers: Record<string, string> = {}): Promise<number> {
  const start = await fetch(`${registry.url}/v2/${repository}/blobs/uploads/`, { method: "POST", headers });
  await start.body?.cancel();
  if (start.status !== 202) return start.status;
  const location = new URL(start.headers.get("location")!, registry.url);
  location.searchParams.set("digest", digestOf(blob));
  const put = await fetch(location, { method: "PUT", headers: { ...headers, "content-type": "application/octet-stream" }, body: blob });
  await put.body?.cancel();
  return put.status;
}

describe("startRegistry: no auth", () => {
  let registry: RunningRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it("pushes a blob and pulls the same bytes back", async () => {
    const blob = randomBytes(200_000);
    expect(await pushBlob(registry, "kit/blob", blob)).toBe(201);
    const res = await fetch(`${registry.url}/v2/kit/blob/blobs/${digestOf(blob)}`);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(blob)).toBe(true);
  });

  it("has delete enabled", async () => {
    const blob = randomBytes(1000);
    expect(await pushBlob(registry, "kit/delete", blob)).toBe(201);
    const del = await fetch(`${registry.url}/v2/kit/delete/blobs/${digestOf(blob)}`, { method: "DELETE" });
    expect(del.status).toBe(202);
    const head = await fetch(`${registry.url}/v2/kit/delete/blobs/${digestOf(blob)}`, { method: "HEAD" });
    expect(head.status).toBe(404);
  });

  it("restart keeps the storage", async () => {
    const blob = randomBytes(1000);
    expect(await pushBlob(registry, "kit/kept", blob)).toBe(201);
    await registry.restart();
    const head = await fetch(`${registry.url}/v2/kit/kept/blobs/${digestOf(blob)}`, { method: "HEAD" });
    expect(head.status).toBe(200);
  });
});

describe("startRegistry: htpasswd auth and notifications", () => {
  let registry: RunningRegistry;
  const received: { headers: IncomingHttpHeaders; body: { events: { action: string; target: { repository: string; mediaType: string } }[] } }[] = [];
  const sink = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      received.push({ headers: req.headers, body: JSON.parse(body) as (typeof received)[number]["body"] });
      res.writeHead(200).end();
    });
  });

  beforeAll(async () => {
    await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
    const address = sink.address();
    const port = typeof address === "object" && address !== null ? address.port : 0;
    registry = await startRegistry({
      auth: { htpasswd: { users: [{ username: "alice", password: "wonder land" }] } },
      notifications: [{ url: `http://127.0.0.1:${port}/events`, headers: { Authorization: "Bearer notify-secret" }, backoffMs: 100 }],
    });
  });
  afterAll(async () => {
    await registry?.stop();
    sink.close();
  });

  const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` });

  it("refuses anonymous and wrong-password requests", async () => {
    expect((await fetch(`${registry.url}/v2/`)).status).toBe(401);
    expect((await fetch(`${registry.url}/v2/`, { headers: basic("alice", "nope") })).status).toBe(401);
    expect(await pushBlob(registry, "kit/auth", randomBytes(10), basic("mallory", "wonder land"))).toBe(401);
  });

  it("accepts the configured user for push and pull, and notifies with the header", async () => {
    const auth = basic("alice", "wonder land");
    const blob = randomBytes(5000);
    expect(await pushBlob(registry, "kit/auth", blob, auth)).toBe(201);
    const get = await fetch(`${registry.url}/v2/kit/auth/blobs/${digestOf(blob)}`, { headers: auth });
    expect(Buffer.from(await get.arrayBuffer()).equals(blob)).toBe(true);

    const config = Buffer.from("{}");
    expect(await pushBlob(registry, "kit/auth", config, auth)).toBe(201);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: digestOf(config), size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: digestOf(blob), size: blob.length }],
    });
    const put = await fetch(`${registry.url}/v2/kit/auth/manifests/v1`, {
      method: "PUT",
      headers: { ...auth, "content-type": "application/vnd.oci.image.manifest.v1+json" },
      body: manifest,
    });
    expect(put.status).toBe(201);

    const deadline = Date.now() + 15_000;
    const pushed = () => received.flatMap((r) => r.body.events).find((e) => e.action === "push" && e.target.mediaType === "application/vnd.oci.image.manifest.v1+json");
    while (pushed() === undefined) {
      if (Date.now() > deadline) throw new Error("no manifest push notification arrived");
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(pushed()?.target.repository).toBe("kit/auth");
    expect(received[0]?.headers.authorization).toBe("Bearer notify-secret");
  });

  it("writes its config with delete enabled and the notification endpoint", async () => {
    const config = await readFile(registry.configFile, "utf8");
    expect(config).toMatch(/delete:\n\s+enabled: true/);
    expect(config).toContain("Bearer notify-secret");
  });
});

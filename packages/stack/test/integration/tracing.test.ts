/**
 * OpenTelemetry end to end: the local stack's services export their spans
 * (OTLP/HTTP, JSON) to a receiver inside this test; one push to the primary
 * must be one trace that links ingest's span on the primary to the transfer
 * span of the sync on the secondary, with the registry requests and database
 * queries in between, and log lines naming the trace.
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { Server } from "node:http";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRegistryClient } from "@georep/registry-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, stopStack } from "../../src/index.js";
import type { StackDescription } from "../../src/index.js";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: { key: string; value: { stringValue?: string; intValue?: string | number } }[];
}
interface ReceivedSpan extends OtlpSpan {
  service: string;
}
interface OtlpExport {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
    scopeSpans?: { spans?: OtlpSpan[] }[];
  }[];
}

const received: ReceivedSpan[] = [];
let receiver: Server;
let receiverUrl: string;
let dir: string;
let stack: StackDescription;

beforeAll(async () => {
  receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (c: Buffer) => chunks.push(c));
    request.on("end", () => {
      if (request.url === "/v1/traces") {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as OtlpExport;
        for (const rs of body.resourceSpans ?? []) {
          const service = rs.resource?.attributes?.find((a) => a.key === "service.name")?.value.stringValue ?? "?";
          for (const ss of rs.scopeSpans ?? []) for (const span of ss.spans ?? []) received.push({ ...span, service });
        }
      }
      response.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const address = receiver.address();
  if (address === null || typeof address === "string") throw new Error("receiver has no port");
  receiverUrl = `http://127.0.0.1:${address.port}`;
  dir = await mkdtemp(join(tmpdir(), "georep-trace-"));
  ({ stack } = await startStack({
    stateDir: dir,
    secondaries: 1,
    persistent: false,
    serviceEnv: {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_BSP_SCHEDULE_DELAY: "200",
    },
  }));
}, 120_000);

afterAll(async () => {
  if (dir !== undefined) {
    await stopStack(dir);
    await rm(dir, { recursive: true, force: true });
  }
  await new Promise((resolve) => receiver?.close(resolve));
});

const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("tracing across both sites", () => {
  it("one push is one trace from ingest on the primary to transfer on the secondary", async () => {
    const credentials = { type: "basic" as const, ...stack.credentials };
    const primary = createRegistryClient({ url: stack.sites[0]!.registry, credentials });
    const secondary = createRegistryClient({ url: stack.sites[1]!.registry, credentials });
    const repository = "traced/app";
    const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", salt: randomBytes(8).toString("hex") }));
    const layer = randomBytes(4096);
    for (const b of [config, layer]) await primary.uploadBlob(repository, { digest: sha256(b), size: b.length }, b);
    const raw = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(layer), size: layer.length }],
      }),
    );
    await primary.putManifest(repository, "v1", { raw, mediaType: "application/vnd.oci.image.manifest.v1+json" });
    await waitFor("v1 on the secondary", async () => ((await secondary.headManifest(repository, "v1"))?.digest === sha256(raw) ? true : undefined));

    const attr = (span: OtlpSpan, key: string) => span.attributes?.find((a) => a.key === key)?.value.stringValue;
    const ingest = await waitFor("ingest's span of the push", () => received.find((s) => s.name === "ingest.event" && attr(s, "georep.repository") === repository && attr(s, "georep.tag") === "v1"));
    const inTrace = () => received.filter((s) => s.traceId === ingest.traceId);
    const sync = await waitFor("the transfer span in the same trace", () => inTrace().find((s) => s.name === "transfer.sync"));

    // the chain of parents leads from the transfer span back to ingest's, across services and sites
    const byId = new Map(inTrace().map((s) => [s.spanId, s]));
    const chain: string[] = [];
    for (let span: ReceivedSpan | undefined = sync; span !== undefined; span = span.parentSpanId === undefined ? undefined : byId.get(span.parentSpanId)) {
      chain.push(`${span.service}:${span.name}`);
    }
    expect(chain).toEqual(["georep-transfer:transfer.sync", "georep-dispatcher:dispatcher.dispatch", "georep-dispatcher:dispatcher.event", "georep-event-log:event-log.record", "georep-ingest:ingest.event", "georep-ingest:POST"]);
    // the root: the registry's notification request as ingest served it

    // the sync's registry requests (undici) and database queries (pg) are spans of that trace too
    await waitFor("registry request spans under the sync", () => (inTrace().some((s) => s.service === "georep-transfer" && s.kind === 3 && s.name !== "transfer.sync") ? true : undefined));
    await waitFor("database query spans of the sync", () => (inTrace().some((s) => s.service === "georep-transfer" && attr(s, "db.system") === "postgresql") || inTrace().some((s) => s.service === "georep-transfer" && attr(s, "db.system.name") === "postgresql") ? true : undefined));

    // and the transfer service's log lines about this sync name the trace
    const log = await readFile(join(stack.logs_dir, `${stack.sites[1]!.name}-transfer.log`), "utf8");
    expect(log.split("\n").some((line) => line.includes(`"trace_id":"${ingest.traceId}"`) && line.includes(repository))).toBe(true);
  });

  it("a large blob's prefetch on the secondary joins the trace of the blob's notification", async () => {
    const credentials = { type: "basic" as const, ...stack.credentials };
    const primary = createRegistryClient({ url: stack.sites[0]!.registry, credentials });
    const repository = "traced/large";
    const layer = randomBytes(2 * 1024 * 1024); // above the hint threshold (1 MiB)
    const digest = sha256(layer);
    await primary.uploadBlob(repository, { digest, size: layer.length }, layer);

    const attr = (span: OtlpSpan, key: string) => span.attributes?.find((a) => a.key === key)?.value.stringValue;
    const hint = await waitFor("ingest's span of the blob hint", () => received.find((s) => s.name === "ingest.blob" && attr(s, "georep.digest") === digest));
    const prefetch = await waitFor("the prefetch span in the same trace", () => received.find((s) => s.name === "transfer.prefetch" && s.traceId === hint.traceId));
    expect(hint.service).toBe("georep-ingest");
    expect(prefetch.service).toBe("georep-transfer");
    expect(prefetch.parentSpanId).toBe(hint.spanId);
    expect(attr(prefetch, "georep.repository")).toBe(repository);
    expect(attr(prefetch, "georep.prefetch.result")).toBe("uploaded");
  });
});

/**
 * `georep-stack demo`: pushes a small sample image to the primary with the
 * stack's user and shows what became of it: the geo event on the primary
 * and, on every secondary that runs the replication services, the same
 * digest once it is there.
 */
import { createHash, randomBytes } from "node:crypto";
import { createRegistryClient } from "@georep/registry-client";
import type { StackDescription } from "./stack.js";

const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

export const DEMO_REPOSITORY = "demo/hello";
export const DEMO_TAG = "v1";

/** A one-layer OCI image whose layer differs per run (so each run is a real push). */
function sampleImage() {
  const layer = randomBytes(64 * 1024);
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [sha256(layer)] }, created: new Date().toISOString() }));
  const raw = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(layer), size: layer.length }],
    }),
  );
  return { layer, config, raw, digest: sha256(raw) };
}

async function geoEventCount(monitorUrl: string): Promise<number> {
  const jsz = (await (await fetch(`${monitorUrl}/jsz?streams=1`)).json()) as { account_details?: { stream_detail?: { name: string; state: { messages: number } }[] }[] };
  return jsz.account_details?.[0]?.stream_detail?.find((s) => s.name === "GEO_EVENTS")?.state.messages ?? 0;
}

/** Runs the demo; returns false when something did not replicate in time. */
export async function runDemo(stack: StackDescription, say: (line: string) => void, timeoutMs = 60_000): Promise<boolean> {
  const credentials = { type: "basic" as const, ...stack.credentials };
  const [primary, ...secondaries] = stack.sites;
  if (primary === undefined) throw new Error("stack.json lists no site");
  const image = sampleImage();
  const before = await geoEventCount(primary.nats_monitor);
  const client = createRegistryClient({ url: primary.registry, credentials });
  for (const blob of [image.config, image.layer]) await client.uploadBlob(DEMO_REPOSITORY, { digest: sha256(blob), size: blob.length }, blob);
  const started = Date.now();
  await client.putManifest(DEMO_REPOSITORY, DEMO_TAG, { raw: image.raw, mediaType: "application/vnd.oci.image.manifest.v1+json" });
  say(`pushed ${primary.registry.replace(/^https?:\/\//, "")}/${DEMO_REPOSITORY}:${DEMO_TAG}  ${image.digest}`);

  while ((await geoEventCount(primary.nats_monitor)) <= before) {
    if (Date.now() - started > timeoutMs) {
      say("no geo event on the primary: is ingest receiving the registry's notifications? (see .georep/logs)");
      return false;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  say(`primary: geo event recorded after ${Date.now() - started} ms`);

  let ok = true;
  for (const site of secondaries) {
    if (site.transfer === undefined) {
      say(`${site.name}: replication services are not running on this site yet`);
      continue;
    }
    const secondary = createRegistryClient({ url: site.registry, credentials });
    for (;;) {
      const head = await secondary.headManifest(DEMO_REPOSITORY, DEMO_TAG).catch(() => undefined);
      if (head?.digest === image.digest) {
        say(`${site.name}: ${DEMO_REPOSITORY}:${DEMO_TAG} ${head.digest}  (available ${Date.now() - started} ms after the push)`);
        break;
      }
      if (Date.now() - started > timeoutMs) {
        say(`${site.name}: not replicated after ${timeoutMs} ms (has ${head?.digest ?? "nothing"})`);
        ok = false;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return ok;
}

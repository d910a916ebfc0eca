/** Helpers for integration tests: a tiny OCI image and uploads through the registry API. */
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const sha256 = (data: Uint8Array) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/** A one-layer OCI image: config, layer and manifest bytes with digests. */
export function tinyImage(seed: string) {
  const tar = Buffer.alloc(1024); // an empty tar archive: two zero blocks
  Buffer.from(seed).copy(tar, 0); // differs per test so uploads are real
  const layer = gzipSync(tar);
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [sha256(tar)] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha256(layer), size: layer.length }],
    }),
  );
  return { config, layer, manifest, digests: { config: sha256(config), layer: sha256(layer), manifest: sha256(manifest) } };
}

/** Writes the image as an OCI image layout with one tag, for skopeo's `oci:` transport. */
export async function writeOciLayout(dir: string, image: ReturnType<typeof tinyImage>, tag: string): Promise<void> {
  await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  for (const blob of [image.config, image.layer, image.manifest]) await writeFile(join(dir, "blobs", "sha256", sha256(blob).slice(7)), blob);
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: image.digests.manifest, size: image.manifest.length, annotations: { "org.opencontainers.image.ref.name": tag } },
      ],
    }),
  );
}

/** Monolithic blob upload (POST then PUT); returns the first non-2xx status, or the final one. */
export async function uploadBlob(registry: string, repository: string, token: string, blob: Buffer): Promise<number> {
  const auth = { authorization: `Bearer ${token}` };
  const start = await fetch(`${registry}/v2/${repository}/blobs/uploads/`, { method: "POST", headers: auth });
  await start.body?.cancel();
  if (start.status !== 202) return start.status;
  const location = new URL(start.headers.get("location") ?? "", registry);
  location.searchParams.set("digest", sha256(blob));
  const put = await fetch(location, { method: "PUT", headers: { ...auth, "content-type": "application/octet-stream" }, body: blob });
  await put.body?.cancel();
  return put.status;
}

/** Pushes the whole image under a tag; returns the manifest PUT status (or the failing blob status). */
export async function pushImage(registry: string, repository: string, token: string, image: ReturnType<typeof tinyImage>, tag: string): Promise<number> {
  for (const blob of [image.config, image.layer]) {
    const status = await uploadBlob(registry, repository, token, blob);
    if (status !== 201) return status;
  }
  const res = await fetch(`${registry}/v2/${repository}/manifests/${tag}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/vnd.oci.image.manifest.v1+json" },
    body: image.manifest,
  });
  await res.body?.cancel();
  return res.status;
}

/** GET a manifest with a token; returns the status. */
export async function pullManifest(registry: string, repository: string, token: string, reference: string): Promise<number> {
  const res = await fetch(`${registry}/v2/${repository}/manifests/${reference}`, {
    headers: { authorization: `Bearer ${token}`, accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  await res.body?.cancel();
  return res.status;
}

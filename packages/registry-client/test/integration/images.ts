/** Small OCI content built in memory for the integration tests. */
import { createHash, randomBytes } from "node:crypto";

export const sha256 = (data: Uint8Array) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

export interface Blob {
  readonly bytes: Buffer;
  readonly digest: string;
  readonly size: number;
  readonly mediaType: string;
}

export function blob(bytes: Buffer, mediaType = "application/vnd.oci.image.layer.v1.tar+gzip"): Blob {
  return { bytes, digest: sha256(bytes), size: bytes.length, mediaType };
}

export const descriptor = (b: Blob) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size });

export interface Image {
  readonly config: Blob;
  readonly layers: readonly Blob[];
  readonly raw: Buffer;
  readonly digest: string;
  readonly mediaType: string;
}

/** An OCI image with `layerCount` random layers; `platform` goes into the config. */
export function image(options: { layerCount?: number; layerSize?: number; architecture?: string } = {}): Image {
  const config = blob(Buffer.from(JSON.stringify({ architecture: options.architecture ?? "amd64", os: "linux", salt: randomBytes(8).toString("hex") })), "application/vnd.oci.image.config.v1+json");
  const layers = Array.from({ length: options.layerCount ?? 2 }, () => blob(randomBytes(options.layerSize ?? 4096)));
  // Deliberately unusual whitespace: the digest must be of these exact bytes.
  const raw = Buffer.from(
    `{\n  "schemaVersion": 2,\n  "mediaType": "application/vnd.oci.image.manifest.v1+json",\n  "config": ${JSON.stringify(descriptor(config))},\n  "layers": ${JSON.stringify(layers.map(descriptor))}\n}\n`,
  );
  return { config, layers, raw, digest: sha256(raw), mediaType: "application/vnd.oci.image.manifest.v1+json" };
}

/** An OCI index over `images`, one platform each. */
export function index(images: readonly Image[], architectures: readonly string[]): { raw: Buffer; digest: string; mediaType: string } {
  const raw = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: images.map((m, i) => ({ mediaType: m.mediaType, digest: m.digest, size: m.raw.length, platform: { architecture: architectures[i], os: "linux" } })),
    }),
  );
  return { raw, digest: sha256(raw), mediaType: "application/vnd.oci.image.index.v1+json" };
}

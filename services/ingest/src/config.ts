/** The one reader of `process.env` in ingest. */
import { loadConfig } from "@georep/runtime";
import type { Env } from "@georep/runtime";
import { HttpConfig, LogConfig, NatsConfig } from "@georep/schema";
import { Type } from "@sinclair/typebox";
import { DEFAULT_BLOB_HINT_MIN_BYTES, DEFAULT_BODY_LIMIT, DEFAULT_PUBLISH_TIMEOUT_MS } from "./app.js";

export const IngestConfig = Type.Composite([
  NatsConfig,
  LogConfig,
  HttpConfig,
  Type.Object({
    /** The exact Authorization header value the registry is configured to send (or INGEST_SECRET_FILE). */
    INGEST_SECRET: Type.String({ minLength: 16, description: "shared notification secret (at least 16 characters)" }),
    INGEST_BODY_LIMIT: Type.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024, default: DEFAULT_BODY_LIMIT }),
    INGEST_PUBLISH_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: DEFAULT_PUBLISH_TIMEOUT_MS }),
    INGEST_BLOB_HINTS: Type.Boolean({ default: true, description: "announce blob pushes on georep.blobs.pushed, so secondaries copy large blobs before their manifest arrives" }),
    INGEST_BLOB_HINT_MIN_BYTES: Type.Integer({ minimum: 0, default: DEFAULT_BLOB_HINT_MIN_BYTES, description: "smallest blob announced; a small blob costs its sync little" }),
  }),
]);

export type IngestConfig = ReturnType<typeof readConfig>;

export function readConfig(env: Env = process.env) {
  return loadConfig(IngestConfig, env);
}

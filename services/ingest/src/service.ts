/** ingest: config → NATS → HTTP → signals. */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { STREAM_NAMES } from "@georep/schema";
import { ConfigError, connectNats, natsConnectOptions, createHealth, createLogger, createShutdown, shutdownTelemetry } from "@georep/runtime";
import { buildApp } from "./app.js";
import { readConfig } from "./config.js";
import { createIngestMetrics } from "./metrics.js";

let config: ReturnType<typeof readConfig>;
let natsOptions: ReturnType<typeof natsConnectOptions>;
try {
  config = readConfig();
  natsOptions = natsConnectOptions(config, "ingest");
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`ingest: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
}

const logger = createLogger({ name: "ingest", level: config.LOG_LEVEL });
const shutdown = createShutdown({ logger });
// Registered first, so it runs last: spans of the shutdown itself are flushed too.
shutdown.onShutdown("telemetry", shutdownTelemetry);
const nc = await connectNats({ ...natsOptions, logger });
shutdown.onShutdown("nats", () => nc.drain());
const jsm = await jetstreamManager(nc);

const health = createHealth();
health.register("nats", () => {
  if (nc.isClosed()) throw new Error("NATS connection closed");
});
// event-log owns the stream definitions; until it has created them, the registry's retries wait.
health.register("stream", async () => {
  await jsm.streams.info(STREAM_NAMES.REGISTRY_EVENTS);
});

const app = await buildApp({
  js: jetstream(nc),
  secret: config.INGEST_SECRET,
  logger,
  metrics: createIngestMetrics(),
  health,
  bodyLimit: config.INGEST_BODY_LIMIT,
  publishTimeoutMs: config.INGEST_PUBLISH_TIMEOUT_MS,
  ...(config.INGEST_BLOB_HINTS ? { blobHints: { nc, minBytes: config.INGEST_BLOB_HINT_MIN_BYTES } } : {}),
});
shutdown.onShutdown("http", async () => {
  health.drain();
  await app.close();
});
const address = await app.listen({ host: config.HTTP_HOST, port: config.HTTP_PORT });
logger.info({ address }, "ingest listening");

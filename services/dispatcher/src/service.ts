/** dispatcher: config → Postgres (migrate) → NATS → registry client → HTTP → start → signals. */
import { ConfigError, connectNats, natsConnectOptions, createDatabase, createLogger, createShutdown, shutdownTelemetry } from "@georep/runtime";
import { createRegistryClient } from "@georep/registry-client";
import { migrateTracking } from "@georep/tracking";
import type { TrackingDatabase } from "@georep/tracking";
import { buildDispatcher } from "./app.js";
import { dispatcherOptions, loadDispatcherConfig } from "./config.js";
import type { DispatcherConfig } from "./config.js";
import { primaryCredentials } from "./credentials.js";

let config: Readonly<DispatcherConfig>;
let natsOptions: ReturnType<typeof natsConnectOptions>;
try {
  config = loadDispatcherConfig();
  natsOptions = natsConnectOptions(config, "dispatcher");
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`dispatcher: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
}

const logger = createLogger({ name: "dispatcher", level: config.LOG_LEVEL, base: { site: config.SITE_NAME } });
// Registered hooks run in reverse: HTTP first, then the dispatcher, NATS, Postgres last.
const shutdown = createShutdown({ logger, timeoutMs: config.DISPATCHER_SHUTDOWN_TIMEOUT_MS });
// Registered first, so it runs last: spans of the shutdown itself are flushed too.
shutdown.onShutdown("telemetry", shutdownTelemetry);

try {
  const database = createDatabase<TrackingDatabase>({
    url: config.DATABASE_URL,
    poolSize: config.DATABASE_POOL_SIZE,
    logger,
    applicationName: "dispatcher",
  });
  shutdown.onShutdown("postgres", () => database.close());
  await migrateTracking(database.db, logger);

  const nc = await connectNats({ ...natsOptions, logger });
  shutdown.onShutdown("nats", () => nc.drain());

  const registry = createRegistryClient({
    url: config.PRIMARY_REGISTRY_URL,
    credentials: await primaryCredentials(config),
    userAgent: "georep-dispatcher",
  });
  const dispatcher = buildDispatcher({ nc, db: database.db, registry, logger, options: dispatcherOptions(config) });
  shutdown.onShutdown("dispatcher", () => dispatcher.stop());
  shutdown.onShutdown("http", async () => {
    dispatcher.health.drain();
    await dispatcher.http.close();
  });
  const address = await dispatcher.http.listen({ host: config.HTTP_HOST, port: config.HTTP_PORT });
  logger.info({ address }, "dispatcher listening");
  await dispatcher.start();
} catch (err) {
  if (!shutdown.isShuttingDown) {
    logger.fatal({ err }, "dispatcher failed to start");
    await shutdown.run("start-up failed");
    process.exit(1);
  }
}

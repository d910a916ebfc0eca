/** transfer: config → Postgres (migrate) → NATS → registry clients → HTTP → consume → signals. */
import { Agent } from "undici";
import { ConfigError, connectNats, natsConnectOptions, createDatabase, createLogger, createShutdown, shutdownTelemetry } from "@georep/runtime";
import { migrateTracking } from "@georep/tracking";
import type { TrackingDatabase } from "@georep/tracking";
import { buildTransfer } from "./app.js";
import { loadTransferConfig, registryEndpoints, transferOptions } from "./config.js";
import type { TransferConfig } from "./config.js";
import { createRegistryFromEndpoint } from "./registries.js";

let config: Readonly<TransferConfig>;
let natsOptions: ReturnType<typeof natsConnectOptions>;
try {
  config = loadTransferConfig();
  natsOptions = natsConnectOptions(config, "transfer");
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`transfer: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
}

const logger = createLogger({ name: "transfer", level: config.LOG_LEVEL, base: { site: config.SITE_NAME } });
// Hooks run in reverse: HTTP first, then the worker (in-flight syncs finish or are handed back), NATS, the registry pool, Postgres.
const shutdown = createShutdown({ logger, timeoutMs: config.TRANSFER_SHUTDOWN_TIMEOUT_MS });
// Registered first, so it runs last: spans of the shutdown itself are flushed too.
shutdown.onShutdown("telemetry", shutdownTelemetry);

try {
  const database = createDatabase<TrackingDatabase>({ url: config.DATABASE_URL, poolSize: config.DATABASE_POOL_SIZE, logger, applicationName: "transfer" });
  shutdown.onShutdown("postgres", () => database.close());
  await migrateTracking(database.db, logger);

  const agent = new Agent({ keepAliveTimeout: 30_000 });
  shutdown.onShutdown("registry-pool", () => agent.close());
  const endpoints = registryEndpoints(config);
  const [primary, secondary] = await Promise.all([
    createRegistryFromEndpoint(endpoints.primary, { dispatcher: agent }),
    createRegistryFromEndpoint(endpoints.secondary, { dispatcher: agent }),
  ]);

  const nc = await connectNats({ ...natsOptions, logger });
  shutdown.onShutdown("nats", () => nc.drain());

  const options = transferOptions(config);
  const transfer = buildTransfer({ nc, db: database.db, primary, secondary, logger, options });
  shutdown.onShutdown("transfer", () => transfer.stop());
  shutdown.onShutdown("http", async () => {
    transfer.health.drain();
    await transfer.http.close();
  });
  const address = await transfer.http.listen({ host: config.HTTP_HOST, port: config.HTTP_PORT });
  logger.info(
    { address, workerId: options.workerId, primary: endpoints.primary.url, primaryAuth: endpoints.primary.auth.type, secondary: endpoints.secondary.url, secondaryAuth: endpoints.secondary.auth.type },
    "transfer listening",
  );
  await transfer.start();
} catch (err) {
  if (!shutdown.isShuttingDown) {
    logger.fatal({ err }, "transfer failed to start");
    await shutdown.run("start-up failed");
    process.exit(1);
  }
}

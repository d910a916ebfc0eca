/** event-log: config → Postgres, NATS → HTTP → consume → signals. */
import { ConfigError, connectNats, natsConnectOptions, createDatabase, createLogger, createShutdown, shutdownTelemetry } from "@georep/runtime";
import { buildEventLog } from "./app.js";
import { eventLogOptions, loadEventLogConfig } from "./config.js";
import type { EventLogConfig } from "./config.js";
import type { EventLogDatabase } from "./db.js";

let config: Readonly<EventLogConfig>;
let natsOptions: ReturnType<typeof natsConnectOptions>;
try {
  config = loadEventLogConfig();
  natsOptions = natsConnectOptions(config, "event-log");
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`event-log: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
}

const logger = createLogger({ name: "event-log", level: config.LOG_LEVEL, base: { site: config.SITE_NAME } });
// Registered hooks run in reverse: HTTP first, then the consumer, NATS, Postgres last.
const shutdown = createShutdown({ logger, timeoutMs: config.EVENT_LOG_SHUTDOWN_TIMEOUT_MS });
// Registered first, so it runs last: spans of the shutdown itself are flushed too.
shutdown.onShutdown("telemetry", shutdownTelemetry);

try {
  const database = createDatabase<EventLogDatabase>({
    url: config.DATABASE_URL,
    poolSize: config.DATABASE_POOL_SIZE,
    logger,
    applicationName: "event-log",
  });
  shutdown.onShutdown("postgres", () => database.close());
  const nc = await connectNats({ ...natsOptions, logger });
  shutdown.onShutdown("nats", () => nc.drain());

  const eventLog = buildEventLog({ nc, db: database.db, logger, options: eventLogOptions(config) });
  shutdown.onShutdown("event-log", () => eventLog.stop());
  shutdown.onShutdown("http", async () => {
    eventLog.health.drain();
    await eventLog.http.close();
  });
  const address = await eventLog.http.listen({ host: config.HTTP_HOST, port: config.HTTP_PORT });
  logger.info({ address }, "event-log listening");
  await eventLog.start();
} catch (err) {
  if (!shutdown.isShuttingDown) {
    logger.fatal({ err }, "event-log failed to start");
    await shutdown.run("start-up failed");
    process.exit(1);
  }
}

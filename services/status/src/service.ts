/** status: config → Postgres → NATS → registries, token endpoint → HTTP → signals (loaded by main.ts after telemetry). */
import { setTimeout as sleep } from "node:timers/promises";
import { createTokenIssuer, loadSigningKey, loadUsersFile } from "@georep/jwt";
import type { TokenEndpointOptions } from "@georep/jwt";
import { ConfigError, connectNats, natsConnectOptions, createDatabase, createHealth, createLogger, createShutdown, shutdownTelemetry } from "@georep/runtime";
import type { Logger } from "@georep/runtime";
import { migrateTracking } from "@georep/tracking";
import type { Kysely } from "kysely";
import { buildStatusApp } from "./app.js";
import { loadStatusConfig, registryEndpoints, statusOptions, tokenEndpointConfig } from "./config.js";
import type { StatusConfig } from "./config.js";
import { trackingDb } from "./db.js";
import type { StatusDatabase } from "./db.js";
import { createRegistryFromEndpoint } from "./registries.js";

/** Pause between attempts to migrate the tracking tables while Postgres is down. */
const MIGRATE_RETRY_MS = 5_000;

let config: Readonly<StatusConfig>;
let natsOptions: ReturnType<typeof natsConnectOptions>;
try {
  config = loadStatusConfig();
  natsOptions = natsConnectOptions(config, "status");
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`status: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
}

const logger = createLogger({ name: "status", level: config.LOG_LEVEL, base: { site: config.SITE_NAME, role: config.SITE_ROLE } });
// Registered hooks run in reverse: HTTP first, then NATS, Postgres last.
const shutdown = createShutdown({ logger, timeoutMs: config.STATUS_SHUTDOWN_TIMEOUT_MS });
// Registered first, so it runs last: spans of the shutdown itself are flushed too.
shutdown.onShutdown("telemetry", shutdownTelemetry);

/**
 * On a secondary, creates or updates the tracking tables (idempotent, under
 * the tracking advisory lock) so the API works even when it starts before
 * the dispatcher. Postgres being down is no reason not to serve: the API
 * answers 503 meanwhile and this retries until shutdown.
 */
async function migrateInBackground(db: Kysely<StatusDatabase>, log: Logger, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    try {
      await migrateTracking(trackingDb(db), log);
      return;
    } catch (err) {
      log.warn({ err }, "cannot migrate the tracking tables yet; will retry");
      await sleep(MIGRATE_RETRY_MS, undefined, { signal }).catch(() => undefined);
    }
  }
}

async function tokenEndpointOptions(): Promise<TokenEndpointOptions | undefined> {
  const settings = tokenEndpointConfig(config);
  if (settings === undefined) return undefined;
  const key = await loadSigningKey({ keyPath: settings.keyFile, ...(settings.certFile === undefined ? {} : { certificatePath: settings.certFile }) });
  const users = await loadUsersFile(settings.usersFile);
  logger.info({ services: settings.services, users: users.users.length }, "token endpoint mounted at /token");
  return { issuer: createTokenIssuer({ issuer: settings.issuer, key }), services: settings.services, users };
}

try {
  const database = createDatabase<StatusDatabase>({
    url: config.DATABASE_URL,
    poolSize: config.DATABASE_POOL_SIZE,
    logger,
    applicationName: "status",
  });
  shutdown.onShutdown("postgres", () => database.close());
  const health = createHealth();
  if (config.SITE_ROLE === "secondary") {
    let migrated = false;
    const migrating = migrateInBackground(database.db, logger, shutdown.signal).then(() => {
      migrated = !shutdown.signal.aborted;
    });
    shutdown.onShutdown("migrations", () => migrating);
    // Not ready (no traffic from a load balancer) until the tables the API reads exist.
    health.register("tracking_tables", () => {
      if (!migrated) throw new Error("tracking tables not migrated yet");
    });
  }

  const nc = await connectNats({ ...natsOptions, logger });
  shutdown.onShutdown("nats", () => nc.drain());

  const endpoints = registryEndpoints(config);
  const registries =
    endpoints === undefined
      ? undefined
      : { primary: await createRegistryFromEndpoint(endpoints.primary), secondary: await createRegistryFromEndpoint(endpoints.secondary) };

  const app = await buildStatusApp({
    nc,
    db: database.db,
    logger,
    options: statusOptions(config),
    adminToken: config.STATUS_ADMIN_TOKEN,
    registries,
    tokenEndpoint: await tokenEndpointOptions(),
    health,
  });
  shutdown.onShutdown("http", async () => {
    app.status.health.drain();
    await app.close();
  });
  const address = await app.listen({ host: config.HTTP_HOST, port: config.HTTP_PORT });
  logger.info({ address }, "status listening");
} catch (err) {
  if (!shutdown.isShuttingDown) {
    logger.fatal({ err }, "status failed to start");
    await shutdown.run("start-up failed");
    process.exit(1);
  }
}

/**
 * NATS connection and idempotent stream setup.
 */
import { readFileSync } from "node:fs";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import type { NatsConnection, Status } from "@nats-io/transport-node";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type { ConsumerConfig, JetStreamManager, StreamConfig, StreamInfo } from "@nats-io/jetstream";
import { ConfigError, NatsConnectError, StreamConfigError } from "./errors.js";
import type { ConfigProblem } from "./errors.js";
import { redactUrl } from "./logger.js";
import type { Logger } from "./logger.js";

/** First reconnect delay; doubles per failed attempt up to {@link DEFAULT_RECONNECT_MAX_MS}. */
export const DEFAULT_RECONNECT_BASE_MS = 250;
/** Cap of the reconnect delay. */
export const DEFAULT_RECONNECT_MAX_MS = 10_000;

/** Options of {@link connectNats}. */
export interface ConnectNatsOptions {
  /** One URL, a comma-separated list, or an array (e.g. `config.NATS_URL`). */
  readonly servers: string | readonly string[];
  /** Connection name shown by the server (`nats server report connections`). */
  readonly name: string;
  /** Path to a `.creds` file (JWT + nkey seed); re-read on every (re)connect so rotated credentials are picked up. */
  readonly credsFile?: string | undefined;
  /** User and password (the server's `authorization { users }`); not with `credsFile`. */
  readonly user?: string | undefined;
  readonly password?: string | undefined;
  readonly logger: Logger;
  /** Default {@link DEFAULT_RECONNECT_BASE_MS}. */
  readonly reconnectBaseMs?: number;
  /** Default {@link DEFAULT_RECONNECT_MAX_MS}. */
  readonly reconnectMaxMs?: number;
  /**
   * Keep retrying when the server is not reachable at start-up (default
   * true: a service may start before its NATS server). With `false`, the
   * first failure rejects.
   */
  readonly waitOnFirstConnect?: boolean;
  /**
   * Capture a stack trace at every request/publish so that a later timeout
   * points at its caller (default false). nats.js builds an Error per
   * request for this, which costs about a tenth of a busy publisher's CPU.
   */
  readonly asyncTraces?: boolean;
}

/** Splits `servers` into a list of URLs. */
function serverList(servers: string | readonly string[]): string[] {
  const list = typeof servers === "string" ? servers.split(",") : [...servers];
  return list.map((s) => s.trim()).filter((s) => s !== "");
}

function logStatus(logger: Logger, status: Status): void {
  switch (status.type) {
    case "disconnect":
      logger.warn({ server: redactUrl(status.server) }, "nats disconnected");
      break;
    case "reconnect":
      logger.info({ server: redactUrl(status.server) }, "nats reconnected");
      break;
    case "reconnecting":
      logger.debug("nats reconnecting");
      break;
    case "error":
      logger.error({ err: status.error }, "nats server error");
      break;
    case "ldm":
      logger.warn({ server: redactUrl(status.server) }, "nats server entering lame duck mode");
      break;
    case "staleConnection":
      logger.warn("nats connection stale");
      break;
    case "slowConsumer":
      logger.warn({ subject: status.sub.getSubject(), pending: status.pending }, "nats slow consumer");
      break;
    case "forceReconnect":
      logger.info("nats forced reconnect");
      break;
    case "update":
      logger.debug({ added: status.added, deleted: status.deleted }, "nats cluster update");
      break;
    case "close":
      logger.info("nats connection closed");
      break;
    case "ping":
      break;
  }
}

/** The NATS settings of a service's config (`NatsConfig` of @georep/schema). */
export interface NatsSettings {
  readonly NATS_URL: string;
  readonly NATS_NAME?: string | undefined;
  readonly NATS_CREDS?: string | undefined;
  readonly NATS_USER?: string | undefined;
  readonly NATS_PASSWORD?: string | undefined;
}

/**
 * The connection options a service's config gives, its name defaulting to
 * `defaultName`.
 *
 * @throws {ConfigError} naming the variable when only one of `NATS_USER` and
 * `NATS_PASSWORD` is set, or both are set with `NATS_CREDS`.
 */
export function natsConnectOptions(config: NatsSettings, defaultName: string): Pick<ConnectNatsOptions, "servers" | "name" | "credsFile" | "user" | "password"> {
  const problems: ConfigProblem[] = [];
  if (config.NATS_USER !== undefined && config.NATS_PASSWORD === undefined) problems.push({ variable: "NATS_PASSWORD", message: "required with NATS_USER (or NATS_PASSWORD_FILE)" });
  if (config.NATS_USER === undefined && config.NATS_PASSWORD !== undefined) problems.push({ variable: "NATS_USER", message: "required with NATS_PASSWORD" });
  if (config.NATS_USER !== undefined && config.NATS_CREDS !== undefined) problems.push({ variable: "NATS_CREDS", message: "not with NATS_USER: one kind of NATS credentials" });
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    servers: config.NATS_URL,
    name: config.NATS_NAME ?? defaultName,
    ...(config.NATS_CREDS === undefined ? {} : { credsFile: config.NATS_CREDS }),
    ...(config.NATS_USER === undefined ? {} : { user: config.NATS_USER, password: config.NATS_PASSWORD }),
  };
}

/**
 * Connects to NATS and keeps reconnecting forever, with exponential backoff
 * (base doubling to a cap, plus jitter) that resets after each successful
 * reconnect. Status changes (disconnect, reconnect, errors, lame duck) are
 * logged. The caller owns the connection: `await nc.drain()` on shutdown.
 *
 * @throws {NatsConnectError} when the credentials file cannot be read, or
 * (with `waitOnFirstConnect: false`) the first connection fails.
 */
export async function connectNats(options: ConnectNatsOptions): Promise<NatsConnection> {
  const servers = serverList(options.servers);
  if (servers.length === 0) throw new NatsConnectError("no NATS server URL given");
  const base = options.reconnectBaseMs ?? DEFAULT_RECONNECT_BASE_MS;
  const max = options.reconnectMaxMs ?? DEFAULT_RECONNECT_MAX_MS;
  const logger = options.logger.child({ component: "nats" });

  if ((options.user === undefined) !== (options.password === undefined)) throw new NatsConnectError("a NATS user needs its password, and a password its user");
  if (options.user !== undefined && options.credsFile !== undefined) throw new NatsConnectError("NATS credentials: either a user and password or a .creds file, not both");
  let authenticator: ReturnType<typeof credsAuthenticator> | undefined;
  if (options.credsFile !== undefined) {
    const path = options.credsFile;
    try {
      readFileSync(path);
    } catch (cause) {
      throw new NatsConnectError(`cannot read NATS credentials file ${JSON.stringify(path)}`, { cause });
    }
    authenticator = credsAuthenticator(() => new Uint8Array(readFileSync(path)));
  }

  let attempt = 0;
  // Drawn once per attempt (full jitter on the upper half keeps replicas from reconnecting in lockstep).
  let jitter = Math.random();
  logger.info({ servers: servers.map(redactUrl), name: options.name }, "connecting to nats");
  const nc = await connect({
    servers,
    name: options.name,
    ...(authenticator === undefined ? {} : { authenticator }),
    ...(options.user === undefined ? {} : { user: options.user, pass: options.password }),
    maxReconnectAttempts: -1,
    noAsyncTraces: options.asyncTraces !== true,
    waitOnFirstConnect: options.waitOnFirstConnect ?? true,
    // nats.js calls this on every turn of its wait loop, not once per dial: it must not count
    // attempts itself (it would reach the cap within a second). The status loop below moves to
    // the next attempt at each dial ("reconnecting") and back to the first once connected.
    reconnectDelayHandler: () => reconnectDelay(base, max, attempt, jitter),
  }).catch((cause: unknown) => {
    throw new NatsConnectError(`cannot connect to NATS at ${servers.map(redactUrl).join(", ")}`, { cause });
  });

  logger.info({ server: nc.getServer(), name: options.name }, "nats connected");
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "reconnecting") {
        attempt++;
        jitter = Math.random();
      }
      if (status.type === "reconnect") attempt = 0;
      logStatus(logger, status);
    }
  })().catch((err: unknown) => {
    logger.error({ err }, "nats status monitor failed");
  });
  return nc;
}

/**
 * The wait before dialling again after `attempt` failed dials: doubling from
 * `base` up to `max`, the upper half of it jittered by `jitter` (0 to 1).
 */
export function reconnectDelay(base: number, max: number, attempt: number, jitter: number): number {
  const delay = Math.min(max, base * 2 ** Math.min(Math.max(0, attempt - 1), 30));
  return Math.round(delay / 2 + jitter * (delay / 2));
}

/**
 * A stream configuration with at least a name. `subjects` may be readonly,
 * so a `STREAMS.X` definition from `@georep/schema` can be passed as is
 * (or spread with deployment limits such as `max_age`).
 */
export type EnsureStreamConfig = Omit<Partial<StreamConfig>, "subjects"> & {
  readonly name: string;
  readonly subjects?: readonly string[];
};

/** What {@link ensureStream} did. */
export interface EnsureStreamResult {
  readonly action: "created" | "updated" | "unchanged";
  readonly info: StreamInfo;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => sameValue(v, b[i]));
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null) {
    const ka = Object.keys(a);
    return (
      ka.length === Object.keys(b).length &&
      ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
    );
  }
  return a === b;
}

/** The keys of `wanted` whose value differs from the server's config. */
function differences(wanted: Partial<StreamConfig>, actual: StreamConfig): string[] {
  return Object.entries(wanted)
    .filter(([key, value]) => value !== undefined && !sameValue(value, (actual as unknown as Record<string, unknown>)[key]))
    .map(([key]) => key);
}

/** JetStream API error: stream name already in use with a different configuration. */
const STREAM_NAME_EXIST = 10058;

/**
 * Creates the stream, or updates it when the settings given differ from the
 * server's, or does nothing. Only the keys present in `config` are compared,
 * so server-side defaults never cause an update. Safe to call from N
 * replicas starting together.
 *
 * @throws {StreamConfigError} when the server refuses (e.g. changing an
 * immutable setting such as `retention` or `storage`), with the server's error as `cause`.
 */
export async function ensureStream(
  jsm: JetStreamManager,
  config: EnsureStreamConfig,
  options: { readonly logger?: Logger } = {},
): Promise<EnsureStreamResult> {
  const { logger } = options;
  const { subjects, ...rest } = config;
  const wanted: Partial<StreamConfig> & { name: string } = {
    ...rest,
    ...(subjects === undefined ? {} : { subjects: [...subjects] }),
  };
  let current: StreamInfo | undefined;
  try {
    current = await jsm.streams.info(config.name);
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) {
      throw new StreamConfigError(config.name, "cannot read stream info", { cause: err });
    }
  }
  if (current === undefined) {
    try {
      const info = await jsm.streams.add(wanted);
      logger?.info({ stream: config.name }, "stream created");
      return { action: "created", info };
    } catch (err) {
      // Another replica created it between our info and add: fall through to update.
      if (!(err instanceof JetStreamApiError && err.code === STREAM_NAME_EXIST)) {
        throw new StreamConfigError(config.name, `cannot create: ${(err as Error).message}`, { cause: err });
      }
      current = await jsm.streams.info(config.name);
    }
  }
  const changed = differences(wanted, current.config);
  if (changed.length === 0) return { action: "unchanged", info: current };
  try {
    const { name: _name, ...update } = wanted;
    const info = await jsm.streams.update(config.name, update);
    logger?.info({ stream: config.name, changed }, "stream updated");
    return { action: "updated", info };
  } catch (err) {
    throw new StreamConfigError(config.name, `cannot update ${changed.join(", ")}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** What {@link ensureConsumer} did. */
export type EnsureConsumerAction = "created" | "updated" | "unchanged";

/**
 * Creates the durable consumer `config.durable_name` on `stream`, or updates
 * the `mutable` settings that differ from the server's, or does nothing.
 * Safe to call from N replicas starting together (a replica that loses the
 * race to create it finds it there). Settings JetStream cannot change on an
 * existing consumer (ack policy, deliver policy…) are only used on creation.
 */
export async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  config: Partial<ConsumerConfig> & { readonly durable_name: string },
  mutable: readonly (keyof ConsumerConfig)[],
): Promise<EnsureConsumerAction> {
  const info = () =>
    jsm.consumers.info(stream, config.durable_name).catch((err: unknown) => {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound) return undefined;
      throw err;
    });
  const current = await info();
  if (current === undefined) {
    try {
      await jsm.consumers.add(stream, config);
      return "created";
    } catch (err) {
      if ((await info().catch(() => undefined)) === undefined) throw err;
      return "unchanged";
    }
  }
  const have = current.config as unknown as Record<string, unknown>;
  const want = config as Record<string, unknown>;
  const changed = mutable.filter((key) => have[key] !== want[key]);
  if (changed.length === 0) return "unchanged";
  await jsm.consumers.update(stream, config.durable_name, Object.fromEntries(mutable.map((key) => [key, want[key]])));
  return "updated";
}

/**
 * The nats-server config of a georep site: JetStream in the site's own
 * domain, a user per service, and either the primary's leafnode listener (authenticated) or a
 * secondary's leafnode remotes to it. Used by the local stack (through
 * `@georep/testing`'s `startNats`) and the compose files.
 */
import { commentLines } from "./yaml.js";

/**
 * A value nats-server reads from the environment at start (`$NAME` in its
 * config). The variable's content is parsed as a config value: a number-like
 * or space-holding text must arrive quoted (`"…"`) to stay a string.
 */
export interface EnvReference {
  readonly env: string;
}

/** A literal (rendered quoted) or an environment reference. */
export type NatsValue = string | EnvReference;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `$name` in the rendered config. */
export function envReference(name: string): EnvReference {
  if (!ENV_NAME.test(name)) throw new TypeError(`not an environment variable name: ${JSON.stringify(name)}`);
  return { env: name };
}

/** Subjects no secondary sends to or takes from the leafnode: each secondary's transfer jobs are its own. */
export const SITE_LOCAL_SUBJECTS: readonly string[] = ["georep.transfer.>"];

/**
 * The georep services of each role that connect to their site's NATS, each as
 * its own user (DESIGN "Auth": credentials per service). Replicas of a service
 * share its user.
 */
export const NATS_SERVICE_USERS = {
  primary: ["event-log", "ingest", "status"],
  secondary: ["dispatcher", "status", "transfer"],
} as const satisfies Record<"primary" | "secondary", readonly string[]>;

/** A georep service with a NATS user. */
export type NatsServiceUser = (typeof NATS_SERVICE_USERS)[keyof typeof NATS_SERVICE_USERS][number];

/** What a user may publish and subscribe to; replies to requests it received are always allowed (`allow_responses`). */
export interface NatsPermissions {
  readonly publish: readonly string[];
  /** Refused even where `publish` allows it. */
  readonly denyPublish?: readonly string[];
  readonly subscribe: readonly string[];
}

/**
 * What no georep service does, whatever JetStream API it may use: delete or
 * purge a stream, delete a stored message or a consumer, here or in another
 * domain. Only an operator destroys the event log.
 */
export const DESTRUCTIVE_JETSTREAM_API: readonly string[] = ["API", "*.API"].flatMap((api) =>
  ["STREAM.DELETE.>", "STREAM.PURGE.>", "STREAM.MSG.DELETE.>", "CONSUMER.DELETE.>"].map((op) => `$JS.${api}.${op}`),
);

/** What each service publishes and subscribes to, and the JetStream API it uses. */
const SERVICE_PERMISSIONS: Readonly<Record<NatsServiceUser, NatsPermissions>> = {
  // Registry events (and their dead letters) into REGISTRY_EVENTS, blob hints; reads stream info for readiness.
  ingest: { publish: ["georep.registry.events.>", "georep.dlq.registry.events.>", "georep.blobs.pushed", "$JS.API.INFO", "$JS.API.STREAM.INFO.*"], subscribe: ["_INBOX.>"] },
  // Owns the primary's streams, consumes REGISTRY_EVENTS, publishes GEO_EVENTS and dead letters.
  "event-log": { publish: ["georep.geo.events.>", "georep.dlq.registry.events.>", "$JS.API.>", "$JS.ACK.>"], subscribe: ["_INBOX.>"] },
  // Owns the secondary's streams (the GEO_EVENTS mirror reads the primary's domain), consumes GEO_EVENTS,
  // queues TRANSFER_JOBS; takes resync requests and sync-done hints.
  dispatcher: { publish: ["georep.transfer.jobs.>", "$JS.API.>", "$JS.*.API.>", "$JS.ACK.>"], subscribe: ["_INBOX.>", "georep.*.resync", "georep.*.syncs.done"] },
  // Consumes TRANSFER_JOBS, says when a sync is recorded, takes blob push hints.
  transfer: { publish: ["georep.*.syncs.done", "$JS.API.>", "$JS.ACK.>"], subscribe: ["_INBOX.>", "georep.blobs.pushed"] },
  // Site reports (both roles), resync requests to dispatchers, stream info for the dead-letter count.
  status: { publish: ["georep.sites.*.status", "georep.*.resync", "$JS.API.INFO", "$JS.API.STREAM.INFO.*"], subscribe: ["_INBOX.>", "georep.sites.*.status"] },
};
/**
 * Each service's permissions: what it publishes and subscribes to, and the
 * JetStream API it uses, nothing more (so ingest, say, can neither queue a
 * transfer job nor write GEO_EVENTS), and none of it destructive
 * ({@link DESTRUCTIVE_JETSTREAM_API}). Replies to its own requests arrive on
 * `_INBOX.>`.
 */
export const NATS_SERVICE_PERMISSIONS: Readonly<Record<NatsServiceUser, NatsPermissions>> = Object.fromEntries(
  Object.entries(SERVICE_PERMISSIONS).map(([user, p]) => [user, { ...p, denyPublish: DESTRUCTIVE_JETSTREAM_API }]),
) as Record<NatsServiceUser, NatsPermissions>;

/** The environment variable that holds a service user's password in the shipped nats.conf: `NATS_PASSWORD_EVENT_LOG`. */
export function natsPasswordVariable(user: string): string {
  return envReference(`NATS_PASSWORD_${user.toUpperCase().replaceAll("-", "_")}`).env;
}

/** A client user of the server. */
export interface NatsUser {
  readonly user: NatsValue;
  readonly password: NatsValue;
  /** Without them the user may publish and subscribe to anything (an operator). */
  readonly permissions?: NatsPermissions;
}

function userLine(u: NatsUser): string {
  const parts = [`user: ${value(u.user)}`, `password: ${value(u.password)}`];
  const p = u.permissions;
  if (p !== undefined) {
    const deny = (p.denyPublish ?? []).length > 0 ? `, deny: ${JSON.stringify(p.denyPublish)}` : "";
    parts.push(`permissions: { publish: { allow: ${JSON.stringify(p.publish)}${deny} }, subscribe: { allow: ${JSON.stringify(p.subscribe)} }, allow_responses: true }`);
  }
  return `{ ${parts.join(", ")} }`;
}

export interface LeafnodeAuthorization {
  readonly user: NatsValue;
  readonly password: NatsValue;
}

/** TLS of the leafnode listener: the hub's certificate (its names must match what the leaves dial) and key. */
export interface LeafnodeListenTls {
  readonly certFile: string;
  readonly keyFile: string;
}

/** One hub this server joins as a leafnode. */
export interface LeafnodeRemote {
  /** `nats-leaf://user:password@host:port`. */
  readonly url: NatsValue;
  /** Join over TLS, trusting the hub's certificate when this CA signed it. */
  readonly tls?: { readonly caFile: string };
  /** Subjects not taken from the hub. */
  readonly denyImports?: readonly string[];
  /** Subjects not sent to the hub. */
  readonly denyExports?: readonly string[];
}

/** Options of {@link natsConfig}. */
export interface NatsConfigOptions {
  /** `server_name`. */
  readonly serverName: NatsValue;
  /** Interface of the client and monitoring listeners; default `0.0.0.0`. */
  readonly host?: string;
  /** Client port. */
  readonly port: number;
  /** HTTP monitoring port (`/healthz`, `/varz`, `/leafz`, `/jsz`). */
  readonly monitorPort: number;
  readonly jetstream: { readonly storeDir: string; readonly domain?: NatsValue };
  /** Client users; without them any client may connect (tests of one service). */
  readonly users?: readonly NatsUser[];
  readonly leafnodes?: {
    /** Accept leafnode connections (the primary's hub). */
    readonly listen?: {
      readonly host?: string;
      readonly port: number;
      readonly authorization?: LeafnodeAuthorization;
      /** Accept leaves over TLS only. */
      readonly tls?: LeafnodeListenTls;
      /**
       * `host:port` the hub tells its leafnodes to reconnect to, instead of its
       * own listener (behind a proxy or NAT: leaves must keep going through it).
       */
      readonly advertise?: string;
    };
    /** Join these hubs (a secondary). */
    readonly remotes?: readonly LeafnodeRemote[];
    /** Seconds between reconnect attempts to a remote. */
    readonly reconnectSeconds?: number;
  };
  /** Comment lines at the top of the file. */
  readonly header?: string;
}

function value(v: NatsValue): string {
  return typeof v === "string" ? JSON.stringify(v) : `$${envReference(v.env).env}`;
}

function remoteLine(remote: LeafnodeRemote): string {
  const parts = [`url: ${value(remote.url)}`];
  if (remote.tls !== undefined) parts.push(`tls: { ca_file: ${JSON.stringify(remote.tls.caFile)} }`);
  if ((remote.denyImports ?? []).length > 0) parts.push(`deny_imports: ${JSON.stringify(remote.denyImports)}`);
  if ((remote.denyExports ?? []).length > 0) parts.push(`deny_exports: ${JSON.stringify(remote.denyExports)}`);
  return `{ ${parts.join(", ")} }`;
}

/** The nats-server config text. */
export function natsConfig(options: NatsConfigOptions): string {
  const host = options.host ?? "0.0.0.0";
  const lines = [
    `server_name: ${value(options.serverName)}`,
    `listen: ${JSON.stringify(`${host}:${options.port}`)}`,
    `http: ${JSON.stringify(`${host}:${options.monitorPort}`)}`,
    `jetstream {`,
    `  store_dir: ${JSON.stringify(options.jetstream.storeDir)}`,
    ...(options.jetstream.domain === undefined ? [] : [`  domain: ${value(options.jetstream.domain)}`]),
    `}`,
  ];
  const users = options.users ?? [];
  if (users.length > 0) {
    lines.push(`authorization {`, `  users: [`, ...users.map((u) => `    ${userLine(u)}`), `  ]`, `}`);
  }
  const listen = options.leafnodes?.listen;
  const remotes = options.leafnodes?.remotes ?? [];
  if (listen !== undefined || remotes.length > 0) {
    lines.push(`leafnodes {`);
    if (listen !== undefined) {
      lines.push(`  listen: ${JSON.stringify(`${listen.host ?? host}:${listen.port}`)}`);
      const auth = listen.authorization;
      if (auth !== undefined) lines.push(`  authorization { user: ${value(auth.user)}, password: ${value(auth.password)} }`);
      if (listen.tls !== undefined) lines.push(`  tls { cert_file: ${JSON.stringify(listen.tls.certFile)}, key_file: ${JSON.stringify(listen.tls.keyFile)} }`);
      if (listen.advertise !== undefined) lines.push(`  advertise: ${JSON.stringify(listen.advertise)}`);
    }
    if (remotes.length > 0) {
      const reconnect = options.leafnodes?.reconnectSeconds;
      if (reconnect !== undefined) lines.push(`  reconnect: ${reconnect}`);
      lines.push(`  remotes: [`, ...remotes.map((r) => `    ${remoteLine(r)}`), `  ]`);
    }
    lines.push(`}`);
  }
  return `${commentLines(options.header)}${lines.join("\n")}\n`;
}

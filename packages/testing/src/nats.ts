/** A real nats-server with JetStream on free ports, optionally a leafnode hub or leaf. */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { natsConfig } from "@georep/deploy-templates";
import type { NatsPermissions } from "@georep/deploy-templates";
import { findBinary, makeServerDir } from "./files.js";
import { freePort, withFreePorts } from "./ports.js";
import { removeDir, startServerProcess } from "./process.js";

export interface LeafnodeAuth {
  readonly user: string;
  readonly password: string;
}

/** A client user of the server. */
export interface NatsUserAuth {
  readonly user: string;
  readonly password: string;
  /** What it may publish and subscribe to (anything without). */
  readonly permissions?: NatsPermissions;
}

export interface NatsOptions {
  /** server_name; defaults to a unique name. */
  readonly name?: string;
  /** JetStream domain of this server (each site has its own). */
  readonly domain?: string;
  /** Accept leafnode connections (the primary site's hub); `true` picks a free port. */
  readonly leafnodeListen?: boolean | { readonly port?: number; readonly auth?: LeafnodeAuth; readonly advertise?: string };
  /** Connect as a leafnode to these hubs (`nats-leaf://user:pass@127.0.0.1:port`). */
  readonly leafnodeRemotes?: readonly string[];
  /** Subjects this leaf neither sends to nor receives from its hubs (site-local traffic). */
  readonly leafnodeDeny?: readonly string[];
  /** Client users (`authorization { users }`); without them any client may connect. */
  readonly users?: readonly NatsUserAuth[];
  /** Client port; a free one by default. */
  readonly port?: number;
  /** Keep running after this process exits (the local stack). */
  readonly persistent?: boolean;
  /** Where output goes; a file in the server's temp dir by default. */
  readonly logFile?: string;
  /** Parent dir for the server's temp dir. */
  readonly baseDir?: string;
}

export interface RunningNats extends AsyncDisposable {
  readonly name: string;
  /** `nats://127.0.0.1:port` for clients. */
  readonly url: string;
  readonly port: number;
  /** `http://127.0.0.1:port` of the monitoring endpoint (/varz, /leafz, /jsz). */
  readonly monitorUrl: string;
  /** `nats-leaf://…` that a leaf uses to reach this hub, when it listens for leafnodes. */
  readonly leafnodeUrl: string | undefined;
  readonly domain: string | undefined;
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly pid: number;
  stop(): Promise<void>;
  /** Stops and starts again on the same ports with the same JetStream store. */
  restart(): Promise<void>;
}

/** The nats-server config the kit (and the local stack) run with, rendered by `@georep/deploy-templates`. */
export function renderNatsConfig(options: {
  name: string;
  port: number;
  monitorPort: number;
  storeDir: string;
  domain?: string | undefined;
  leafnodeListen?: { port: number; auth?: LeafnodeAuth | undefined; advertise?: string | undefined } | undefined;
  leafnodeRemotes?: readonly string[] | undefined;
  leafnodeDeny?: readonly string[] | undefined;
  users?: readonly NatsUserAuth[] | undefined;
}): string {
  const listen = options.leafnodeListen;
  const deny = options.leafnodeDeny ?? [];
  return natsConfig({
    serverName: options.name,
    host: "127.0.0.1",
    port: options.port,
    monitorPort: options.monitorPort,
    jetstream: { storeDir: options.storeDir, ...(options.domain === undefined ? {} : { domain: options.domain }) },
    ...(options.users === undefined ? {} : { users: options.users }),
    leafnodes: {
      ...(listen === undefined
        ? {}
        : {
            listen: {
              port: listen.port,
              ...(listen.auth === undefined ? {} : { authorization: listen.auth }),
              ...(listen.advertise === undefined ? {} : { advertise: listen.advertise }),
            },
          }),
      remotes: (options.leafnodeRemotes ?? []).map((url) => ({ url, denyImports: deny, denyExports: deny })),
      reconnectSeconds: 1,
    },
  });
}

let counter = 0;

/** Starts nats-server with JetStream and waits until its monitoring endpoint says healthy. */
export async function startNats(options: NatsOptions = {}): Promise<RunningNats> {
  const binary = findBinary("nats-server", "nats-server", ["/usr/sbin", "/usr/local/sbin"]);
  const name = options.name ?? `georep-test-${process.pid}-${++counter}`;
  const dir = await makeServerDir("nats", { persistent: options.persistent ?? false, ...(options.baseDir === undefined ? {} : { parent: options.baseDir }) });
  const configFile = join(dir, "nats.conf");
  const logFile = options.logFile ?? join(dir, "nats.log");
  const listen = options.leafnodeListen;
  const portsFixed = options.port !== undefined || (typeof listen === "object" && listen.port !== undefined);
  const { port, monitorUrl, leafnodeListen, server } = await withFreePorts(portsFixed, async () => {
    const [port, monitorPort] = [options.port ?? (await freePort()), await freePort()];
    const leafnodeListen =
      listen === undefined || listen === false
        ? undefined
        : {
            port: (typeof listen === "object" ? listen.port : undefined) ?? (await freePort()),
            auth: typeof listen === "object" ? listen.auth : undefined,
            advertise: typeof listen === "object" ? listen.advertise : undefined,
          };
    await writeFile(
      configFile,
      renderNatsConfig({ name, port, monitorPort, storeDir: join(dir, "jetstream"), domain: options.domain, leafnodeListen, leafnodeRemotes: options.leafnodeRemotes, leafnodeDeny: options.leafnodeDeny, users: options.users }),
    );
    const monitorUrl = `http://127.0.0.1:${monitorPort}`;
    const server = await startServerProcess({
      name: `nats-server ${name}`,
      command: binary,
      args: ["-c", configFile],
      logFile,
      stopSignal: "SIGTERM",
      persistent: options.persistent ?? false,
      // Logged once every listener is bound.
      readyLog: /\[INF\] Server is ready/,
      ready: async () => (await fetch(`${monitorUrl}/healthz`)).ok,
    });
    return { port, monitorUrl, leafnodeListen, server };
  });
  const auth = leafnodeListen?.auth;
  const credentials = auth === undefined ? "" : `${encodeURIComponent(auth.user)}:${encodeURIComponent(auth.password)}@`;
  const stop = async () => {
    await server.stop();
    if (options.persistent !== true) await removeDir(dir);
  };
  return {
    name,
    url: `nats://127.0.0.1:${port}`,
    port,
    monitorUrl,
    leafnodeUrl: leafnodeListen === undefined ? undefined : `nats-leaf://${credentials}127.0.0.1:${leafnodeListen.port}`,
    domain: options.domain,
    dir,
    configFile,
    logFile,
    get pid() {
      return server.pid;
    },
    stop,
    restart: () => server.restart(),
    [Symbol.asyncDispose]: stop,
  };
}

/** Waits until `server` reports at least `count` leafnode connections (via /leafz). */
export async function waitForLeafnodes(server: Pick<RunningNats, "monitorUrl" | "name">, count = 1, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const body = (await (await fetch(`${server.monitorUrl}/leafz`)).json()) as { leafnodes?: number };
      if ((body.leafnodes ?? 0) >= count) return;
    } catch {
      // not answering yet
    }
    if (Date.now() > deadline) throw new Error(`nats-server ${server.name}: fewer than ${count} leafnode connection(s) after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** A real CNCF Distribution registry (Debian's docker-registry) on a free port. */
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { findBinary, makeServerDir } from "./files.js";
import { freePort } from "./ports.js";
import { removeDir, startServerProcess } from "./process.js";
import { toYaml } from "./yaml.js";
import type { YamlValue } from "./yaml.js";

export interface RegistryUser {
  readonly username: string;
  readonly password: string;
}

/** Docker token auth: Distribution trusts JWTs signed by a key in `rootCertBundle`. */
export interface TokenAuth {
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  readonly rootCertBundle: string;
}

export type RegistryAuth = { readonly htpasswd: { readonly users: readonly RegistryUser[] } } | { readonly token: TokenAuth };

/** One notification endpoint (Distribution `notifications.endpoints[]`). */
export interface NotificationEndpoint {
  readonly url: string;
  readonly name?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
  readonly threshold?: number;
  readonly backoffMs?: number;
  readonly ignoredMediaTypes?: readonly string[];
  readonly ignoredActions?: readonly string[];
}

export interface RegistryOptions {
  readonly auth?: RegistryAuth;
  readonly notifications?: readonly NotificationEndpoint[];
  /** Storage root; a temp dir by default (kept if given). */
  readonly storageDir?: string;
  readonly port?: number;
  /** Merged over the generated config, for settings the options do not cover. */
  readonly extraConfig?: Readonly<Record<string, YamlValue>>;
  readonly persistent?: boolean;
  readonly baseDir?: string;
  /** Where output goes; a file in the server's temp dir by default. */
  readonly logFile?: string;
}

export interface RunningRegistry extends AsyncDisposable {
  /** `http://127.0.0.1:port` */
  readonly url: string;
  /** `127.0.0.1:port`, the host part of image references. */
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  readonly storageDir: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly pid: number;
  stop(): Promise<void>;
  /** Stops and starts again on the same port and storage. */
  restart(): Promise<void>;
}

const ms = (value: number) => `${value}ms`;

/** The Distribution config the kit (and the local stack) run with. */
export function renderRegistryConfig(options: {
  port: number;
  storageDir: string;
  httpSecret: string;
  htpasswdFile?: string | undefined;
  token?: TokenAuth | undefined;
  notifications?: readonly NotificationEndpoint[] | undefined;
  extraConfig?: Readonly<Record<string, YamlValue>> | undefined;
}): string {
  const config: Record<string, YamlValue> = {
    version: "0.1",
    log: { level: "info", formatter: "text", fields: { service: "registry" } },
    storage: {
      filesystem: { rootdirectory: options.storageDir },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: `127.0.0.1:${options.port}`, secret: options.httpSecret, headers: { "X-Content-Type-Options": ["nosniff"] } },
  };
  if (options.htpasswdFile !== undefined) config.auth = { htpasswd: { realm: "georep", path: options.htpasswdFile } };
  if (options.token !== undefined) {
    const t = options.token;
    config.auth = { token: { realm: t.realm, service: t.service, issuer: t.issuer, rootcertbundle: t.rootCertBundle } };
  }
  const endpoints = options.notifications ?? [];
  if (endpoints.length > 0) {
    config.notifications = {
      events: { includereferences: true },
      endpoints: endpoints.map((e, i) => ({
        name: e.name ?? `endpoint-${i + 1}`,
        url: e.url,
        headers: Object.fromEntries(Object.entries(e.headers ?? {}).map(([k, v]) => [k, [v]])),
        timeout: ms(e.timeoutMs ?? 2000),
        threshold: e.threshold ?? 5,
        backoff: ms(e.backoffMs ?? 500),
        ignoredmediatypes: [...(e.ignoredMediaTypes ?? [])],
        ignore: { mediatypes: [...(e.ignoredMediaTypes ?? [])], actions: [...(e.ignoredActions ?? [])] },
      })),
    };
  }
  return toYaml(options.extraConfig === undefined ? config : merge(config, options.extraConfig));
}

function merge(base: Record<string, YamlValue>, over: Readonly<Record<string, YamlValue>>): Record<string, YamlValue> {
  const out: Record<string, YamlValue> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isRecord(current) && isRecord(value) ? merge(current, value) : value;
  }
  return out;
}

function isRecord(value: YamlValue | undefined): value is Record<string, YamlValue> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An htpasswd file with bcrypt hashes (the only kind Distribution accepts). */
export function renderHtpasswd(users: readonly RegistryUser[]): string {
  return users.map((u) => `${u.username}:${bcrypt.hashSync(u.password, 6)}\n`).join("");
}

/** Starts Distribution and waits until `/v2/` answers (200, or 401 with auth). */
export async function startRegistry(options: RegistryOptions = {}): Promise<RunningRegistry> {
  const binary = findBinary("docker-registry", "docker-registry", ["/usr/bin"]);
  const dir = await makeServerDir("registry", { persistent: options.persistent ?? false, ...(options.baseDir === undefined ? {} : { parent: options.baseDir }) });
  const storageDir = options.storageDir ?? join(dir, "storage");
  await mkdir(storageDir, { recursive: true });
  const port = options.port ?? (await freePort());
  let htpasswdFile: string | undefined;
  if (options.auth !== undefined && "htpasswd" in options.auth) {
    htpasswdFile = join(dir, "htpasswd");
    await writeFile(htpasswdFile, renderHtpasswd(options.auth.htpasswd.users), { mode: 0o600 });
  }
  const configFile = join(dir, "config.yml");
  const logFile = options.logFile ?? join(dir, "registry.log");
  await writeFile(
    configFile,
    renderRegistryConfig({
      port,
      storageDir,
      httpSecret: randomBytes(16).toString("hex"),
      htpasswdFile,
      token: options.auth !== undefined && "token" in options.auth ? options.auth.token : undefined,
      notifications: options.notifications,
      extraConfig: options.extraConfig,
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const server = await startServerProcess({
    name: "registry",
    command: binary,
    args: ["serve", configFile],
    logFile,
    // Distribution reads no other config: keep REGISTRY_* from the caller's env out.
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("REGISTRY_"))),
    stopSignal: "SIGTERM",
    persistent: options.persistent ?? false,
    ready: async () => {
      const res = await fetch(`${url}/v2/`);
      await res.body?.cancel();
      return res.status === 200 || res.status === 401;
    },
  });
  const stop = async () => {
    await server.stop();
    if (options.persistent !== true) await removeDir(dir);
  };
  return {
    url,
    host: `127.0.0.1:${port}`,
    port,
    dir,
    storageDir,
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

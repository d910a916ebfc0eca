/** A real CNCF Distribution registry (Debian's docker-registry) on a free port. */
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { registryConfig } from "@georep/deploy-templates";
import type { NotificationEndpoint, RegistryAuthOptions, TokenAuthOptions, YamlValue } from "@georep/deploy-templates";
import { findBinary, makeServerDir } from "./files.js";
import { freePort, withFreePorts } from "./ports.js";
import { removeDir, startServerProcess } from "./process.js";

export interface RegistryUser {
  readonly username: string;
  readonly password: string;
}


/**
 * `GOGC` of every registry started here, and the compose files' default
 * (`REGISTRY_GOGC`). Distribution 2.8 builds a fresh URL router for every
 * request; collecting that garbage was a fifth of its CPU at the default
 * (100). At 400 a registry spends about 20 % less CPU per request (measured:
 * 2.7 → 2.1 ms per HEAD with token auth on the 2-core test machine) for a
 * heap up to five times its live data instead of twice.
 */
export const REGISTRY_GOGC_DEFAULT = "400";
/** Docker token auth: Distribution trusts JWTs signed by a key in `rootCertBundle`. */
export type TokenAuth = TokenAuthOptions;

export type RegistryAuth = { readonly htpasswd: { readonly users: readonly RegistryUser[] } } | { readonly token: TokenAuth };

export type { NotificationEndpoint };

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

const INSTANCE_HEADER = "X-Georep-Instance";

/** The Distribution config the kit (and the local stack) run with, rendered by `@georep/deploy-templates`. */
export function renderRegistryConfig(options: {
  port: number;
  storageDir: string;
  httpSecret: string;
  htpasswdFile?: string | undefined;
  token?: TokenAuth | undefined;
  notifications?: readonly NotificationEndpoint[] | undefined;
  extraConfig?: Readonly<Record<string, YamlValue>> | undefined;
  /** Sent back as `X-Georep-Instance` on every response, so a start knows it reached its own server. */
  instance?: string | undefined;
}): string {
  let auth: RegistryAuthOptions | undefined;
  if (options.htpasswdFile !== undefined) auth = { htpasswd: { realm: "georep", path: options.htpasswdFile } };
  if (options.token !== undefined) auth = { token: options.token };
  return registryConfig({
    addr: `127.0.0.1:${options.port}`,
    storage: { filesystem: { rootDirectory: options.storageDir } },
    uploadPurging: false,
    httpSecret: options.httpSecret,
    ...(options.instance === undefined ? {} : { headers: { [INSTANCE_HEADER]: options.instance } }),
    ...(auth === undefined ? {} : { auth }),
    ...(options.notifications === undefined ? {} : { notifications: options.notifications }),
    ...(options.extraConfig === undefined ? {} : { extraConfig: options.extraConfig }),
  });
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
  let htpasswdFile: string | undefined;
  if (options.auth !== undefined && "htpasswd" in options.auth) {
    htpasswdFile = join(dir, "htpasswd");
    await writeFile(htpasswdFile, renderHtpasswd(options.auth.htpasswd.users), { mode: 0o600 });
  }
  const configFile = join(dir, "config.yml");
  const logFile = options.logFile ?? join(dir, "registry.log");
  const { port, url, server } = await withFreePorts(options.port !== undefined, async () => {
    const port = options.port ?? (await freePort());
    const instance = randomBytes(8).toString("hex");
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
        instance,
      }),
    );
    const url = `http://127.0.0.1:${port}`;
    const server = await startServerProcess({
      name: "registry",
      command: binary,
      args: ["serve", configFile],
      logFile,
      // Distribution reads no other config: keep REGISTRY_* from the caller's env out. GOGC as the
      // compose files set it (REGISTRY_GOGC_DEFAULT) unless the caller's env says otherwise.
      env: { GOGC: REGISTRY_GOGC_DEFAULT, ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("REGISTRY_"))) },
      stopSignal: "SIGTERM",
      persistent: options.persistent ?? false,
      // Its own answer, not that of a process that took the port between our pick and the bind.
      ready: async () => {
        const res = await fetch(`${url}/v2/`);
        await res.body?.cancel();
        return (res.status === 200 || res.status === 401) && res.headers.get(INSTANCE_HEADER) === instance;
      },
    });
    return { port, url, server };
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

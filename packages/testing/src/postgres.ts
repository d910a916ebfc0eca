/**
 * PostgreSQL for tests: its own cluster (initdb into a temp dir, run as the
 * postgres user when we are root), or a fresh database on an existing server
 * when `GEOREP_TEST_DATABASE_URL` is set (the caller passes it in `existingUrl`).
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { UnsupportedOperationError } from "./errors.js";
import { giveTo, lookupUser, makeServerDir, postgresBinDir } from "./files.js";
import { freePort, withFreePorts } from "./ports.js";
import { removeDir, startServerProcess } from "./process.js";

const run = promisify(execFile);

export interface PostgresOptions {
  /** Name of the database `url` points at; a unique one by default. */
  readonly database?: string;
  /**
   * Use this server instead of starting one: a fresh database is created on it
   * and dropped by `stop()`. Defaults to `process.env.GEOREP_TEST_DATABASE_URL`.
   */
  readonly existingUrl?: string | undefined;
  readonly port?: number;
  /** Keep running after this process exits (the local stack). */
  readonly persistent?: boolean;
  /** Where output goes; a file in the server's temp dir by default. */
  readonly logFile?: string;
  /** Parent dir for the cluster's temp dir (must be traversable by the postgres user). */
  readonly baseDir?: string;
}

export interface RunningPostgres extends AsyncDisposable {
  /** `postgres://postgres@127.0.0.1:port/<database>` */
  readonly url: string;
  readonly database: string;
  readonly port: number;
  /** The cluster's data dir; `undefined` on an existing server. */
  readonly dir: string | undefined;
  readonly logFile: string | undefined;
  readonly pid: number | undefined;
  /** Creates another database on the same server and returns its URL. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
  /** Stops and starts the cluster on the same port with the same data (own cluster only). */
  restart(): Promise<void>;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

function checkIdentifier(name: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`invalid database name "${name}": use lowercase letters, digits and _ (at most 63)`);
  return name;
}

const uniqueName = () => `georep_test_${randomBytes(5).toString("hex")}`;

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Starts (or borrows) a PostgreSQL server and returns a fresh database on it. */
export async function startPostgres(options: PostgresOptions = {}): Promise<RunningPostgres> {
  const database = checkIdentifier(options.database ?? uniqueName());
  const existing = "existingUrl" in options ? options.existingUrl : process.env.GEOREP_TEST_DATABASE_URL;
  if (existing !== undefined && existing !== "") return borrow(existing, database);
  return ownCluster(database, options);
}

async function borrow(serverUrl: string, database: string): Promise<RunningPostgres> {
  const created: string[] = [];
  const createDatabase = async (name: string) => {
    await withClient(serverUrl, (c) => c.query(`CREATE DATABASE "${checkIdentifier(name)}"`));
    created.push(name);
    return withDatabase(serverUrl, name);
  };
  const url = await createDatabase(database);
  const stop = async () => {
    await withClient(serverUrl, async (c) => {
      for (const name of created.splice(0)) await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    });
  };
  return {
    url,
    database,
    port: Number(new URL(serverUrl).port || 5432),
    dir: undefined,
    logFile: undefined,
    pid: undefined,
    createDatabase,
    stop,
    restart: async () => {
      throw new UnsupportedOperationError("restart is not possible on a borrowed server (GEOREP_TEST_DATABASE_URL)");
    },
    [Symbol.asyncDispose]: stop,
  };
}

async function ownCluster(database: string, options: PostgresOptions): Promise<RunningPostgres> {
  const bin = postgresBinDir();
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? lookupUser("postgres") : undefined;
  if (asRoot && owner === undefined) throw new Error("running as root but there is no postgres user to run PostgreSQL as");
  const dir = await makeServerDir("postgres", { persistent: options.persistent ?? false, ...(options.baseDir === undefined ? {} : { parent: options.baseDir }) });
  if (owner !== undefined) await giveTo(dir, owner);
  const dataDir = join(dir, "data");
  const logFile = options.logFile ?? join(dir, "postgres.log");
  const user = owner === undefined ? {} : { uid: owner.uid, gid: owner.gid };

  await run(join(bin, "initdb"), ["-D", dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"], { ...user, env: { ...process.env, LC_ALL: "C" } });

  const { port, serverUrl, server } = await withFreePorts(options.port !== undefined, async () => {
    const port = options.port ?? (await freePort());
    const serverUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
    const server = await startServerProcess({
      name: "postgres",
      command: join(bin, "postgres"),
      // fsync off: test data is disposable; the unix socket stays in our dir.
      args: ["-D", dataDir, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200"],
      logFile,
      ...user,
      stopSignal: "SIGINT", // fast shutdown: disconnects clients instead of waiting for them
      persistent: options.persistent ?? false,
      // Logged once the port is bound and recovery is done.
      readyLog: /database system is ready to accept connections/,
      ready: async () => {
        await withClient(serverUrl, (c) => c.query("SELECT 1"));
        return true;
      },
    });
    return { port, serverUrl, server };
  });
  const createDatabase = async (name: string) => {
    await withClient(serverUrl, (c) => c.query(`CREATE DATABASE "${checkIdentifier(name)}"`));
    return withDatabase(serverUrl, name);
  };
  const url = await createDatabase(database);
  const stop = async () => {
    await server.stop();
    if (options.persistent !== true) await removeDir(dir);
  };
  return {
    url,
    database,
    port,
    dir,
    logFile,
    get pid() {
      return server.pid;
    },
    createDatabase,
    stop,
    restart: () => server.restart(),
    [Symbol.asyncDispose]: stop,
  };
}

/** Small filesystem and OS helpers shared by the server starters. */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { chown, mkdtemp, open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MissingBinaryError } from "./errors.js";
import { registerDir } from "./process.js";

/** The last `lines` lines of a file, or "" when it cannot be read. */
export async function tailFile(path: string, lines = 30, maxBytes = 16_384): Promise<string> {
  try {
    const handle = await open(path, "r");
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, maxBytes);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      return buffer.toString("utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } finally {
      await handle.close();
    }
  } catch {
    return "";
  }
}

/**
 * A fresh temp dir for one server. Unless `persistent`, the watchdog removes
 * it if this process dies before `stop()` does.
 */
export async function makeServerDir(prefix: string, options: { persistent?: boolean; parent?: string } = {}): Promise<string> {
  const dir = await mkdtemp(join(options.parent ?? tmpdir(), `georep-${prefix}-`));
  if (options.persistent !== true) registerDir(dir);
  return dir;
}

/** Finds an executable on PATH or in the given extra dirs. */
export function findBinary(name: string, debianPackage: string, extraDirs: readonly string[] = []): string {
  const dirs = [...(process.env.PATH ?? "").split(":").filter(Boolean), ...extraDirs];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  throw new MissingBinaryError(name, debianPackage);
}

/** The bin dir of the newest PostgreSQL under /usr/lib/postgresql (Debian's layout). */
export function postgresBinDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, "bin", "postgres")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = versions[0];
  if (newest !== undefined) return join(root, newest, "bin");
  const initdb = findBinary("initdb", "postgresql");
  return join(initdb, "..");
}

/** uid/gid of a local user, from /etc/passwd. */
export function lookupUser(name: string): { uid: number; gid: number } | undefined {
  try {
    for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
      const [user, , uid, gid] = line.split(":");
      if (user === name && uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid) };
    }
  } catch {
    // no /etc/passwd: not a Debian-like system
  }
  return undefined;
}

/** Hands a dir to another user (postgres refuses to run as root). */
export async function giveTo(path: string, owner: { uid: number; gid: number }): Promise<void> {
  await chown(path, owner.uid, owner.gid);
}

/**
 * deploy/entrypoint.sh: how the registry and nats containers get their
 * secrets (NAME_FILE) and the values built from them (NAME_TEMPLATE), run
 * with /bin/sh (dash here, busybox ash in the images: POSIX only).
 */
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, run } from "../support/tools.js";

const ENTRYPOINT = join(ROOT, "deploy/entrypoint.sh");
const PRINT_ENV = [process.execPath, "-e", "process.stdout.write(JSON.stringify(process.env))"];
let dir: string;

async function entrypoint(env: Record<string, string>, command: readonly string[] = PRINT_ENV) {
  const result = await run("/bin/sh", [ENTRYPOINT, ...command], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env } });
  return { ...result, env: result.code === 0 && command === PRINT_ENV ? (JSON.parse(result.stdout) as Record<string, string>) : {} };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "georep-entrypoint-"));
  await writeFile(join(dir, "secret"), "s3cret-value_1\n\n");
  await writeFile(join(dir, "empty"), "");
  await writeFile(join(dir, "template.yml"), '- name: "x"\n  headers:\n    Authorization: ["${NOTIFICATION_SECRET}"]\n  url: "http://${HOST}/events"\n');
  await writeFile(join(dir, "unreadable"), "x");
  await chmod(join(dir, "unreadable"), 0o000);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("deploy/entrypoint.sh", () => {
  it("turns NAME_FILE into NAME (trailing newlines dropped) and removes NAME_FILE", async () => {
    const { code, env, stderr } = await entrypoint({ SECRET_FILE: join(dir, "secret"), OTHER: "kept as is" });
    expect(code, stderr).toBe(0);
    expect(env.SECRET).toBe("s3cret-value_1");
    expect(env.SECRET_FILE).toBeUndefined();
    expect(env.OTHER).toBe("kept as is");
  });

  it("expands ${VAR} in NAME_TEMPLATE, after the files are read, and removes NAME_TEMPLATE", async () => {
    const { code, env, stderr } = await entrypoint({
      LEAFNODE_SECRET_FILE: join(dir, "secret"),
      LEAFNODE_PASSWORD_TEMPLATE: '"${LEAFNODE_SECRET}"',
      URL_TEMPLATE: '"nats-leaf://leaf:${LEAFNODE_SECRET}@primary:7422" costs $5 {not a ref}',
    });
    expect(code, stderr).toBe(0);
    expect(env.LEAFNODE_PASSWORD).toBe('"s3cret-value_1"');
    expect(env.URL).toBe('"nats-leaf://leaf:s3cret-value_1@primary:7422" costs $5 {not a ref}');
    expect(Object.keys(env).filter((k) => k.endsWith("_TEMPLATE") || k.endsWith("_FILE"))).toEqual([]);
  });

  it("reads a multi-line template from NAME_TEMPLATE_FILE (the registry's notification endpoints)", async () => {
    const { code, env, stderr } = await entrypoint({
      NOTIFICATION_SECRET_FILE: join(dir, "secret"),
      HOST: "ingest:8080",
      REGISTRY_NOTIFICATIONS_ENDPOINTS_TEMPLATE_FILE: join(dir, "template.yml"),
    });
    expect(code, stderr).toBe(0);
    expect(env.REGISTRY_NOTIFICATIONS_ENDPOINTS).toBe('- name: "x"\n  headers:\n    Authorization: ["s3cret-value_1"]\n  url: "http://ingest:8080/events"');
    expect(env.REGISTRY_NOTIFICATIONS_ENDPOINTS_TEMPLATE_FILE).toBeUndefined();
    expect(env.REGISTRY_NOTIFICATIONS_ENDPOINTS_TEMPLATE).toBeUndefined();
  });

  it.each<[string, Record<string, string>, string]>([
    ["both NAME and NAME_FILE", { SECRET: "a", SECRET_FILE: "/dev/null" }, "set either SECRET or SECRET_FILE, not both"],
    ["a missing file", { SECRET_FILE: "/nonexistent/secret" }, "SECRET_FILE: cannot read /nonexistent/secret"],
    ["an empty file", { SECRET_FILE: "EMPTY" }, "is empty"],
    ["a reference to an unset variable", { X_TEMPLATE: "a${NOPE}b" }, "X_TEMPLATE refers to ${NOPE}, which is not set"],
    ["a value with a double quote", { Q: 'a"b', X_TEMPLATE: '"${Q}"' }, "the value of Q holds a double quote, a backslash or a line break"],
    ["a value with a backslash", { Q: "a\\b", X_TEMPLATE: "${Q}" }, "the value of Q holds"],
    ["a value with a line break", { Q: "a\nb", X_TEMPLATE: "${Q}" }, "the value of Q holds"],
    ["an unterminated reference", { X_TEMPLATE: "a${Q" }, "X_TEMPLATE: unterminated ${"],
    ["a reference that is not a name", { X_TEMPLATE: "${1X}" }, "${1X} is not a variable reference"],
  ])("refuses %s (exit 64, before running the command)", async (_what, env, message) => {
    const resolved = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === "EMPTY" ? join(dir, "empty") : v]));
    const result = await entrypoint(resolved, ["/bin/sh", "-c", "echo ran"]);
    expect(result.code).toBe(64);
    expect(result.stderr).toContain(message);
    expect(result.stdout).not.toContain("ran");
  });

  it("refuses a directory, and a file it may not read", async () => {
    const paths = [dir, ...(process.getuid?.() === 0 ? [] : [join(dir, "unreadable")])]; // root reads any file
    for (const path of paths) {
      const result = await entrypoint({ SECRET_FILE: path }, ["/bin/sh", "-c", "echo ran"]);
      expect(result.code, path).toBe(64);
      expect(result.stderr).toContain(`SECRET_FILE: cannot read ${path}`);
    }
  });

  it("needs a command, and passes its arguments and exit code through", async () => {
    expect((await entrypoint({}, [])).code).toBe(64);
    const result = await entrypoint({}, ["/bin/sh", "-c", 'printf "%s|" "$@"; exit 7', "sh", "a b", "$HOME"]);
    expect(result.code).toBe(7);
    expect(result.stdout).toBe("a b|$HOME|");
  });
});

import { readFile, stat, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSigningKey } from "@georep/jwt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./helpers.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "georep-cli-keys-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("georep keys generate", () => {
  it.each(["ES256", "RS256"] as const)("writes a %s key and certificate that @georep/jwt loads back", async (algorithm) => {
    const out = join(dir, algorithm);
    const { code, stdout, stderr } = await runCli(["keys", "generate", "--out", out, "--algorithm", algorithm], { cwd: dir });
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const keyPath = join(out, "key.pem");
    const certificatePath = join(out, "cert.pem");
    expect(stdout).toContain(`private key  ${keyPath}  (${algorithm}`);
    expect(stdout).toContain(`certificate  ${certificatePath}`);
    const key = await loadSigningKey({ keyPath, certificatePath });
    expect(key.algorithm).toBe(algorithm);
    expect(stdout).toContain(`key id       ${key.keyId}`);
    expect(key.certificateDer).toBeDefined();
    expect((await stat(keyPath)).mode & 0o777).toBe(0o600);
  });

  it("defaults to ES256 in ./georep-keys, prints JSON with --json, and works without any status service", async () => {
    const { code, stdout } = await runCli(["keys", "generate", "--json"], { cwd: dir, env: {} });
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as { key_file: string; certificate_file: string; algorithm: string; key_id: string };
    expect(result).toMatchObject({ key_file: join(dir, "georep-keys", "key.pem"), certificate_file: join(dir, "georep-keys", "cert.pem"), algorithm: "ES256" });
    expect((await loadSigningKey({ keyPath: result.key_file })).keyId).toBe(result.key_id);
  });

  it("refuses to overwrite existing files (exit 1) unless --force", async () => {
    const out = join(dir, "twice");
    expect((await runCli(["keys", "generate", "--out", out])).code).toBe(0);
    const before = await readFile(join(out, "key.pem"), "utf8");
    const again = await runCli(["keys", "generate", "--out", out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`georep: ${join(out, "key.pem")} already exists`);
    expect(again.stderr).toContain("hint: pass --force");
    expect(await readFile(join(out, "key.pem"), "utf8")).toBe(before);
    const forced = await runCli(["keys", "generate", "--out", out, "--force"]);
    expect(forced.code).toBe(0);
    expect(await readFile(join(out, "key.pem"), "utf8")).not.toBe(before);
  });

  it("names an unwritable directory", async () => {
    const blocker = join(dir, "file");
    await runCli(["keys", "generate", "--out", blocker]); // a directory now; put a file where a directory is wanted
    const { code, stderr } = await runCli(["keys", "generate", "--out", join(blocker, "key.pem", "sub")]);
    expect(code).toBe(1);
    expect(stderr).toContain("cannot write");
  });
});

/** The standalone token server: starts from argv, serves tokens, fails clearly on bad files. */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { decodeJwt } from "jose";
import { afterAll, describe, expect, it } from "vitest";
import { generateKeyMaterial, hashPassword, writeKeyMaterial } from "../../src/index.js";

const SERVER = fileURLToPath(new URL("../../dist/cli/token-server.js", import.meta.url));
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function runToExit(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [SERVER, ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stderr };
}

describe("token-server CLI", () => {
  it("serves tokens", async () => {
    const dir = await mkdtemp(join(tmpdir(), "georep-ts-"));
    dirs.push(dir);
    const keys = await writeKeyMaterial(generateKeyMaterial({ algorithm: "ES256", commonName: "t" }), dir);
    const users = join(dir, "users.json");
    await writeFile(users, JSON.stringify({ users: [{ username: "u", password_hash: await hashPassword("p", { rounds: 4 }), access: [{ repositories: "**", actions: ["pull"] }] }] }));
    const child = spawn(process.execPath, [SERVER, "--port", "0", "--key", keys.keyPath, "--cert", keys.certificatePath, "--users", users, "--service", "reg", "--issuer", "iss"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      const address = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (chunk: Buffer) => {
          out += chunk.toString();
          const match = /"address":"(http:\/\/[^"]+)"/.exec(out);
          if (match?.[1] !== undefined) resolve(match[1]);
        });
        child.once("exit", (code) => reject(new Error(`exited ${code}`)));
      });
      const res = await fetch(`${address}/token?service=reg&scope=repository:a/b:pull,push`, { headers: { authorization: `Basic ${Buffer.from("u:p").toString("base64")}` } });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { token: string };
      expect(decodeJwt(body.token)).toMatchObject({ iss: "iss", aud: "reg", sub: "u", access: [{ type: "repository", name: "a/b", actions: ["pull"] }] });
    } finally {
      child.kill("SIGTERM");
      await once(child, "exit");
    }
  });

  it("exits 2 with a clear message on a missing key file or missing options", async () => {
    const missingKey = await runToExit(["--key", "/nonexistent.pem", "--users", "/nonexistent.json", "--service", "s", "--issuer", "i"]);
    expect(missingKey.code).toBe(2);
    expect(missingKey.stderr).toContain("JWT_ERR_KEY_UNREADABLE");
    expect(missingKey.stderr).toContain("/nonexistent.pem");
    const missingArgs = await runToExit([]);
    expect(missingArgs.code).toBe(2);
    expect(missingArgs.stderr).toContain("missing --key");
  });
});

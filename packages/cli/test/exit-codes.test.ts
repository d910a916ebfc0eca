import { execFile } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStatusClient, errorFromResponse } from "../src/client.js";
import { ApiError, AuthError, ConfigError, EXIT_CODES, ResponseError, UnreachableError, UsageError, exitCodeOf } from "../src/errors.js";
import { runCli } from "./helpers.js";

const main = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const execFileAsync = promisify(execFile);

/** A port nothing listens on (bound once, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, "close");
  return port;
}

describe("exit codes of errors", () => {
  const url = "http://127.0.0.1:1/api/v1/pause";
  const body = (code: string, message: string) => JSON.stringify({ code, message });
  it.each([
    [401, body("unauthorized", "missing bearer token"), "flag", AuthError, EXIT_CODES.auth, /the admin token is missing \(missing bearer token\)/],
    [403, body("forbidden", "wrong admin token"), "flag", AuthError, EXIT_CODES.auth, /the admin token from --token is wrong/],
    [403, "", "env", AuthError, EXIT_CODES.auth, /the admin token from GEOREP_ADMIN_TOKEN is wrong$/],
    [408, body("timeout", "team/app:v1 not replicated within 1 s"), "none", ApiError, EXIT_CODES.timeout, /^team\/app:v1 not replicated within 1 s \[timeout, HTTP 408\]$/],
    [404, body("not_found", 'repository "x" is not tracked'), "none", ApiError, EXIT_CODES.failure, /not tracked \[not_found, HTTP 404\]/],
    [409, body("wrong_role", "secondary only"), "none", ApiError, EXIT_CODES.failure, /secondary only \[wrong_role, HTTP 409\]/],
    [503, body("unavailable", "Postgres is down"), "none", ApiError, EXIT_CODES.failure, /Postgres is down/],
    [502, "<html>Bad Gateway</html>", "none", ResponseError, EXIT_CODES.failure, /HTTP 502\): no \{code, message\} error body: <html>Bad Gateway<\/html>/],
    [404, "404 page not found", "none", ResponseError, EXIT_CODES.failure, /404 page not found/],
  ] as const)("HTTP %i %s → %s", (status, text, tokenSource, type, exitCode, message) => {
    const error = errorFromResponse({ url, status, body: text, tokenSource });
    expect(error).toBeInstanceOf(type);
    expect(exitCodeOf(error)).toBe(exitCode);
    expect(error.message).toMatch(message);
  });

  it("maps every error class, and anything else to 1", () => {
    expect(exitCodeOf(new UsageError("x"))).toBe(3);
    expect(exitCodeOf(new UnreachableError("http://h", "connection refused"))).toBe(4);
    expect(exitCodeOf(new ConfigError("x"))).toBe(1);
    expect(exitCodeOf(new Error("bug"))).toBe(1);
    expect(exitCodeOf("string")).toBe(1);
  });
});

describe("run: exit codes and messages", () => {
  it("0 for help, which documents the exit codes", async () => {
    const { code, stdout } = await runCli(["--help"]);
    expect(code).toBe(0);
    for (const line of ["0  ok", "1  verify found", "2  wait: not replicated", "3  usage error", "4  the status service is unreachable", "5  authentication refused"]) expect(stdout).toContain(line);
    const wait = await runCli(["wait", "--help"]);
    expect(wait.stdout).toContain("usage: georep wait REPO[:TAG|@DIGEST] [--timeout S]");
    expect(wait.stdout).toContain("--timeout S");
  });

  it("3 for usage errors, with the problem and a hint on stderr", async () => {
    const unknown = await runCli(["sideways"]);
    expect(unknown).toMatchObject({ code: 3, stdout: "" });
    expect(unknown.stderr).toMatch(/^georep: unknown command "sideways"\nhint: commands: status, repos, repo, resync, pause, resume, verify, wait, keys/);
    const badRef = await runCli(["wait", "team/app@sha256:xyz", "--url", "http://127.0.0.1:9999"]);
    expect(badRef.code).toBe(3);
    expect(badRef.stderr).toContain('bad reference "team/app@sha256:xyz"');
    expect(badRef.stderr).toContain("hint: expected REPO[:TAG|@DIGEST]");
  });

  it("4 when the service is unreachable, naming the URL", async () => {
    const port = await closedPort();
    const { code, stderr } = await runCli(["repos", "--url", `http://127.0.0.1:${port}`]);
    expect(code).toBe(4);
    expect(stderr).toContain(`status service unreachable at http://127.0.0.1:${port}: connection refused`);
  });

  it("--json errors are one JSON object on stderr", async () => {
    const port = await closedPort();
    const { code, stdout, stderr } = await runCli(["status", "--json", "--url", `http://127.0.0.1:${port}`]);
    expect(code).toBe(4);
    expect(stdout).toBe("");
    expect(JSON.parse(stderr)).toMatchObject({ code: "unreachable", message: expect.stringContaining(`127.0.0.1:${port}`) as unknown });
    const usage = await runCli(["repos", "--limit", "x", "--json"]);
    expect(usage.code).toBe(3);
    expect(JSON.parse(usage.stderr)).toMatchObject({ code: "usage", message: '--limit must be a whole number from 1 to 9007199254740991, got "x"' });
  });
});

// Protocol edge cases the real status service does not produce on demand: a server that never answers, and
// something that is not a status service at all (a proxy's HTML page).
describe("status client against misbehaving servers", () => {
  let server: Server;
  let url: string;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url?.startsWith("/api/v1/site") === true && req.url !== "/api/v1/sites") {
        res.writeHead(200, { "content-type": "text/html" }).end("<html>hello</html>");
      }
      // anything else: never answer
    });
    server.on("connection", (socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    server.close();
    await once(server, "close");
  });

  it("a request without an answer within the timeout is unreachable (exit 4)", async () => {
    const client = createStatusClient({ url, requestTimeoutMs: 300 });
    const error = await client.sites().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnreachableError);
    expect((error as UnreachableError).message).toBe(`status service unreachable at ${url}: no answer within 300 ms`);
    expect(exitCodeOf(error)).toBe(4);
  });

  it("a 200 that is not JSON is a failure naming the URL (exit 1)", async () => {
    const { code, stderr } = await runCli(["status", "--url", url]);
    expect(code).toBe(1);
    expect(stderr).toContain(`unexpected answer from ${url}/api/v1/site (HTTP 200): not JSON (text/html)`);
    expect(stderr).toContain("hint: is this the status service's base URL?");
  });
});

describe("the built binary", () => {
  const node = async (args: string[]) => {
    try {
      const { stdout, stderr } = await execFileAsync(process.execPath, [main, ...args], { env: { ...process.env, NO_COLOR: "1" } });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  it("sets the process exit code: 0 help, 3 usage, 4 unreachable", async () => {
    expect((await node(["--help"])).code).toBe(0);
    const usage = await node(["repos", "--state", "lost"]);
    expect(usage.code).toBe(3);
    expect(usage.stderr).toContain('--state must be one of pending, started, synced, failed, got "lost"');
    const port = await closedPort();
    const down = await node(["status", "--url", `http://127.0.0.1:${port}`]);
    expect(down.code).toBe(4);
    expect(down.stderr).toContain(`127.0.0.1:${port}`);
  });
});

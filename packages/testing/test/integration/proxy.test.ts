/** The fault proxies: a TCP link that can be cut, an HTTP origin that fails on purpose. */
import { createServer } from "node:http";
import type { Server } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHttpFaultProxy, startTcpProxy } from "../../src/index.js";

let origin: Server;
let originPort: number;

beforeAll(async () => {
  origin = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (c: Buffer) => chunks.push(c));
    request.on("end", () => response.writeHead(200, { "x-path": request.url ?? "" }).end(Buffer.concat(chunks)));
  });
  await new Promise<void>((resolve) => origin.listen(0, "127.0.0.1", resolve));
  originPort = (origin.address() as { port: number }).port;
});

afterAll(() => new Promise((resolve) => origin.close(resolve)));

/** Sends `text` through a raw TCP connection and reads the answer (HTTP/1.0, so the origin closes). */
function roundTrip(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let out = "";
    socket.on("data", (d: Buffer) => (out += d.toString()));
    socket.on("close", () => resolve(out));
    socket.on("error", reject);
    socket.write(`POST /echo HTTP/1.0\r\nContent-Length: ${text.length}\r\n\r\n${text}`);
  });
}

describe("TCP proxy", () => {
  it("forwards, drops every connection when cut, refuses new ones until restored", async () => {
    const proxy = await startTcpProxy({ host: "127.0.0.1", port: originPort });
    try {
      expect(await roundTrip(proxy.port, "hello")).toMatch(/200 OK[\s\S]*hello$/);
      const held = connect(proxy.port, "127.0.0.1");
      const closed = new Promise((resolve) => held.on("close", resolve));
      await new Promise((resolve) => held.on("connect", resolve));
      proxy.cut();
      await closed; // an open connection is dropped
      expect(proxy.isCut).toBe(true);
      expect(await roundTrip(proxy.port, "again")).toBe(""); // refused while cut
      proxy.restore();
      expect(await roundTrip(proxy.port, "back")).toMatch(/back$/);
    } finally {
      await proxy.close();
    }
  });
});

describe("HTTP fault proxy", () => {
  it("forwards bodies and headers, and fails the share of requests asked with 500 and 429", async () => {
    let r = 0;
    const sequence = [0.1, 0.9, 0.1, 0.9];
    const proxy = await startHttpFaultProxy(`http://127.0.0.1:${originPort}`, () => sequence[r++ % sequence.length]!);
    try {
      const ok = await fetch(`${proxy.url}/v2/x?y=1`, { method: "POST", body: "payload" });
      expect([ok.status, ok.headers.get("x-path"), await ok.text()]).toEqual([200, "/v2/x?y=1", "payload"]);
      proxy.setFaults({ rate: 0.5, retryAfterSeconds: 2 });
      const answers = [];
      for (let i = 0; i < 4; i++) {
        const res = await fetch(`${proxy.url}/v2/`);
        answers.push([res.status, res.headers.get("retry-after")]);
        await res.text();
      }
      expect(answers).toEqual([[500, null], [200, null], [429, "2"], [200, null]]);
      expect(proxy.counts).toEqual({ forwarded: 3, faulted: 2 });
      expect(() => proxy.setFaults({ rate: 2 })).toThrow(RangeError);
    } finally {
      await proxy.close();
    }
  });
});

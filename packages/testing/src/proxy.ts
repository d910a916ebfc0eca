/**
 * Proxies a fault test controls: a TCP proxy whose link can be cut and
 * restored (a NATS leafnode between sites), and an HTTP proxy that answers
 * some requests with 500 or 429 instead of forwarding them (a flaky
 * registry). Both listen on 127.0.0.1 on a free port.
 */
import { request as httpRequest, createServer as createHttpServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createConnection, createServer } from "node:net";
import type { Server, Socket } from "node:net";

/** A TCP proxy to one target. */
export interface TcpProxy {
  readonly port: number;
  /** Whether the link is cut now. */
  readonly isCut: boolean;
  /** Drops every connection and refuses new ones until {@link restore}. */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") reject(new Error("proxy has no port"));
      else resolve(address.port);
    });
  });
}

/** Starts a TCP proxy to `target`. */
export async function startTcpProxy(target: { readonly host: string; readonly port: number }): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let isCut = false;
  const server = createServer((client) => {
    if (isCut) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: target.host, port: target.port });
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const port = await listen(server);
  return {
    port,
    get isCut() {
      return isCut;
    },
    cut() {
      isCut = true;
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    restore() {
      isCut = false;
    },
    close() {
      isCut = true;
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** What the HTTP fault proxy does to requests. */
export interface HttpFaults {
  /** Share of requests answered with a fault instead of being forwarded (0 to 1). */
  readonly rate: number;
  /** Statuses to answer with, picked in turn (default 500 and 429). */
  readonly statuses?: readonly number[];
  /** `Retry-After` seconds sent with a 429 (default 1). */
  readonly retryAfterSeconds?: number;
}

/** An HTTP proxy to one origin that can fail requests on purpose. */
export interface HttpFaultProxy {
  readonly url: string;
  /** Requests forwarded and requests failed on purpose, so far. */
  readonly counts: { readonly forwarded: number; readonly faulted: number };
  setFaults(faults: HttpFaults): void;
  close(): Promise<void>;
}

/** Starts an HTTP proxy to `target` (an origin such as `http://127.0.0.1:5000`); no faults until {@link HttpFaultProxy.setFaults}. */
export async function startHttpFaultProxy(target: string, random: () => number = Math.random): Promise<HttpFaultProxy> {
  const origin = new URL(target);
  let faults: HttpFaults = { rate: 0 };
  let turn = 0;
  const counts = { forwarded: 0, faulted: 0 };
  const server = createHttpServer((request: IncomingMessage, response: ServerResponse) => {
    if (faults.rate > 0 && random() < faults.rate) {
      const statuses = faults.statuses ?? [500, 429];
      const status = statuses[turn++ % statuses.length] ?? 500;
      counts.faulted++;
      request.resume();
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (status === 429) headers["retry-after"] = String(faults.retryAfterSeconds ?? 1);
      const code = status === 429 ? "TOOMANYREQUESTS" : "UNKNOWN";
      response.writeHead(status, headers).end(JSON.stringify({ errors: [{ code, message: "fault injected by the test proxy" }] }));
      return;
    }
    counts.forwarded++;
    const upstream = httpRequest(
      { host: origin.hostname, port: origin.port, method: request.method, path: request.url, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    upstream.on("error", () => {
      if (!response.headersSent) response.writeHead(502).end();
      else response.destroy();
    });
    request.pipe(upstream);
  });
  server.keepAliveTimeout = 5_000;
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    setFaults(next) {
      if (!(next.rate >= 0 && next.rate <= 1)) throw new RangeError(`fault rate must be within 0 and 1, got ${next.rate}`);
      faults = next;
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

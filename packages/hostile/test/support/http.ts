/**
 * HTTP as an attacker sends it: node:http with the path, headers and body
 * bytes exactly as given (fetch would normalise `..` segments, add a
 * content type to string bodies and refuse some header values), and a raw
 * socket for request lines no HTTP client would write.
 */
import { request } from "node:http";
import { connect } from "node:net";

export interface RawResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly text: string;
  /** The body parsed as JSON, or `undefined` when it is not JSON. */
  readonly json: unknown;
}

const parse = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
};

/** One request to `origin` (e.g. `http://127.0.0.1:8080`) with `path` sent verbatim. */
export function rawRequest(origin: string, options: { method?: string; path: string; headers?: Record<string, string>; body?: Uint8Array | string }): Promise<RawResponse> {
  const url = new URL(origin);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: Number(url.port), method: options.method ?? "GET", path: options.path, headers: { connection: "close", ...options.headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: parse(text) });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (options.body !== undefined) req.end(options.body);
    else req.end();
  });
}

/**
 * Writes `requestLine` (bytes as latin1, so control characters and raw
 * high bytes go out as they are) plus a Host header to a socket and reads
 * the answer until the server closes.
 */
export function rawSocketRequest(origin: string, requestLine: string): Promise<RawResponse> {
  const url = new URL(origin);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), 5_000);
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString("utf8");
      const [head = "", ...rest] = raw.split("\r\n\r\n");
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      const text = rest.join("\r\n\r\n");
      resolve({ status, headers: {}, text, json: parse(text) });
    });
    socket.write(Buffer.from(`${requestLine}\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`, "latin1"));
  });
}

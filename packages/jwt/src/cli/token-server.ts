#!/usr/bin/env node
/**
 * Standalone Docker token server for the local stack, until the status
 * service serves the endpoint itself:
 *
 * ```
 * node dist/cli/token-server.js --key key.pem [--cert cert.pem] --users users.json \
 *   --service registry.local [--service …] --issuer georep [--port 5001] [--host 127.0.0.1] [--ttl 300]
 * ```
 * Prints one JSON log line per request (pino); exits 2 on bad arguments or
 * files, with the reason on stderr.
 */
import { parseArgs } from "node:util";
import fastify from "fastify";
import { DEFAULT_TOKEN_TTL_SECONDS, createTokenIssuer } from "../issuer.js";
import { loadSigningKey } from "../keys.js";
import { tokenEndpoint } from "../endpoint.js";
import { loadUsersFile } from "../users.js";

const USAGE =
  "usage: token-server --key <key.pem> [--cert <cert.pem>] --users <users.json> --service <name> [--service <name>…] --issuer <name> [--port 5001] [--host 127.0.0.1] [--ttl 300] [--x5c]";

async function main(argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      port: { type: "string", default: "5001" },
      host: { type: "string", default: "127.0.0.1" },
      key: { type: "string" },
      cert: { type: "string" },
      users: { type: "string" },
      service: { type: "string", multiple: true },
      issuer: { type: "string" },
      ttl: { type: "string", default: String(DEFAULT_TOKEN_TTL_SECONDS) },
      x5c: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const missing = (["key", "users", "service", "issuer"] as const).filter((name) => values[name] === undefined);
  if (missing.length > 0) throw new Error(`missing ${missing.map((m) => `--${m}`).join(", ")}\n${USAGE}`);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be a port number, got ${values.port}`);
  const ttl = Number(values.ttl);

  const key = await loadSigningKey({ keyPath: values.key ?? "", ...(values.cert === undefined ? {} : { certificatePath: values.cert }) });
  const users = await loadUsersFile(values.users ?? "");
  const issuer = createTokenIssuer({ issuer: values.issuer ?? "", key, ttlSeconds: ttl, includeX5c: values.x5c });

  const app = fastify({ logger: true });
  await app.register(tokenEndpoint, { issuer, services: values.service ?? [], users });
  const address = await app.listen({ port, host: values.host });
  app.log.info({ address, algorithm: key.algorithm, kid: key.keyId, services: values.service }, "token server listening");

  const stop = (signal: string) => {
    app.log.info({ signal }, "shutting down");
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const code = typeof error === "object" && error !== null && "code" in error ? ` [${String(error.code)}]` : "";
  process.stderr.write(`token-server: ${error instanceof Error ? error.message : String(error)}${code}\n`);
  process.exitCode = 2;
});

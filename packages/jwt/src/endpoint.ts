/**
 * A Docker token endpoint (docker/distribution docs/spec/auth/token.md) as a
 * fastify plugin, so a site running a plain Distribution needs no other auth
 * server: `GET /token?service=…&scope=…[&scope=…]` with HTTP Basic
 * credentials checked against the users file; the token grants only the
 * allowed subset of the requested scopes (possibly none, as the spec says for
 * unknown or forbidden resources).
 */
import { STATUS_CODES } from "node:http";
import { Type } from "@sinclair/typebox";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyError, FastifyPluginAsync, FastifyReply } from "fastify";
import { BadRequestError, JwtError, OptionsError, UnauthorizedError, UnknownServiceError } from "./errors.js";
import type { TokenIssuer } from "./issuer.js";
import type { ResourceAccess } from "./scope.js";
import { formatScope, parseScopes } from "./scope.js";
import type { UserDirectory, UsersFile } from "./users.js";
import { createUserDirectory } from "./users.js";

/** Path of the token route inside the plugin's prefix. */
export const DEFAULT_TOKEN_PATH = "/token";
/** Realm of the `WWW-Authenticate: Basic` challenge. */
export const DEFAULT_BASIC_REALM = "georep token endpoint";

/** Told about every token the endpoint issues (for audit logs and metrics). */
export interface TokenIssuedEvent {
  readonly subject: string;
  readonly service: string;
  readonly requested: readonly ResourceAccess[];
  readonly granted: readonly ResourceAccess[];
}

/** Options of {@link tokenEndpoint}. */
export interface TokenEndpointOptions {
  readonly issuer: TokenIssuer;
  /** Service name(s) tokens are issued for (the registries' `auth.token.service`). */
  readonly services: string | readonly string[];
  /** Users, as loaded by `loadUsersFile`, or an already compiled directory. */
  readonly users: UsersFile | UserDirectory;
  /** Default {@link DEFAULT_TOKEN_PATH}. */
  readonly path?: string;
  /** Default {@link DEFAULT_BASIC_REALM}. */
  readonly realm?: string;
  /** Called after each issued token; default no-op. */
  readonly onTokenIssued?: (event: TokenIssuedEvent) => void;
}

/** Body of a successful answer (token spec §"Token Response Fields"). */
export interface TokenEndpointResponse {
  readonly token: string;
  /** Same as `token`, for OAuth2 clients. */
  readonly access_token: string;
  readonly expires_in: number;
  /** RFC 3339. */
  readonly issued_at: string;
}

/** Body of every error answer. */
export interface TokenEndpointErrorBody {
  readonly statusCode: number;
  readonly code: string;
  readonly error: string;
  readonly message: string;
}

const QuerySchema = Type.Object({
  service: Type.Optional(Type.String()),
  // fastify's default ajv coerces a single `scope` into an array.
  scope: Type.Optional(Type.Array(Type.String())),
  account: Type.Optional(Type.String()),
  client_id: Type.Optional(Type.String()),
  offline_token: Type.Optional(Type.String()),
});

function isDirectory(users: UsersFile | UserDirectory): users is UserDirectory {
  return typeof (users as UserDirectory).authenticate === "function";
}

/** Parses `Authorization: Basic …`; `undefined` when absent. */
function basicCredentials(header: string | undefined): { username: string; password: string } | undefined {
  if (header === undefined || header === "") return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (match?.[1] === undefined) throw new UnauthorizedError("the Authorization header must hold Basic credentials");
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon <= 0) throw new UnauthorizedError("malformed Basic credentials (expected base64 of username:password)");
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function sendError(reply: FastifyReply, statusCode: number, code: string, message: string, realm: string): FastifyReply {
  if (statusCode === 401) reply.header("www-authenticate", `Basic realm="${realm.replaceAll('"', "'")}", charset="UTF-8"`);
  const body: TokenEndpointErrorBody = { statusCode, code, error: STATUS_CODES[statusCode] ?? "Error", message };
  return reply.code(statusCode).header("cache-control", "no-store").send(body);
}

/**
 * The token endpoint plugin. Register it with `app.register(tokenEndpoint, options)`;
 * it sets its own error handler for its routes only.
 */
export const tokenEndpoint: FastifyPluginAsync<TokenEndpointOptions> = async (fastify, options) => {
  const services = typeof options.services === "string" ? [options.services] : [...options.services];
  if (services.length === 0 || services.some((s) => s === "")) throw new OptionsError("tokenEndpoint needs at least one non-empty service name");
  const users = isDirectory(options.users) ? options.users : createUserDirectory(options.users);
  const realm = options.realm ?? DEFAULT_BASIC_REALM;
  const onTokenIssued = options.onTokenIssued ?? (() => undefined);
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof JwtError) {
      request.log.info({ code: error.code, statusCode: error.statusCode }, error.message);
      return sendError(reply, error.statusCode, error.code, error.message, realm);
    }
    if (error.validation !== undefined) {
      request.log.info({ err: error }, "bad token request");
      return sendError(reply, 400, "JWT_ERR_BAD_REQUEST", error.message, realm);
    }
    request.log.error({ err: error }, "token endpoint failed");
    return sendError(reply, 500, "JWT_ERR_INTERNAL", "internal error while issuing a token", realm);
  });

  app.get(options.path ?? DEFAULT_TOKEN_PATH, { schema: { querystring: QuerySchema } }, async (request, reply) => {
    const query = request.query;
    // A missing service is tolerated when the endpoint serves exactly one.
    const service = query.service ?? (services.length === 1 ? services[0] : undefined);
    if (service === undefined || !services.includes(service)) throw new UnknownServiceError(query.service, services);
    const requested = parseScopes(query.scope ?? []);

    const credentials = basicCredentials(request.headers.authorization);
    if (credentials === undefined) throw new UnauthorizedError("authentication required: send HTTP Basic credentials");
    const user = await users.authenticate(credentials.username, credentials.password);
    if (user === undefined) throw new UnauthorizedError("invalid username or password");
    if (query.account !== undefined && query.account !== "" && query.account !== user.username) {
      throw new BadRequestError(`account ${JSON.stringify(query.account)} does not match the authenticated user`);
    }

    const granted = users.authorize(user, requested);
    const issued = await options.issuer.issue({ subject: user.username, audience: service, access: granted });
    request.log.info({ subject: user.username, service, requested: requested.map(formatScope), granted: granted.map(formatScope) }, "token issued");
    onTokenIssued({ subject: user.username, service, requested, granted });
    const body: TokenEndpointResponse = {
      token: issued.token,
      access_token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt.toISOString(),
    };
    return reply.header("cache-control", "no-store").send(body);
  });
};

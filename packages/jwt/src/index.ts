/**
 * @georep/jwt: Docker token-auth JWTs signed with the key the sites share.
 * An issuer (`createTokenIssuer`), a renewing token provider for the registry
 * client (`createTokenProvider`), scope helpers, key and certificate
 * generation for Distribution's `rootcertbundle`, and a Docker token endpoint
 * as a fastify plugin (`tokenEndpoint`).
 */
export {
  BadRequestError,
  CertificateInvalidError,
  CertificateMismatchError,
  JWT_ERROR_CODES,
  JwtError,
  KeyExistsError,
  KeyInvalidError,
  KeyUnreadableError,
  KeyUnsupportedError,
  OptionsError,
  ScopeError,
  SignError,
  UnauthorizedError,
  UnknownServiceError,
  UsersFileError,
} from "./errors.js";
export type { JwtErrorCode } from "./errors.js";

export { ACTIONS, catalogAccess, formatScope, normalizeAccess, parseScope, parseScopes, pullAccess, pushAccess } from "./scope.js";
export type { Action, ResourceAccess } from "./scope.js";

export {
  DEFAULT_CERTIFICATE_VALIDITY_DAYS,
  DEFAULT_RSA_MODULUS_LENGTH,
  KEY_FILE_NAMES,
  SIGNING_ALGORITHMS,
  generateKeyMaterial,
  libtrustKeyId,
  loadSigningKey,
  signingKeyFromPem,
  writeKeyMaterial,
} from "./keys.js";
export type { GenerateKeyMaterialOptions, KeyMaterial, SigningAlgorithm, SigningKey, WrittenKeyMaterial } from "./keys.js";

export { DEFAULT_NOT_BEFORE_SKEW_SECONDS, DEFAULT_TOKEN_TTL_SECONDS, createTokenIssuer } from "./issuer.js";
export type { IssueRequest, IssuedToken, TokenIssuer, TokenIssuerOptions } from "./issuer.js";

export { DEFAULT_MAX_CACHED_TOKENS, DEFAULT_RENEW_BEFORE_RATIO, DEFAULT_RENEW_BEFORE_SECONDS, createTokenProvider } from "./provider.js";
export type { TokenProvider, TokenProviderOptions, TokenRequest, TokenResponse } from "./provider.js";

export {
  DEFAULT_BCRYPT_ROUNDS,
  UserAccessRuleSchema,
  UserSchema,
  UsersFileSchema,
  createUserDirectory,
  globToRegExp,
  hashPassword,
  loadUsersFile,
  parseUsersFile,
} from "./users.js";
export type { User, UserAccessRule, UserDirectory, UsersFile } from "./users.js";

export { DEFAULT_BASIC_REALM, DEFAULT_TOKEN_PATH, tokenEndpoint } from "./endpoint.js";
export type { TokenEndpointErrorBody, TokenEndpointOptions, TokenEndpointResponse, TokenIssuedEvent } from "./endpoint.js";

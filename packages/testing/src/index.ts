/**
 * @georep/testing: real nats-server, PostgreSQL and CNCF Distribution
 * processes on free ports in temp dirs, for tests, scripts and the local stack
 * (`@georep/stack`).
 */
export { freePort } from "./ports.js";
export { startNats, waitForLeafnodes, renderNatsConfig } from "./nats.js";
export type { NatsOptions, RunningNats, LeafnodeAuth, NatsUserAuth } from "./nats.js";
export { startPostgres } from "./postgres.js";
export type { PostgresOptions, RunningPostgres } from "./postgres.js";
export { startRegistry, renderRegistryConfig, renderHtpasswd } from "./registry.js";
export type { RegistryOptions, RunningRegistry, RegistryAuth, RegistryUser, TokenAuth, NotificationEndpoint } from "./registry.js";
export { ServerStartError, MissingBinaryError, UnsupportedOperationError } from "./errors.js";
export { toYaml } from "./yaml.js";
export type { YamlValue } from "./yaml.js";
export { startTcpProxy, startHttpFaultProxy } from "./proxy.js";
export type { TcpProxy, HttpFaultProxy, HttpFaults } from "./proxy.js";
export { serviceMain } from "./service.js";
export type { ServiceMain, ServiceRun } from "./service.js";
export { groupCpuSeconds, cpuDelta, machineBusySeconds } from "./cpu.js";

/** @georep/status: the status service of a georep site (docs/status-api.md). */
export { BODY_LIMIT, DEFAULT_PUBLIC_DIR, DEFAULT_RECENT_SYNCS, buildStatusApp } from "./app.js";
export type { StatusAppState, StatusDeps, StatusOptions } from "./app.js";
export { STATUS_CONFIG_DEFAULTS, StatusConfig, StatusSettings, loadStatusConfig, registryEndpoints, statusOptions, tokenEndpointConfig } from "./config.js";
export type { RegistryAuthConfig, RegistryEndpointConfig, TokenEndpointConfig } from "./config.js";
export type { StatusRegistries } from "./context.js";
export { REPOSITORY_SORTS, SORT_ORDERS, decodeCursor, encodeCursor } from "./cursor.js";
export type { RepositoryCursor, RepositorySort, SortOrder } from "./cursor.js";
export type { EventItem, RepositoryRow, StatusDatabase } from "./db.js";
export { STATUS_ERROR_CODES } from "./errors.js";
export type { StatusErrorCode } from "./errors.js";
export { METRICS, PROMETHEUS_CONTENT_TYPE, createMetrics } from "./metrics.js";
export type { Metrics } from "./metrics.js";
export { SITE_HEALTH, createSiteReports } from "./reports.js";
export type { SiteEntry, SiteHealth, SiteReports, SiteReportsOptions } from "./reports.js";
export { createRegistryFromEndpoint } from "./registries.js";
export type { SiteSummary } from "./site.js";
export type { TagComparison } from "./tags.js";

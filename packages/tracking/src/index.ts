/** @georep/tracking: the secondary's tracking table and its state machine (DESIGN.md, "The tracking row"). */
export { TRACKING_MIGRATIONS, TRACKING_MIGRATION_LOCK_ID, TRACKING_MIGRATION_TABLE, TRACKING_MIGRATION_LOCK_TABLE } from "./table.js";
export type { TrackingDatabase, RepositorySyncTable, BlobLocationTable, SyncHistoryTable, SiteControlTable, AwaitedTag } from "./table.js";
export {
  DEFAULT_BACKOFF,
  DEFAULT_FULL_SYNC_AFTER_MS,
  retryDelayMs,
  getRow,
  requestSync,
  reconcileCatalog,
  inFlight,
  takeDispatchable,
  claim,
  renewLease,
  complete,
  fail,
  releaseExpiredLeases,
  countByState,
  recordBlobs,
  blobLocations,
  blobPlaces,
  blobPlacesMany,
  forgetRepositoryBlobs,
  migrateTracking,
  requestStaleSyncs,
  isPaused,
  pauseState,
  setPaused,
  recentSyncs,
  lagPercentiles,
} from "./tracking.js";
export type { BackoffPolicy, TrackingRow, TrackingDb, Dispatch, Claim, SyncSuccess, IncrementalBasis, PauseState, SyncRecord, SyncRequestDetails, BlobPlaces } from "./tracking.js";

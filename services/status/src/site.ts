/**
 * The site summary (`GET /api/v1/site`) and the SiteStatusReport made from
 * it: counts, progress and lag from the tracking tables on a secondary, the
 * event log's totals on the primary.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Kysely } from "kysely";
import { STREAM_NAMES } from "@georep/schema";
import type { SiteRole, SiteStatusReport, SyncState } from "@georep/schema";
import { countByState, lagPercentiles, pauseState } from "@georep/tracking";
import { eventLogTotals, trackingDb, trackingTotals } from "./db.js";
import type { StatusDatabase } from "./db.js";

/** Window of the lag percentiles (the contract's "last hour"). */
export const LAG_WINDOW_MS = 3_600_000;
/** How long the summary waits for JetStream's answer about the dead-letter stream. */
export const DEAD_LETTER_INFO_TIMEOUT_MS = 1_000;

/** The primary's event log in the summary. */
export interface EventsSummary {
  readonly total: number;
  readonly last_id: string | null;
  /** Messages in REGISTRY_EVENTS_DLQ; `null` when JetStream did not answer. */
  readonly dead_letters: number | null;
}

/** `GET /api/v1/site` (docs/status-api.md, "Site summary"). */
export interface SiteSummary {
  readonly site: string;
  readonly role: SiteRole;
  readonly paused: boolean;
  readonly counts: Readonly<Record<SyncState, number>>;
  readonly total: number;
  readonly progress: number;
  readonly lag_seconds: { readonly p50: number | null; readonly p99: number | null };
  readonly bytes_copied: number;
  readonly blobs_copied: number;
  readonly blobs_mounted: number;
  readonly last_event_at: string | null;
  readonly last_synced_at: string | null;
  readonly missing_on_primary: number;
  readonly unremovable_tags: number;
  readonly events: EventsSummary | null;
  readonly generated_at: string;
}

/** What {@link siteSummary} reads. */
export interface SiteSummaryDeps {
  readonly db: Kysely<StatusDatabase>;
  readonly nc: NatsConnection;
  readonly site: string;
  readonly role: SiteRole;
}

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

/**
 * `synced / total` rounded DOWN to three decimals (a site with one
 * repository left is never shown as 1), and 1 when nothing is tracked.
 */
export function progressOf(synced: number, total: number): number {
  return total === 0 ? 1 : Math.floor((synced / total) * 1000) / 1000;
}

/**
 * Messages in the dead-letter stream, asked of JetStream's API over core
 * NATS (`$JS.API.STREAM.INFO.<stream>`): 0 when the stream does not exist,
 * `null` when JetStream does not answer.
 */
export async function deadLetterCount(nc: NatsConnection, timeoutMs = DEAD_LETTER_INFO_TIMEOUT_MS): Promise<number | null> {
  try {
    const reply = await nc.request(`$JS.API.STREAM.INFO.${STREAM_NAMES.REGISTRY_EVENTS_DLQ}`, "", { timeout: timeoutMs });
    const info = reply.json<{ state?: { messages?: unknown }; error?: { code?: unknown } }>();
    if (typeof info.state?.messages === "number") return info.state.messages;
    if (info.error?.code === 404) return 0;
    return null;
  } catch {
    return null;
  }
}

/** The summary of this site, read now. */
export async function siteSummary(deps: SiteSummaryDeps): Promise<SiteSummary> {
  const { db, site, role } = deps;
  const generatedAt = new Date().toISOString();
  if (role === "primary") {
    const [events, deadLetters] = await Promise.all([eventLogTotals(db), deadLetterCount(deps.nc)]);
    return {
      site,
      role,
      paused: false,
      counts: { pending: 0, started: 0, synced: 0, failed: 0 },
      total: 0,
      progress: 1,
      lag_seconds: { p50: null, p99: null },
      bytes_copied: 0,
      blobs_copied: 0,
      blobs_mounted: 0,
      last_event_at: iso(events.lastEventAt),
      last_synced_at: null,
      missing_on_primary: 0,
      unremovable_tags: 0,
      events: { total: events.total, last_id: events.lastId, dead_letters: deadLetters },
      generated_at: generatedAt,
    };
  }
  const tracking = trackingDb(db);
  const [counts, totals, lag, pause] = await Promise.all([countByState(tracking), trackingTotals(db), lagPercentiles(tracking, LAG_WINDOW_MS), pauseState(tracking)]);
  const total = counts.pending + counts.started + counts.synced + counts.failed;
  return {
    site,
    role,
    paused: pause.paused,
    counts,
    total,
    progress: progressOf(counts.synced, total),
    lag_seconds: { p50: lag.p50, p99: lag.p99 },
    bytes_copied: totals.bytesCopied,
    blobs_copied: totals.blobsCopied,
    blobs_mounted: totals.blobsMounted,
    last_event_at: iso(totals.lastEventAt),
    last_synced_at: iso(totals.lastSyncedAt),
    missing_on_primary: totals.missingOnPrimary,
    unremovable_tags: totals.unremovableTags,
    events: null,
    generated_at: generatedAt,
  };
}

/** The SiteStatusReport a summary amounts to. */
export function reportOf(summary: SiteSummary): SiteStatusReport {
  return {
    site: summary.site,
    role: summary.role,
    counts: { ...summary.counts },
    lag_seconds: { ...summary.lag_seconds },
    bytes_copied: summary.bytes_copied,
    last_event_at: summary.last_event_at,
    paused: summary.paused,
    reported_at: summary.generated_at,
  };
}

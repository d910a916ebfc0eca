/**
 * The dispatcher's metrics in the Prometheus text exposition format
 * (version 0.0.4): counters, some with one label, and the tracking rows
 * per state as a gauge read at scrape time.
 */
import type { SyncState, TransferReason } from "@georep/schema";

/** Counter names, help texts and label names. */
export const METRICS = {
  eventsConsumed: { name: "georep_dispatcher_events_consumed_total", help: "Geo events from the mirrored GEO_EVENTS turned into a tracking request" },
  eventsInvalid: { name: "georep_dispatcher_events_invalid_total", help: "Geo events that were not valid (terminated)" },
  jobsDispatched: { name: "georep_dispatcher_jobs_dispatched_total", help: "Transfer jobs published to TRANSFER_JOBS, by reason", label: "reason" },
  dispatchFailures: { name: "georep_dispatcher_dispatch_failures_total", help: "Transfer job publishes that failed (the row is dispatched again later)" },
  lostJobsRequeued: { name: "georep_dispatcher_lost_jobs_requeued_total", help: "Dispatched rows whose job was gone from TRANSFER_JOBS without a claim, dispatched again" },
  backfillRuns: { name: "georep_dispatcher_backfill_runs_total", help: "Walks of the primary's catalog, by outcome", label: "outcome" },
  backfillAdded: { name: "georep_dispatcher_backfill_repositories_added_total", help: "Repositories of the primary's catalog that backfill started tracking" },
  backfillMissing: { name: "georep_dispatcher_backfill_repositories_missing_total", help: "Tracked repositories that the primary's catalog no longer lists (synced once more to remove them)" },
  leasesReleased: { name: "georep_dispatcher_leases_released_total", help: "Expired sync leases released (their rows are dispatched again)" },
  resyncRequests: { name: "georep_dispatcher_resync_requests_total", help: "Resync requests, by outcome", label: "outcome" },
  syncsDoneHeard: { name: "georep_dispatcher_syncs_done_heard_total", help: "Finished syncs announced by transfer workers (each starts a dispatch round)" },
} as const;

/** One of the counters of {@link METRICS}. */
export type MetricName = keyof typeof METRICS;

/** Name of the per-state gauge. */
export const REPOSITORIES_GAUGE = {
  name: "georep_dispatcher_repositories",
  help: "Tracking rows per state (read from Postgres at scrape time)",
} as const;

/** Name of the queue depth gauge. */
export const QUEUE_GAUGE = {
  name: "georep_queue_depth",
  help: "Messages waiting: transfer_jobs (TRANSFER_JOBS work queue), geo_events (mirrored events the dispatcher has not consumed yet), geo_events_unacked (delivered, not yet acknowledged)",
} as const;

/** Queue depths read at scrape time. */
export type QueueDepths = Readonly<Partial<Record<"transfer_jobs" | "geo_events" | "geo_events_unacked", number>>>;

/** Label values that exist from the start, so rates work before the first increment. */
const INITIAL_LABELS: Partial<Record<MetricName, readonly string[]>> = {
  jobsDispatched: ["event", "backfill", "retry", "resync"] satisfies readonly TransferReason[],
  backfillRuns: ["ok", "error", "skipped"],
  resyncRequests: ["accepted", "rejected", "error"],
};

/** The dispatcher's counters. */
export interface Metrics {
  /** Adds `by` (default 1) to a counter, under `label` for labelled ones. */
  inc(metric: MetricName, options?: { readonly label?: string; readonly by?: number }): void;
  /** The current value (of one label, or the sum over labels). */
  get(metric: MetricName, label?: string): number;
  /** Every counter, then the gauges of what is given. */
  render(counts?: Readonly<Record<SyncState, number>>, queues?: QueueDepths): string;
}

/** The content type of {@link Metrics.render}'s output. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/** Counters starting at zero. */
export function createMetrics(): Metrics {
  const values = new Map<MetricName, Map<string, number>>();
  for (const key of Object.keys(METRICS) as MetricName[]) {
    values.set(key, new Map((INITIAL_LABELS[key] ?? [""]).map((l) => [l, 0])));
  }
  return {
    inc(metric, options = {}) {
      const series = values.get(metric);
      if (series === undefined) return;
      const label = options.label ?? "";
      series.set(label, (series.get(label) ?? 0) + (options.by ?? 1));
    },
    get(metric, label) {
      const series = values.get(metric);
      if (series === undefined) return 0;
      if (label !== undefined) return series.get(label) ?? 0;
      let sum = 0;
      for (const v of series.values()) sum += v;
      return sum;
    },
    render(counts, queues) {
      const lines: string[] = [];
      for (const [key, def] of Object.entries(METRICS)) {
        lines.push(`# HELP ${def.name} ${def.help}`, `# TYPE ${def.name} counter`);
        const labelName = "label" in def ? def.label : undefined;
        for (const [label, value] of values.get(key as MetricName) ?? []) {
          lines.push(labelName === undefined ? `${def.name} ${value}` : `${def.name}{${labelName}="${escapeLabel(label)}"} ${value}`);
        }
      }
      if (counts !== undefined) {
        lines.push(`# HELP ${REPOSITORIES_GAUGE.name} ${REPOSITORIES_GAUGE.help}`, `# TYPE ${REPOSITORIES_GAUGE.name} gauge`);
        for (const [state, n] of Object.entries(counts)) lines.push(`${REPOSITORIES_GAUGE.name}{state="${state}"} ${n}`);
      }
      if (queues !== undefined && Object.keys(queues).length > 0) {
        lines.push(`# HELP ${QUEUE_GAUGE.name} ${QUEUE_GAUGE.help}`, `# TYPE ${QUEUE_GAUGE.name} gauge`);
        for (const [queue, n] of Object.entries(queues)) lines.push(`${QUEUE_GAUGE.name}{queue="${queue}"} ${n}`);
      }
      return `${lines.join("\n")}\n`;
    },
  };
}

/**
 * The transfer service's metrics, on the runtime's Prometheus registry:
 * counters of jobs, syncs, bytes and blobs, a sync duration histogram by
 * outcome and a replication lag histogram (push on the primary to available
 * here).
 */
import { DURATION_BUCKETS_SECONDS, PROMETHEUS_CONTENT_TYPE, createMetricsRegistry } from "@georep/runtime";
import type { Counter, Gauge, Histogram } from "@georep/runtime";

export { PROMETHEUS_CONTENT_TYPE };

/** Counter names, help and label names. */
export const METRICS = {
  syncs: {
    name: "georep_transfer_syncs_total",
    help: "Repository syncs finished, by outcome (synced, failed, lease_lost, interrupted)",
    label: "outcome",
    initial: ["synced", "failed", "lease_lost", "interrupted"],
  },
  jobs: {
    name: "georep_transfer_jobs_total",
    help: "TRANSFER_JOBS messages handled, by result (claimed, done, busy, paused, invalid, error)",
    label: "result",
    initial: ["claimed", "done", "busy", "paused", "invalid", "error"],
  },
  bytes: { name: "georep_transfer_bytes_copied_total", help: "Blob bytes uploaded to the secondary registry" },
  blobs: {
    name: "georep_transfer_blobs_total",
    help: "Blobs handled by syncs, by action (copied: uploaded, skipped: already there, mounted: from another repository)",
    label: "action",
    initial: ["copied", "skipped", "mounted"],
  },
  manifests: { name: "georep_transfer_manifests_copied_total", help: "Manifests pushed to the secondary registry" },
  tagsCopied: { name: "georep_transfer_tags_copied_total", help: "Tags set on the secondary registry" },
  tagsDeleted: { name: "georep_transfer_tags_deleted_total", help: "Tags removed from the secondary registry" },
  prefetch: {
    name: "georep_transfer_prefetch_total",
    help: "Blob push hints from the primary, by result (uploaded, mounted, skipped: already here; failed, invalid, dropped: queue full, paused, duplicate: already being copied)",
    label: "result",
    initial: ["uploaded", "mounted", "skipped", "failed", "invalid", "dropped", "paused", "duplicate"],
  },
  rechecks: {
    name: "georep_transfer_tag_rechecks_total",
    help: "Pushed tags the primary did not show on the event's digest yet (notified before linked), synced again shortly",
  },
} as const;

/** One of the counters of {@link METRICS}. */
export type MetricName = keyof typeof METRICS;

/** Buckets of the replication lag histogram, in seconds. */
export const LAG_BUCKETS_SECONDS: readonly number[] = [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600];

/** The transfer service's metrics. */
export interface TransferMetrics {
  /** Adds `by` (default 1) to a counter, under `label` for labelled ones. */
  inc(metric: MetricName, label?: string, by?: number): void;
  /** Sets the in-flight gauge. */
  setInFlight(value: number): void;
  /** The current value of a counter (under `label`). */
  get(metric: MetricName, label?: string): number;
  /** Records the duration of a finished sync. */
  observeDuration(seconds: number, outcome?: string): void;
  /** Records a replication lag sample (seconds from the primary's push to available here). */
  observeLag(seconds: number): void;
  /** Number of lag samples so far. */
  lagSamples(): number;
  /** Every metric in the Prometheus text format. */
  render(): Promise<string>;
}

/** Metrics starting at zero. */
export function createMetrics(): TransferMetrics {
  const registry = createMetricsRegistry();
  const counters = new Map<MetricName, { counter: Counter; label?: string }>();
  for (const [key, def] of Object.entries(METRICS) as [MetricName, (typeof METRICS)[MetricName]][]) {
    const label = "label" in def ? def.label : undefined;
    const initial = "initial" in def ? def.initial.map((value) => ({ [def.label]: value })) : undefined;
    counters.set(key, { counter: registry.counter(def.name, def.help, initial === undefined ? {} : { initial }), ...(label === undefined ? {} : { label }) });
  }
  const inFlight: Gauge = registry.gauge("georep_transfer_syncs_in_flight", "Syncs running in this process now");
  const duration: Histogram = registry.histogram("georep_transfer_sync_duration_seconds", "Duration of finished syncs, by outcome", DURATION_BUCKETS_SECONDS);
  const lag: Histogram = registry.histogram(
    "georep_replication_lag_seconds",
    "Replication lag: from the push on the primary to the sync that made it available here",
    LAG_BUCKETS_SECONDS,
  );
  const labels = (metric: MetricName, label: string) => {
    const family = counters.get(metric)!;
    return family.label === undefined ? {} : { [family.label]: label };
  };
  return {
    inc(metric, label = "", by = 1) {
      counters.get(metric)!.counter.inc(labels(metric, label), by);
    },
    setInFlight(value) {
      inFlight.set(value);
    },
    get(metric, label = "") {
      return counters.get(metric)!.counter.get(labels(metric, label));
    },
    observeDuration(seconds, outcome = "synced") {
      duration.observe(seconds, { outcome });
    },
    observeLag(seconds) {
      lag.observe(seconds);
    },
    lagSamples: () => lag.count(),
    render: () => registry.render(),
  };
}

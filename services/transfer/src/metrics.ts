/**
 * The transfer service's metrics, rendered in the Prometheus text
 * exposition format (version 0.0.4).
 */

/** The content type of {@link TransferMetrics.render}'s output. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Metric names, types, help and label names. */
export const METRICS = {
  syncs: {
    name: "georep_transfer_syncs_total",
    type: "counter",
    help: "Repository syncs finished, by outcome (synced, failed, lease_lost, interrupted)",
    label: "outcome",
  },
  jobs: {
    name: "georep_transfer_jobs_total",
    type: "counter",
    help: "TRANSFER_JOBS messages handled, by result (claimed, done, busy, invalid, error)",
    label: "result",
  },
  bytes: { name: "georep_transfer_bytes_copied_total", type: "counter", help: "Blob bytes uploaded to the secondary registry" },
  blobs: {
    name: "georep_transfer_blobs_total",
    type: "counter",
    help: "Blobs handled by syncs, by action (copied: uploaded, skipped: already there, mounted: from another repository)",
    label: "action",
  },
  manifests: { name: "georep_transfer_manifests_copied_total", type: "counter", help: "Manifests pushed to the secondary registry" },
  tagsCopied: { name: "georep_transfer_tags_copied_total", type: "counter", help: "Tags set on the secondary registry" },
  tagsDeleted: { name: "georep_transfer_tags_deleted_total", type: "counter", help: "Tags removed from the secondary registry" },
  durationSum: { name: "georep_transfer_sync_duration_seconds_sum", type: "summary", help: "Time spent in finished syncs (any outcome)" },
  durationCount: { name: "georep_transfer_sync_duration_seconds_count", type: "summary", help: "Finished syncs timed (any outcome)" },
  inFlight: { name: "georep_transfer_syncs_in_flight", type: "gauge", help: "Syncs running in this process now" },
} as const;

/** One of the metrics of {@link METRICS}. */
export type MetricName = keyof typeof METRICS;

/** The transfer service's metrics. */
export interface TransferMetrics {
  /** Adds `by` (default 1) to a metric, under `label` for labelled ones. */
  inc(metric: MetricName, label?: string, by?: number): void;
  /** Sets a gauge. */
  set(metric: MetricName, value: number): void;
  /** The current value (under `label`). */
  get(metric: MetricName, label?: string): number;
  /** Records the duration of a finished sync. */
  observeDuration(seconds: number): void;
  /** Every metric in the Prometheus text format. */
  render(): string;
}

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');

/** Metrics starting at zero. */
export function createMetrics(): TransferMetrics {
  const values = new Map<MetricName, Map<string, number>>(Object.keys(METRICS).map((k) => [k as MetricName, new Map()]));
  const series = (metric: MetricName) => values.get(metric)!;
  const metrics: TransferMetrics = {
    inc(metric, label = "", by = 1) {
      const s = series(metric);
      s.set(label, (s.get(label) ?? 0) + by);
    },
    set(metric, value) {
      series(metric).set("", value);
    },
    get(metric, label = "") {
      return series(metric).get(label) ?? 0;
    },
    observeDuration(seconds) {
      metrics.inc("durationSum", "", seconds);
      metrics.inc("durationCount");
    },
    render() {
      const lines: string[] = [];
      const summary = METRICS.durationSum.name.replace(/_sum$/, "");
      lines.push(`# HELP ${summary} Duration of finished syncs`, `# TYPE ${summary} summary`);
      lines.push(`${METRICS.durationSum.name} ${metrics.get("durationSum")}`, `${METRICS.durationCount.name} ${metrics.get("durationCount")}`);
      for (const [key, def] of Object.entries(METRICS)) {
        if (def.type === "summary") continue;
        lines.push(`# HELP ${def.name} ${def.help}`, `# TYPE ${def.name} ${def.type}`);
        const s = series(key as MetricName);
        if ("label" in def) {
          if (s.size === 0) lines.push(`${def.name} 0`);
          for (const [label, value] of [...s].sort(([a], [b]) => (a < b ? -1 : 1))) lines.push(`${def.name}{${def.label}="${escapeLabel(label)}"} ${value}`);
        } else {
          lines.push(`${def.name} ${s.get("") ?? 0}`);
        }
      }
      return `${lines.join("\n")}\n`;
    },
  };
  return metrics;
}

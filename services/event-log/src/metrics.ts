/**
 * The event-log's counters, rendered in the Prometheus text exposition
 * format (version 0.0.4).
 */

/** Counter names and their help text. */
export const METRICS = {
  eventsConsumed: {
    name: "georep_event_log_events_consumed_total",
    help: "REGISTRY_EVENTS messages handled (valid or not, including redeliveries)",
  },
  rowsInserted: { name: "georep_event_log_rows_inserted_total", help: "geo_events rows inserted" },
  duplicatesSkipped: {
    name: "georep_event_log_duplicates_skipped_total",
    help: "Registry events already in geo_events (redelivery, replica, retried notification); no row inserted",
  },
  geoEventsPublished: {
    name: "georep_event_log_geo_events_published_total",
    help: "Geo events published to GEO_EVENTS by the consumer right after the insert",
  },
  outboxRepublished: {
    name: "georep_event_log_outbox_republished_total",
    help: "Geo events published to GEO_EVENTS by the outbox (rows whose publication was not confirmed)",
  },
  deadLettered: {
    name: "georep_event_log_dead_lettered_total",
    help: "Invalid registry events moved to REGISTRY_EVENTS_DLQ",
  },
  retries: {
    name: "georep_event_log_retries_total",
    help: "Messages handed back with a delayed nak because Postgres or JetStream was unavailable",
  },
  publishFailures: {
    name: "georep_event_log_publish_failures_total",
    help: "GEO_EVENTS publishes that failed (the row stays for the outbox)",
  },
} as const;

/** One of the counters of {@link METRICS}. */
export type MetricName = keyof typeof METRICS;

/** The event-log's counters. */
export interface Metrics {
  /** Adds `by` (default 1) to a counter. */
  inc(metric: MetricName, by?: number): void;
  /** The current value of a counter. */
  get(metric: MetricName): number;
  /** Every counter in the Prometheus text format. */
  render(): string;
}

/** The content type of {@link Metrics.render}'s output. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Counters starting at zero. */
export function createMetrics(): Metrics {
  const values = new Map<MetricName, number>(Object.keys(METRICS).map((k) => [k as MetricName, 0]));
  return {
    inc(metric, by = 1) {
      values.set(metric, (values.get(metric) ?? 0) + by);
    },
    get(metric) {
      return values.get(metric) ?? 0;
    },
    render() {
      const lines: string[] = [];
      for (const [key, { name, help }] of Object.entries(METRICS)) {
        lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${values.get(key as MetricName) ?? 0}`);
      }
      return `${lines.join("\n")}\n`;
    },
  };
}

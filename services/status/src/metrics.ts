/**
 * The status service's metrics, on the runtime's Prometheus registry:
 * HTTP requests by route and status (and their duration by route), site
 * reports published and received, admin actions by kind and outcome,
 * replication waits by outcome, and the known sites per health as a gauge
 * read at scrape time.
 */
import { DURATION_BUCKETS_SECONDS, PROMETHEUS_CONTENT_TYPE, createMetricsRegistry } from "@georep/runtime";
import type { Counter, Labels } from "@georep/runtime";

export { PROMETHEUS_CONTENT_TYPE };

/** Kinds of admin actions. */
export const ACTION_KINDS = ["resync_repository", "resync_all", "resync_failed", "pause", "resume", "site_resync"] as const;
/** One of {@link ACTION_KINDS}. */
export type ActionKind = (typeof ACTION_KINDS)[number];

/** Outcomes of a replication wait. */
export const WAIT_OUTCOMES = ["ok", "timeout", "unavailable", "aborted"] as const;
/** One of {@link WAIT_OUTCOMES}. */
export type WaitOutcome = (typeof WAIT_OUTCOMES)[number];

/** Counter names, help texts, label names and the label sets rendered from the start. */
export const METRICS = {
  httpRequests: { name: "georep_status_http_requests_total", help: "HTTP requests answered, by route pattern and status code", labels: ["route", "status"], initial: [] },
  reportsPublished: { name: "georep_status_reports_published_total", help: "Site status reports of this site, by outcome", labels: ["outcome"], initial: [["ok"], ["error"]] },
  reportsReceived: {
    name: "georep_status_reports_received_total",
    help: "Site status reports received on georep.sites.*.status, by outcome (invalid ones are ignored)",
    labels: ["outcome"],
    initial: [["valid"], ["invalid"]],
  },
  actions: {
    name: "georep_status_actions_total",
    help: "Admin actions, by kind and outcome (accepted, rejected: 4xx, error: 5xx)",
    labels: ["kind", "outcome"],
    initial: ACTION_KINDS.flatMap((kind) => [[kind, "accepted"], [kind, "rejected"], [kind, "error"]]),
  },
  waits: { name: "georep_status_replication_waits_total", help: "Replication wait requests, by outcome", labels: ["outcome"], initial: WAIT_OUTCOMES.map((o) => [o]) },
} as const satisfies Record<string, { name: string; help: string; labels: readonly string[]; initial: readonly (readonly string[])[] }>;

/** One of the counters of {@link METRICS}. */
export type MetricName = keyof typeof METRICS;

/** The per-health gauge. */
export const SITES_GAUGE = { name: "georep_status_sites", help: "Sites known from their status reports, by health (at scrape time)" } as const;
/** The request duration histogram. */
export const REQUEST_DURATION = { name: "georep_status_http_request_duration_seconds", help: "Time to answer HTTP requests, by route pattern" } as const;

/** The status service's metrics. */
export interface Metrics {
  /** Adds `by` (default 1) to the series of `labels` (one value per label name of the counter, in order). */
  inc(metric: MetricName, labels?: readonly string[], by?: number): void;
  /** The value of one series. */
  get(metric: MetricName, labels?: readonly string[]): number;
  /** Records how long a request to `route` took. */
  observeRequest(route: string, seconds: number): void;
  /** Where the sites gauge reads its values at scrape time (health → number of sites). */
  watchSites(source: () => Readonly<Record<string, number>>): void;
  /** Every metric in the Prometheus text format. */
  render(): Promise<string>;
}

/** Metrics starting at zero. */
export function createMetrics(): Metrics {
  const registry = createMetricsRegistry();
  const toLabels = (metric: MetricName, values: readonly string[]): Labels =>
    Object.fromEntries(METRICS[metric].labels.map((name, i) => [name, values[i] ?? ""]));
  const counters = new Map<MetricName, Counter>();
  for (const [key, def] of Object.entries(METRICS) as [MetricName, (typeof METRICS)[MetricName]][]) {
    counters.set(key, registry.counter(def.name, def.help, { initial: def.initial.map((values) => toLabels(key, values)) }));
  }
  const duration = registry.histogram(REQUEST_DURATION.name, REQUEST_DURATION.help, DURATION_BUCKETS_SECONDS);
  let sites: (() => Readonly<Record<string, number>>) | undefined;
  registry.gauge(SITES_GAUGE.name, SITES_GAUGE.help, {
    initial: [{ health: "ok" }, { health: "failing" }, { health: "stale" }],
    collect: (gauge) => {
      for (const [health, n] of Object.entries(sites?.() ?? {})) gauge.set(n, { health });
    },
  });
  return {
    inc(metric, labels = [], by = 1) {
      counters.get(metric)!.inc(toLabels(metric, labels), by);
    },
    get(metric, labels = []) {
      return counters.get(metric)!.get(toLabels(metric, labels));
    },
    observeRequest(route, seconds) {
      duration.observe(seconds, { route });
    },
    watchSites(source) {
      sites = source;
    },
    render: () => registry.render(),
  };
}

/**
 * A small Prometheus registry: counters, gauges and histograms with labels,
 * rendered in the text exposition format (version 0.0.4). Every service's
 * `GET /metrics` renders one.
 */

/** The content type of {@link MetricsRegistry.render}'s output. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Label names to values. */
export type Labels = Readonly<Record<string, string>>;

/** A monotonic counter family. */
export interface Counter {
  inc(labels?: Labels, by?: number): void;
  get(labels?: Labels): number;
}

/** A gauge family: set, or computed at scrape time with {@link MetricsRegistry.gauge}'s `collect`. */
export interface Gauge {
  set(value: number, labels?: Labels): void;
  get(labels?: Labels): number;
}

/** A histogram family with fixed upper bounds. */
export interface Histogram {
  observe(value: number, labels?: Labels): void;
  /** Observations so far (under `labels`). */
  count(labels?: Labels): number;
  /** Sum of the observations (under `labels`). */
  sum(labels?: Labels): number;
}

/** Options of a metric family. */
export interface MetricOptions {
  /** Label sets rendered at zero before the first update, so rates work from the start. */
  readonly initial?: readonly Labels[];
}

export interface MetricsRegistry {
  counter(name: string, help: string, options?: MetricOptions): Counter;
  /** A gauge; `collect` (called at each render, may be async) sets its values at scrape time. */
  gauge(name: string, help: string, options?: MetricOptions & { readonly collect?: (gauge: Gauge) => void | Promise<void> }): Gauge;
  histogram(name: string, help: string, buckets: readonly number[], options?: MetricOptions): Histogram;
  /** Every family in the text format; gauges with a `collect` are refreshed first (a failing collect keeps the last values). */
  render(): Promise<string>;
}

/** Latency buckets in seconds, from 5 ms to 10 minutes. */
export const DURATION_BUCKETS_SECONDS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');

function labelKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}="${escapeLabel(labels[k] ?? "")}"`)
    .join(",");
}

const series = (name: string, key: string, value: number) => `${name}${key === "" ? "" : `{${key}}`} ${value}`;

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge" | "histogram";
  lines(): string[];
  collect?: () => void | Promise<void>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** An empty registry. */
export function createMetricsRegistry(): MetricsRegistry {
  const families: Family[] = [];
  const add = (family: Family) => {
    if (!NAME.test(family.name)) throw new Error(`invalid metric name ${JSON.stringify(family.name)}`);
    if (families.some((f) => f.name === family.name)) throw new Error(`metric ${family.name} registered twice`);
    families.push(family);
  };

  const valueFamily = (name: string, help: string, type: "counter" | "gauge", options: MetricOptions | undefined) => {
    const values = new Map<string, number>((options?.initial ?? []).map((l) => [labelKey(l), 0]));
    const family: Family = {
      name,
      help,
      type,
      lines: () => (values.size === 0 ? [series(name, "", 0)] : [...values].map(([k, v]) => series(name, k, v))),
    };
    add(family);
    return { values, family };
  };

  return {
    counter(name, help, options) {
      const { values } = valueFamily(name, help, "counter", options);
      return {
        inc(labels = {}, by = 1) {
          if (by < 0) throw new Error(`counter ${name} cannot decrease`);
          const k = labelKey(labels);
          values.set(k, (values.get(k) ?? 0) + by);
        },
        get: (labels = {}) => values.get(labelKey(labels)) ?? 0,
      };
    },
    gauge(name, help, options) {
      const { values, family } = valueFamily(name, help, "gauge", options);
      const gauge: Gauge = {
        set: (value, labels = {}) => void values.set(labelKey(labels), value),
        get: (labels = {}) => values.get(labelKey(labels)) ?? 0,
      };
      const collect = options?.collect;
      if (collect !== undefined) family.collect = () => collect(gauge);
      return gauge;
    },
    histogram(name, help, buckets, options) {
      const bounds = [...buckets].sort((a, b) => a - b);
      const data = new Map<string, { counts: number[]; sum: number; count: number }>();
      const entry = (key: string) => {
        let d = data.get(key);
        if (d === undefined) data.set(key, (d = { counts: bounds.map(() => 0), sum: 0, count: 0 }));
        return d;
      };
      for (const l of options?.initial ?? []) entry(labelKey(l));
      add({
        name,
        help,
        type: "histogram",
        lines() {
          const out: string[] = [];
          for (const [key, d] of data.size === 0 ? [["", { counts: bounds.map(() => 0), sum: 0, count: 0 }] as const] : data) {
            const prefix = key === "" ? "" : `${key},`;
            bounds.forEach((le, i) => out.push(`${name}_bucket{${prefix}le="${le}"} ${d.counts[i] ?? 0}`));
            out.push(`${name}_bucket{${prefix}le="+Inf"} ${d.count}`, series(`${name}_sum`, key, d.sum), series(`${name}_count`, key, d.count));
          }
          return out;
        },
      });
      return {
        observe(value, labels = {}) {
          const d = entry(labelKey(labels));
          bounds.forEach((le, i) => {
            if (value <= le) d.counts[i] = (d.counts[i] ?? 0) + 1;
          });
          d.sum += value;
          d.count += 1;
        },
        count: (labels = {}) => data.get(labelKey(labels))?.count ?? 0,
        sum: (labels = {}) => data.get(labelKey(labels))?.sum ?? 0,
      };
    },
    async render() {
      await Promise.all(
        families.map(async (f) => {
          try {
            await f.collect?.();
          } catch {
            // A scrape must not fail because one source is down: the last values stay.
          }
        }),
      );
      const lines: string[] = [];
      for (const f of families) lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`, ...f.lines());
      return `${lines.join("\n")}\n`;
    },
  };
}

/** Prometheus counters of ingest, rendered in the text exposition format. */

/** A counter family with labels. */
export interface Counter {
  inc(labels?: Readonly<Record<string, string>>, by?: number): void;
  get(labels?: Readonly<Record<string, string>>): number;
}

export interface Registry {
  counter(name: string, help: string): Counter;
  /** Text exposition format 0.0.4. */
  render(): string;
}

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const key = (labels: Readonly<Record<string, string>>) =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}="${escapeLabel(labels[k]!)}"`)
    .join(",");

export function createRegistry(): Registry {
  const families: { name: string; help: string; values: Map<string, number> }[] = [];
  return {
    counter(name, help) {
      const values = new Map<string, number>();
      families.push({ name, help, values });
      return {
        inc(labels = {}, by = 1) {
          const k = key(labels);
          values.set(k, (values.get(k) ?? 0) + by);
        },
        get(labels = {}) {
          return values.get(key(labels)) ?? 0;
        },
      };
    },
    render() {
      const lines: string[] = [];
      for (const f of families) {
        lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} counter`);
        if (f.values.size === 0) lines.push(`${f.name} 0`);
        for (const [labels, value] of f.values) lines.push(labels === "" ? `${f.name} ${value}` : `${f.name}{${labels}} ${value}`);
      }
      return `${lines.join("\n")}\n`;
    },
  };
}

/** The counters ingest keeps. */
export interface IngestMetrics {
  readonly registry: Registry;
  /** Envelopes answered, by HTTP status. */
  readonly requests: Counter;
  /** Events received in authenticated envelopes. */
  readonly received: Counter;
  /** Events published to REGISTRY_EVENTS (JetStream acked), by action. */
  readonly published: Counter;
  /** Events JetStream recognised as duplicates (registry retries). */
  readonly duplicates: Counter;
  /** Events dropped on purpose, by reason (pull, blob). */
  readonly ignored: Counter;
  /** Events dead-lettered, by reason; and envelopes refused, by reason. */
  readonly rejected: Counter;
}

export function createIngestMetrics(): IngestMetrics {
  const registry = createRegistry();
  return {
    registry,
    requests: registry.counter("georep_ingest_requests_total", "Notification requests answered, by HTTP status"),
    received: registry.counter("georep_ingest_events_received_total", "Events received in authenticated envelopes"),
    published: registry.counter("georep_ingest_events_published_total", "Events published to REGISTRY_EVENTS and acknowledged by JetStream"),
    duplicates: registry.counter("georep_ingest_events_duplicate_total", "Events JetStream already had (registry retries)"),
    ignored: registry.counter("georep_ingest_events_ignored_total", "Events not relevant to replication, by reason"),
    rejected: registry.counter("georep_ingest_events_rejected_total", "Events dead-lettered and requests refused, by reason"),
  };
}

/** Prometheus counters of ingest (the registry is the runtime's). */
import { createMetricsRegistry } from "@georep/runtime";
import type { Counter, MetricsRegistry } from "@georep/runtime";

/** The counters ingest keeps. */
export interface IngestMetrics {
  readonly registry: MetricsRegistry;
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
  /** Blob push hints sent to secondaries, by result (published, failed). */
  readonly blobHints: Counter;
}

export function createIngestMetrics(): IngestMetrics {
  const registry = createMetricsRegistry();
  return {
    registry,
    requests: registry.counter("georep_ingest_requests_total", "Notification requests answered, by HTTP status"),
    received: registry.counter("georep_ingest_events_received_total", "Events received in authenticated envelopes"),
    published: registry.counter("georep_ingest_events_published_total", "Events published to REGISTRY_EVENTS and acknowledged by JetStream"),
    duplicates: registry.counter("georep_ingest_events_duplicate_total", "Events JetStream already had (registry retries)"),
    ignored: registry.counter("georep_ingest_events_ignored_total", "Events not relevant to replication, by reason"),
    rejected: registry.counter("georep_ingest_events_rejected_total", "Events dead-lettered and requests refused, by reason"),
    blobHints: registry.counter("georep_ingest_blob_hints_total", "Blob pushes announced to secondaries on georep.blobs.pushed, by result", { initial: [{ result: "published" }, { result: "failed" }] }),
  };
}

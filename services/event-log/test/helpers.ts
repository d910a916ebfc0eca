/** Shared helpers of the integration tests (real nats-server and Postgres). */
import { headers as natsHeaders } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamClient } from "@nats-io/jetstream";
import { RegistryEvent, STREAM_NAMES, assertValid, encodeJson, registryEventSubject } from "@georep/schema";
import { HEADERS } from "@georep/schema";
import { connectNats, createDatabase, createLogger } from "@georep/runtime";
import type { Database, Logger } from "@georep/runtime";
import { buildEventLog } from "../src/app.js";
import type { EventLog, EventLogOptions } from "../src/app.js";
import { CONSUMER_NAME } from "../src/consumer.js";
import type { EventLogDatabase } from "../src/db.js";

/** Quiet by default; `TEST_LOG_LEVEL=debug` to watch. */
export const logger: Logger = createLogger({ name: "event-log-test", level: (process.env.TEST_LOG_LEVEL as "debug" | undefined) ?? "silent" });

/** Short timings so failures and repairs happen within a test. */
export const TEST_OPTIONS: EventLogOptions = {
  streamMaxAgeMs: 3600_000,
  duplicateWindowMs: 600_000,
  streamReplicas: 1,
  batchSize: 16,
  outboxIntervalMs: 200,
  outboxGraceMs: 1_000,
  outboxBatchSize: 50,
  retryDelayMs: 200,
  ackWaitMs: 5_000,
  maxAckPending: 1_000,
  publishTimeoutMs: 2_000,
};

/** An event-log instance with its own NATS connection and pool. */
export interface Instance {
  readonly eventLog: EventLog;
  readonly nc: NatsConnection;
  readonly database: Database<EventLogDatabase>;
  /** Stops the instance, then closes its connection and pool. */
  close(): Promise<void>;
}

/** Builds and starts an instance against the given servers. */
export async function startInstance(natsUrl: string, databaseUrl: string, options: Partial<EventLogOptions> = {}): Promise<Instance> {
  const nc = await connectNats({ servers: natsUrl, name: "event-log-test", logger, reconnectBaseMs: 50, reconnectMaxMs: 500 });
  const database = createDatabase<EventLogDatabase>({ url: databaseUrl, poolSize: 4, logger, connectionTimeoutMs: 2_000 });
  const eventLog = buildEventLog({ nc, db: database.db, logger, options: { ...TEST_OPTIONS, ...options } });
  await eventLog.start();
  let closed: Promise<void> | undefined;
  return {
    eventLog,
    nc,
    database,
    close() {
      closed ??= (async () => {
        await eventLog.stop();
        await eventLog.http.close();
        await nc.drain();
        await database.close();
      })();
      return closed;
    },
  };
}

let counter = 0;

/** A valid RegistryEvent (checked against the schema) with a unique id. */
export function registryEvent(fields: Partial<RegistryEvent> & Pick<RegistryEvent, "repository">): RegistryEvent {
  counter++;
  return assertValid(RegistryEvent, {
    id: `evt-${process.pid}-${counter}-${Math.random().toString(36).slice(2, 8)}`,
    action: "push",
    digest: `sha256:${counter.toString(16).padStart(64, "0")}`,
    tag: `v${counter}`,
    media_type: "application/vnd.oci.image.manifest.v1+json",
    size: 1234,
    received_at: new Date().toISOString(),
    ...fields,
  });
}

/** Publishes into REGISTRY_EVENTS as ingest does (`Nats-Msg-Id` = event id unless given). */
export async function publishRegistryEvent(js: JetStreamClient, event: RegistryEvent, msgId: string = event.id): Promise<void> {
  await js.publish(registryEventSubject(event.action, event.repository), encodeJson(RegistryEvent, event), { msgID: msgId });
}

/** Publishes raw bytes on a registry event subject (for poison messages). */
export async function publishRaw(js: JetStreamClient, subject: string, data: string, msgId: string): Promise<void> {
  const h = natsHeaders();
  await js.publish(subject, data, { msgID: msgId, headers: h });
}

/** A message read back from a stream. */
export interface StoredMessage {
  readonly subject: string;
  readonly seq: number;
  readonly msgId: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly json: unknown;
  readonly text: string;
}

/** Every message of `stream` whose subject matches `filter`, in stream order. */
export async function readStream(nc: NatsConnection, stream: string, filter: string): Promise<StoredMessage[]> {
  const js = jetstream(nc);
  const consumer = await js.consumers.get(stream, { filter_subjects: filter });
  let pending = (await consumer.info()).num_pending;
  const out: StoredMessage[] = [];
  while (pending > 0) {
    const batch = await consumer.fetch({ max_messages: pending, expires: 2_000 });
    let got = 0;
    for await (const m of batch) {
      got++;
      const hdrs: Record<string, string> = {};
      for (const [k, v] of m.headers ?? []) hdrs[k] = v.join(",");
      let json: unknown;
      try {
        json = m.json();
      } catch {
        json = undefined;
      }
      out.push({ subject: m.subject, seq: m.seq, msgId: m.headers?.get(HEADERS.MSG_ID), headers: hdrs, json, text: m.string() });
      pending = m.info.pending;
    }
    if (got === 0) break;
  }
  await consumer.delete().catch(() => undefined);
  return out;
}

/** Waits until `check` returns true (polling), or fails naming `what`. */
export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    if (await check()) return;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** True when the `event-log` consumer has nothing pending and nothing unacked. */
export async function consumerIdle(nc: NatsConnection): Promise<boolean> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.consumers.info(STREAM_NAMES.REGISTRY_EVENTS, CONSUMER_NAME);
  return info.num_pending === 0 && info.num_ack_pending === 0;
}

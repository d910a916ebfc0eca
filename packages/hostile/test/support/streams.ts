/** Reading REGISTRY_EVENTS and its dead-letter stream on the primary's JetStream. */
import type { JetStreamManager } from "@nats-io/jetstream";
import type { MsgHdrs } from "@nats-io/transport-node";

export const REGISTRY_EVENTS = "REGISTRY_EVENTS";
export const REGISTRY_EVENTS_DLQ = "REGISTRY_EVENTS_DLQ";
export const DLQ_SUBJECT_PREFIX = "georep.dlq.registry.events.";
export const EVENTS_SUBJECT_PREFIX = "georep.registry.events.";
/** Header ingest (and event-log) put the reason in. */
export const REASON_HEADER = "Georep-Dead-Letter-Reason";
/** Header only event-log's dead letters carry (the stream the message came from). */
export const EVENT_LOG_DLQ_HEADER = "Georep-Dead-Letter-Stream";

export interface StoredMessage {
  readonly seq: number;
  readonly subject: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly data: string;
}

/** The last sequence of `stream` (0 when empty). */
export async function lastSeq(jsm: JetStreamManager, stream: string): Promise<number> {
  return (await jsm.streams.info(stream)).state.last_seq;
}

/** Messages of `stream` with a sequence above `after`, at most `max` (the stream is never trimmed during the suite). */
export async function messagesAfter(jsm: JetStreamManager, stream: string, after: number, max = 1000): Promise<StoredMessage[]> {
  const last = await lastSeq(jsm, stream);
  if (last - after > max) throw new Error(`${stream} grew by ${last - after} messages (more than ${max}) after seq ${after}`);
  const out: StoredMessage[] = [];
  for (let seq = after + 1; seq <= last; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (m === null) continue;
    const headers: Record<string, string> = {};
    // A message stored without headers has none to read.
    const stored = m.header as MsgHdrs | undefined;
    for (const key of stored?.keys() ?? []) headers[key] = stored!.get(key);
    out.push({ seq, subject: m.subject, headers, data: m.string() });
  }
  return out;
}

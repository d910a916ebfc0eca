/** Shared setup: a real nats-server with the streams event-log would create, and stream readers. */
import { jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamManager } from "@nats-io/jetstream";
import { STREAMS } from "@georep/schema";

/** Creates REGISTRY_EVENTS and its DLQ as event-log does (dedup window of 2 h). */
export async function createStreams(jsm: JetStreamManager): Promise<void> {
  for (const def of [STREAMS.REGISTRY_EVENTS, STREAMS.REGISTRY_EVENTS_DLQ]) {
    await jsm.streams.add({ name: def.name, subjects: [...def.subjects], retention: def.retention, duplicate_window: 2 * 3600 * 1_000_000_000 });
  }
}

export interface StoredMessage {
  readonly subject: string;
  readonly data: Record<string, unknown>;
  readonly headers: Record<string, string>;
}

/** Every message currently in `stream`, in order. */
export async function readStream(jsm: JetStreamManager, stream: string): Promise<StoredMessage[]> {
  const info = await jsm.streams.info(stream);
  const out: StoredMessage[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (m === null) continue;
    const headers: Record<string, string> = {};
    for (const [k, v] of m.header ?? []) headers[k] = v[0] ?? "";
    out.push({ subject: m.subject, data: m.json<Record<string, unknown>>(), headers });
  }
  return out;
}

export { jetstreamManager };

export async function until(what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

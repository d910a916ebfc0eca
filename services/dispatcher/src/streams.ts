/**
 * The secondary's streams and the dispatcher's consumer: GEO_EVENTS as a
 * mirror of the primary's across the leafnode (DESIGN.md, "Sites and
 * processes"), the TRANSFER_JOBS work queue, and the durable `dispatcher`
 * pull consumer on the mirror.
 */
import { nanos } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, StorageType } from "@nats-io/jetstream";
import type { ConsumerConfig, JetStreamManager, StreamInfo } from "@nats-io/jetstream";
import { STREAMS, STREAM_NAMES } from "@georep/schema";
import { StreamConfigError, ensureConsumer as ensureDurableConsumer, ensureStream } from "@georep/runtime";
import type { EnsureConsumerAction, EnsureStreamResult, Logger } from "@georep/runtime";

/** Name of the durable pull consumer every dispatcher replica shares. */
export const CONSUMER_NAME = "dispatcher";

/** `$JS.<domain>.API`: the JetStream API of another domain, reached across the leafnode. */
export function jetStreamApiPrefix(domain: string): string {
  return `$JS.${domain}.API`;
}

/** Settings of the streams. */
export interface StreamOptions {
  readonly primaryJsDomain: string;
  readonly geoEventsMaxAgeMs: number;
  readonly streamReplicas: number;
}

async function streamInfo(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return undefined;
    throw new StreamConfigError(name, "cannot read stream info", { cause: err });
  }
}

/**
 * Ensures the local GEO_EVENTS mirror of the primary's GEO_EVENTS.
 * It may be created before the primary's stream exists or while the
 * leafnode is down: the server keeps retrying the mirror. The mirror's
 * origin cannot be changed on an existing stream, so a stream of that name
 * that is not this mirror is an error (an operator must delete it); the
 * other settings are updated in place.
 *
 * @throws {StreamConfigError}
 */
export async function ensureGeoEventsMirror(jsm: JetStreamManager, options: StreamOptions, logger?: Logger): Promise<EnsureStreamResult> {
  const mirror = { name: STREAM_NAMES.GEO_EVENTS, external: { api: jetStreamApiPrefix(options.primaryJsDomain), deliver: "" } };
  const limits = {
    name: STREAM_NAMES.GEO_EVENTS,
    description: `Mirror of the primary's GEO_EVENTS (JetStream domain ${options.primaryJsDomain})`,
    storage: StorageType.File,
    max_age: nanos(options.geoEventsMaxAgeMs),
    num_replicas: options.streamReplicas,
  };
  const current = await streamInfo(jsm, STREAM_NAMES.GEO_EVENTS);
  if (current !== undefined) {
    const have = current.config.mirror;
    if (have?.name !== mirror.name || have.external?.api !== mirror.external.api) {
      const what = have === undefined ? "is not a mirror" : `mirrors ${have.name} via ${have.external?.api ?? "the local domain"}`;
      throw new StreamConfigError(
        STREAM_NAMES.GEO_EVENTS,
        `exists but ${what}; expected a mirror of ${mirror.name} via ${mirror.external.api} (delete the stream to let the dispatcher create it)`,
      );
    }
    return ensureStream(jsm, limits, logger === undefined ? {} : { logger });
  }
  return ensureStream(jsm, { ...limits, mirror }, logger === undefined ? {} : { logger });
}

/**
 * Ensures the TRANSFER_JOBS work queue. Only the settings the dispatcher
 * owns are given (storage, replicas), so the transfer service may ensure the
 * same stream with its own limits without the two fighting.
 */
export async function ensureTransferJobs(jsm: JetStreamManager, options: StreamOptions, logger?: Logger): Promise<EnsureStreamResult> {
  return ensureStream(
    jsm,
    { ...STREAMS.TRANSFER_JOBS, storage: StorageType.File, num_replicas: options.streamReplicas },
    logger === undefined ? {} : { logger },
  );
}

/** Settings of the consumer. */
export interface ConsumerOptions {
  readonly ackWaitMs: number;
  readonly maxAckPending: number;
}

/** The consumer configuration the dispatcher wants. */
export function consumerConfig(options: ConsumerOptions): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    durable_name: CONSUMER_NAME,
    description: "dispatcher: mirrored GEO_EVENTS → tracking rows",
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(options.ackWaitMs),
    // A Postgres outage must not drop events: retry until it is back.
    max_deliver: -1,
    max_ack_pending: options.maxAckPending,
  };
}

/**
 * Creates the durable consumer, or updates the settings that differ, or
 * does nothing. Safe for replicas starting together.
 */
export async function ensureConsumer(jsm: JetStreamManager, options: ConsumerOptions): Promise<EnsureConsumerAction> {
  return ensureDurableConsumer(jsm, STREAM_NAMES.GEO_EVENTS, consumerConfig(options), ["description", "ack_wait", "max_ack_pending", "max_deliver"]);
}

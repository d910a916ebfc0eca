/**
 * Faults of the primary registry's notifications (issue 9, faults 10 and 3),
 * on one stack whose registry sends every notification three times and whose
 * dispatcher walks the primary's catalog every 5 s and re-syncs repositories
 * not verified for 5 s (the repair path for events that never arrive):
 * - every notification delivered three times: each event is recorded once;
 * - the primary registry restarted mid-burst with notifications queued in its
 *   memory (ingest is stopped first so that the queue is not empty): those
 *   events are gone for good, and the backfill repairs what they announced.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { burstRepositories, pushBurst, pushImage, sleep } from "../src/content.js";
import type { PushedTag } from "../src/content.js";
import { beginFault, expectClean, metric, query, startFaultStack } from "../src/harness.js";
import type { FaultStack } from "../src/harness.js";

const COPIES = 3;

let fs: FaultStack;
let failed = false;

beforeAll(async () => {
  fs = await startFaultStack({
    notificationCopies: COPIES,
    serviceEnv: {
      DISPATCHER_BACKFILL_INTERVAL_MS: "5000",
      DISPATCHER_REVERIFY_AFTER_MS: "5000",
      DISPATCHER_SWEEP_INTERVAL_MS: "1000",
    },
  });
});

beforeEach(({ onTestFailed }) => onTestFailed(() => void (failed = true)));

afterAll(async () => {
  await fs?.stop({ keep: failed });
});


/** Push rows of `geo_events` per pushed tag. */
async function pushRows(pushed: readonly PushedTag[]): Promise<Map<string, number>> {
  const rows = await query<{ repository: string; tag: string; n: string }>(
    fs.primarySite.database,
    `select repository, tag, count(*) as n from geo_events where event_type = 'push' and repository = any($1) and tag is not null group by 1, 2`,
    [[...new Set(pushed.map((p) => p.repository))]],
  );
  return new Map(rows.map((r) => [`${r.repository}:${r.tag}`, Number(r.n)]));
}

describe("faults of the registry's notifications", () => {
  it(`fault 10: every notification delivered ${COPIES} times`, async () => {
    const ingest = fs.primarySite.ingest!;
    const duplicatesBefore = await metric(ingest, "georep_ingest_events_duplicate_total");
    const run = await beginFault(fs, `10 every notification ${COPIES}×`, ["dup/"]);
    const pushed = await pushBurst(fs.primary, { prefix: "dup", repositories: 8, tags: 3, indexEvery: 4, concurrency: 2 });
    const duplicatesSince = async () => (await metric(ingest, "georep_ingest_events_duplicate_total")) - duplicatesBefore;
    const outcome = await run.finish(pushed, { notes: async () => `${await duplicatesSince()} duplicate deliveries dropped by ingest` });
    const duplicates = await duplicatesSince();

    const [events] = await query<{ rows: string; ids: string }>(fs.primarySite.database, `select count(*) as rows, count(distinct registry_event_id) as ids from geo_events`);
    const perTag = await pushRows(pushed);
    const notOnce = pushed.map((p) => `${p.repository}:${p.tag}`).filter((key) => perTag.get(key) !== 1).map((key) => `${key}: ${perTag.get(key) ?? 0} push rows`);

    expectClean(outcome);
    // Every copy arrived (the fault happened), and each event was recorded once.
    expect(duplicates).toBeGreaterThanOrEqual((COPIES - 1) * pushed.length);
    expect(Number(events!.rows)).toBe(Number(events!.ids));
    expect(notOnce).toEqual([]);
    expect(perTag.size).toBe(pushed.length);
  });

  it("fault 3: the primary registry restarted mid-burst with notifications queued; backfill repairs", async () => {
    const run = await beginFault(fs, "3 primary registry restarted mid-burst", ["restart/", "dup/"]);
    let fault: Promise<void> | undefined;
    const pushed: PushedTag[] = [];
    const burst = pushBurst(fs.primary, {
      // new repositories: the catalog walk finds them
      prefix: "restart",
      repositories: 8,
      tags: 3,
      indexEvery: 4,
      concurrency: 2,
      pauseMs: 300,
      // pushes in flight while the registry restarts fail; they are pushed again
      retryForMs: 60_000,
      onPushed: (_, count) => {
        if (count !== 4) return;
        fault = (async () => {
          // Notifications now queue in the registry's memory...
          await fs.control.stop("primary/ingest");
          // (new tags in repositories the secondary already synced: re-verification finds them)
          for (const repository of burstRepositories("dup", 3)) pushed.push(await pushImage(fs.primary, repository, "after-restart-1"));
          await sleep(2_000);
          // ...and are lost with it, mid-burst.
          await fs.control.restart("primary/registry");
          await fs.control.restart("primary/ingest");
        })();
      },
    });
    pushed.push(...(await burst));
    await fault;
    run.faultEnded();
    const unnotified = async () => {
      const perTag = await pushRows(pushed);
      return pushed.filter((p) => !perTag.has(`${p.repository}:${p.tag}`)).map((p) => `${p.repository}:${p.tag}`);
    };
    const outcome = await run.finish(pushed, { timeoutMs: 180_000, notes: async () => `${(await unnotified()).length} of ${pushed.length} pushes never notified (no geo_events row); replicated by the backfill` });

    expectClean(outcome);
    // The fault did lose notifications: what replicated them was the backfill.
    expect((await unnotified()).length).toBeGreaterThan(0);
  });
});

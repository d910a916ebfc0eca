/**
 * Faults on the event path (issue 9, faults 2, 4, 5, 6, 7 and 8), one after
 * the other on one stack, each restoring what it broke. The catalog walk
 * runs only at a dispatcher's start-up here, so what replicates after a
 * fault went through notification → ingest → event-log → GEO_EVENTS →
 * mirror → dispatcher → transfer (or through a restarted dispatcher's
 * start-up backfill, which is part of its design).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { pushBurst, sleep } from "../src/content.js";
import type { PushedTag } from "../src/content.js";
import { beginFault, expectClean, startFaultStack, watchLeafnodes } from "../src/harness.js";
import type { FaultStack } from "../src/harness.js";
import { tagMap } from "../src/verify.js";

/**
 * Postgres restarts in fault 7: whether a service survives one depends on
 * what its pool was doing at that instant (a query in flight on a
 * checked-out connection), so one restart proves little.
 */
const POSTGRES_RESTARTS = 5;

let fs: FaultStack;
let failed = false;

beforeAll(async () => {
  fs = await startFaultStack({
    leafnodeProxy: true,
    primaryRegistryProxy: true,
    serviceEnv: {
      DISPATCHER_BACKFILL_INTERVAL_MS: "0",
      DISPATCHER_SWEEP_INTERVAL_MS: "1000",
      TRANSFER_LEASE_MS: "10000",
      TRANSFER_BACKOFF_BASE_MS: "2000",
    },
  });
});

beforeEach(({ onTestFailed }) => onTestFailed(() => void (failed = true)));

afterAll(async () => {
  await fs?.stop({ keep: failed });
});


/** Tags of `pushed` the secondary serves now (at the pushed digest). */
async function visibleNow(pushed: readonly PushedTag[]): Promise<number> {
  let n = 0;
  const maps = new Map<string, Record<string, string>>();
  for (const p of pushed) {
    if (!maps.has(p.repository)) maps.set(p.repository, await tagMap(fs.secondary, p.repository));
    if (maps.get(p.repository)![p.tag] === p.digest) n++;
  }
  return n;
}

describe("faults on the event path", () => {
  it("fault 2: SIGKILL of dispatcher and event-log during a burst of pushes, then restarted", async () => {
    const run = await beginFault(fs, "2 SIGKILL dispatcher + event-log mid-burst", ["kill/"]);
    let kills: Promise<unknown> | undefined;
    let pushedAtKill = 0;
    const pushed = await pushBurst(fs.primary, {
      prefix: "kill",
      repositories: 8,
      tags: 3,
      indexEvery: 4,
      concurrency: 2,
      pauseMs: 100,
      onPushed: (_, count) => {
        if (count !== 6) return;
        pushedAtKill = count;
        kills = Promise.all([fs.control.kill("secondary-1/dispatcher"), fs.control.kill("primary/event-log")]);
      },
    });
    await kills;
    await sleep(2_000);
    await Promise.all([fs.control.restart("primary/event-log"), fs.control.restart("secondary-1/dispatcher")]);
    run.faultEnded();
    const outcome = await run.finish(pushed, { notes: `killed after ${pushedAtKill} of ${pushed.length} pushes` });
    expectClean(outcome);
  });

  it("fault 4: ingest down for 60 s while images are pushed", async () => {
    const run = await beginFault(fs, "4 ingest down 60 s", ["ingestdown/"]);
    await fs.control.stop("primary/ingest");
    const stoppedAt = Date.now();
    const pushed = await pushBurst(fs.primary, { prefix: "ingestdown", repositories: 8, tags: 2, indexEvery: 4, concurrency: 2, pauseMs: 500 });
    await sleep(Math.max(0, stoppedAt + 60_000 - Date.now()));
    const duringFault = await visibleNow(pushed);
    await fs.control.restart("primary/ingest");
    run.faultEnded();
    const outcome = await run.finish(pushed, { notes: `${duringFault} of ${pushed.length} on the secondary before ingest came back` });
    expectClean(outcome);
  });

  it("fault 5: NATS restarted at each site during a burst", async () => {
    const run = await beginFault(fs, "5 NATS restarted at each site", ["natsrestart/"]);
    let restarts: Promise<void> | undefined;
    const pushed = await pushBurst(fs.primary, {
      prefix: "natsrestart",
      repositories: 8,
      tags: 3,
      indexEvery: 4,
      concurrency: 2,
      pauseMs: 200,
      onPushed: (_, count) => {
        if (count !== 4) return;
        restarts = (async () => {
          await fs.control.restart("primary/nats-server");
          await sleep(1_000);
          await fs.control.restart("secondary-1/nats-server");
        })();
      },
    });
    await restarts;
    run.faultEnded();
    const outcome = await run.finish(pushed);
    expectClean(outcome);
  });

  it("fault 6: the leafnode link cut for 60 s during pushes, then restored", async () => {
    const proxy = fs.control.leafnodeProxies.get("secondary-1");
    expect(proxy).toBeDefined();
    const run = await beginFault(fs, "6 leafnode link cut 60 s", ["leafcut/"]);
    proxy!.cut();
    const cutAt = Date.now();
    // Give the leaf a moment to notice, then watch the hub: no leafnode may be connected until the restore.
    await sleep(2_000);
    const hub = watchLeafnodes(fs.primarySite.nats_monitor);
    const pushed = await pushBurst(fs.primary, { prefix: "leafcut", repositories: 8, tags: 2, indexEvery: 4, concurrency: 2, pauseMs: 1_500 });
    await sleep(Math.max(0, cutAt + 60_000 - Date.now()));
    const duringFault = await visibleNow(pushed);
    const connectedDuringCut = await hub.stop();
    proxy!.restore();
    run.faultEnded();
    const bypass = connectedDuringCut.length > 0 ? `; the link was NOT down: the hub saw a leafnode connected in ${connectedDuringCut.length} samples during the cut (first: ${connectedDuringCut[0]})` : "";
    const outcome = await run.finish(pushed, { notes: `${duringFault} of ${pushed.length} on the secondary before the link came back${bypass}` });
    expectClean(outcome);
    // The fault happened: the secondary's NATS had no leafnode to the hub during the cut (it did not reconnect around the proxy).
    expect(connectedDuringCut, "leafnode connections the hub saw while the proxy was cut").toEqual([]);
  });

  it(`fault 7: Postgres restarted during a burst (${POSTGRES_RESTARTS} times)`, async () => {
    const run = await beginFault(fs, `7 Postgres restarted (${POSTGRES_RESTARTS}×)`, ["pgrestart/"]);
    let restarts: Promise<void> | undefined;
    const pushed = await pushBurst(fs.primary, {
      prefix: "pgrestart",
      repositories: 8,
      tags: 5,
      indexEvery: 4,
      concurrency: 2,
      pauseMs: 300,
      onPushed: (_, count) => {
        if (count !== 4) return;
        restarts = (async () => {
          for (let i = 0; i < POSTGRES_RESTARTS; i++) {
            await fs.control.restart("postgres");
            await sleep(1_500);
          }
        })();
      },
    });
    await restarts;
    run.faultEnded();
    const outcome = await run.finish(pushed);
    expectClean(outcome);
  });

  it("fault 8: the primary registry answering 500 and 429 to 30% of the secondary's requests", async () => {
    const proxy = fs.control.primaryRegistryProxy;
    expect(proxy).toBeDefined();
    const before = { ...proxy!.counts };
    const run = await beginFault(fs, "8 primary registry 500/429 at 30%", ["flaky/"]);
    proxy!.setFaults({ rate: 0.3, statuses: [500, 429], retryAfterSeconds: 1 });
    const faultsFrom = Date.now();
    const pushed = await pushBurst(fs.primary, { prefix: "flaky", repositories: 8, tags: 3, indexEvery: 4, concurrency: 2, pauseMs: 500 });
    await sleep(Math.max(0, faultsFrom + 30_000 - Date.now()));
    proxy!.setFaults({ rate: 0 });
    run.faultEnded();
    const faulted = proxy!.counts.faulted - before.faulted;
    const forwarded = proxy!.counts.forwarded - before.forwarded;
    const outcome = await run.finish(pushed, { notes: `${faulted} requests failed on purpose, ${forwarded} forwarded` });
    expect(faulted).toBeGreaterThan(0);
    expectClean(outcome);
  });
});

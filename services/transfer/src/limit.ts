/** Small concurrency helpers for the sync. */

/** Runs tasks with at most `limit` at once (FIFO). */
export interface Limiter {
  run<T>(task: () => Promise<T>): Promise<T>;
}

/** A limiter allowing `limit` (at least 1) tasks at once. */
export function createLimiter(limit: number): Limiter {
  const max = Math.max(1, Math.floor(limit));
  let active = 0;
  const waiting: (() => void)[] = [];
  const release = () => {
    active--;
    waiting.shift()?.();
  };
  return {
    async run(task) {
      if (active >= max) await new Promise<void>((resolve) => waiting.push(resolve));
      active++;
      try {
        return await task();
      } finally {
        release();
      }
    },
  };
}

/** Maps `items` through `work` with at most `limit` at once, keeping order; rejects with the first failure after every item settled. */
export async function mapLimited<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const limiter = createLimiter(limit);
  return settleAll(items.map((item) => limiter.run(() => work(item))));
}

/**
 * Like `Promise.all`, but waits for every promise to settle before
 * rejecting with the first failure, so nothing is left running behind the
 * caller's back (an upload still writing when the sync is reported failed).
 */
export async function settleAll<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed !== undefined) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/**
 * Batches lookups: the keys asked for during one turn of the event loop are
 * loaded together by one call of `load` (one query instead of one per key).
 * A failed load rejects every lookup of its batch.
 */
export function createTurnLoader<K, V>(load: (keys: readonly K[]) => Promise<ReadonlyMap<K, V>>, missing: () => V): (key: K) => Promise<V> {
  type Batch = Map<K, { resolve: (value: V) => void; reject: (error: unknown) => void }[]>;
  let batch: Batch | undefined;
  const flush = (keys: Batch) => {
    load([...keys.keys()]).then(
      (values) => {
        for (const [key, waiters] of keys) for (const w of waiters) w.resolve(values.get(key) ?? missing());
      },
      (error: unknown) => {
        for (const waiters of keys.values()) for (const w of waiters) w.reject(error);
      },
    );
  };
  return (key) =>
    new Promise<V>((resolve, reject) => {
      if (batch === undefined) {
        const current: Batch = new Map();
        batch = current;
        setImmediate(() => {
          batch = undefined;
          flush(current);
        });
      }
      const waiters = batch.get(key);
      if (waiters === undefined) batch.set(key, [{ resolve, reject }]);
      else waiters.push({ resolve, reject });
    });
}

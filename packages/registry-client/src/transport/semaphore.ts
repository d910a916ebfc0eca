/** A counting semaphore: the per-registry limit on requests in flight. */
export class Semaphore {
  #available: number;
  readonly #waiting: (() => void)[] = [];

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`concurrency limit must be a positive integer, got ${size}`);
    this.#available = size;
  }

  /** Waits for a slot; the returned function gives it back (once). */
  async acquire(): Promise<() => void> {
    if (this.#available > 0) this.#available--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else this.#available++;
    };
  }

  /** Slots in use. */
  get inUse(): number {
    return this.size - this.#available;
  }
}

// A concurrency limit with a bounded FIFO queue (Envoy's circuit-breaker counters: max requests plus max
// pending): at most `maxActive` permits are out at once; while they are, up to `maxPending` callers wait
// for one, in arrival order; anyone beyond is refused at once. A waiter whose signal aborts leaves the
// queue. Generic: counts permits, knows nothing of HTTP or destinations, has no timers.
//
// Invariants: 0 ≤ active ≤ maxActive; waiters are queued only while active = maxActive; every permit is
// released at most once (release is idempotent), and a released permit goes straight to the oldest waiter.

export interface ConcurrencySettings {
  /** Infinity = no limit. */
  readonly maxActive: number;
  /** Callers that may wait for a permit (0 = none: refused at once when every permit is out). */
  readonly maxPending: number;
}

/** Gives the permit back; calling it again does nothing. */
export type Release = () => void;

interface Waiter {
  readonly grant: (release: Release) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

export class ConcurrencyLimit {
  readonly settings: ConcurrencySettings;
  readonly #queue: Waiter[] = [];
  #active = 0;

  constructor(settings: ConcurrencySettings) {
    const { maxActive, maxPending } = settings;
    if (!(maxActive >= 1)) throw new RangeError("concurrency limit maxActive must be >= 1");
    if (!(maxPending >= 0)) throw new RangeError("concurrency limit maxPending must be >= 0");
    this.settings = settings;
  }

  get active(): number {
    return this.#active;
  }

  get pending(): number {
    return this.#queue.length;
  }

  /** A permit now, or undefined when every permit is out (nothing is queued). */
  tryAcquire(): Release | undefined {
    if (this.#active >= this.settings.maxActive) return undefined;
    this.#active += 1;
    return this.#releaser();
  }

  /**
   * A permit now, a promise of one (the caller waits in the queue; undefined if its signal aborts
   * first), or "overflow" when every permit is out and the queue is full.
   */
  acquire(signal?: AbortSignal): Release | Promise<Release | undefined> | "overflow" {
    const now = this.tryAcquire();
    if (now) return now;
    if (this.#queue.length >= this.settings.maxPending) return "overflow";
    if (signal?.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        grant: resolve,
        signal,
        onAbort: () => {
          const i = this.#queue.indexOf(waiter);
          if (i >= 0) this.#queue.splice(i, 1);
          resolve(undefined);
        },
      };
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      this.#queue.push(waiter);
    });
  }

  #releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#queue.shift();
      if (!next) {
        this.#active -= 1;
        return;
      }
      // The permit passes to the oldest waiter: `active` stays as it is.
      next.signal?.removeEventListener("abort", next.onAbort);
      next.grant(this.#releaser());
    };
  }
}

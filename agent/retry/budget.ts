// A retry budget per destination, Linkerd's shape (linkerd2-proxy `retry::Budget`, after Finagle's
// RetryBudget): over the last `ttlMs`, retries may be at most `retryRatio` × requests plus a floor of
// `minRetriesPerSecond` × ttl seconds. A failing service so never sees its load multiplied by the retry
// count (3 retries each would be 4×): with the default 0.2 ratio it sees at most ~1.2× the client rate,
// while the floor keeps a low-traffic service retryable at all. Generic: keys are opaque, time injectable.
//
// Invariants: the window is `SLOTS` fixed slots of ttl/SLOTS each; a slot older than the window is zeroed
// before it is reused, so memory is constant and expiry is O(SLOTS) at worst per call.

export interface RetryBudgetSettings {
  /** Retries allowed per original request over the window (Linkerd: 0.2). */
  readonly retryRatio: number;
  /** Retries always allowed per second, whatever the traffic (Linkerd: 10). */
  readonly minRetriesPerSecond: number;
  /** How long a request or retry counts (Linkerd: 10 s). */
  readonly ttlMs: number;
}

export const DEFAULT_RETRY_BUDGET: RetryBudgetSettings = Object.freeze({
  retryRatio: 0.2,
  minRetriesPerSecond: 10,
  ttlMs: 10_000,
});

const SLOTS = 10;

export class RetryBudget {
  readonly settings: RetryBudgetSettings;
  readonly #now: () => number;
  readonly #slotMs: number;
  readonly #requests = new Float64Array(SLOTS);
  readonly #retries = new Float64Array(SLOTS);
  /** The slot number (time / slotMs) each array cell last counted for. */
  readonly #epoch = new Float64Array(SLOTS).fill(-Infinity);

  constructor(
    settings: RetryBudgetSettings = DEFAULT_RETRY_BUDGET,
    now: () => number = () => performance.now(),
  ) {
    if (!(settings.retryRatio >= 0)) throw new RangeError("retry budget retryRatio must be >= 0");
    if (!(settings.minRetriesPerSecond >= 0))
      throw new RangeError("retry budget minRetriesPerSecond must be >= 0");
    if (!(settings.ttlMs >= SLOTS)) throw new RangeError(`retry budget ttlMs must be >= ${SLOTS}`);
    this.settings = settings;
    this.#now = now;
    this.#slotMs = settings.ttlMs / SLOTS;
  }

  /** Counts an original request (not a retry): it earns `retryRatio` of a retry. */
  deposit(): void {
    this.#requests[this.#slot()]! += 1;
  }

  /** Takes one retry from the budget; false (and nothing taken) when it is spent. */
  tryWithdraw(): boolean {
    const i = this.#slot();
    if (this.available() < 1) return false;
    this.#retries[i]! += 1;
    return true;
  }

  /** Retries still allowed now (may be fractional). */
  available(): number {
    this.#slot();
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < SLOTS; i++) {
      requests += this.#requests[i]!;
      retries += this.#retries[i]!;
    }
    const s = this.settings;
    return s.minRetriesPerSecond * (s.ttlMs / 1000) + s.retryRatio * requests - retries;
  }

  /** The current slot's index, after zeroing every slot that fell out of the window. */
  #slot(): number {
    const epoch = Math.floor(this.#now() / this.#slotMs);
    for (let i = 0; i < SLOTS; i++) {
      if (this.#epoch[i]! <= epoch - SLOTS) {
        this.#requests[i] = 0;
        this.#retries[i] = 0;
        this.#epoch[i] = -Infinity;
      }
    }
    const i = ((epoch % SLOTS) + SLOTS) % SLOTS;
    if (this.#epoch[i] !== epoch) {
      this.#requests[i] = 0;
      this.#retries[i] = 0;
      this.#epoch[i] = epoch;
    }
    return i;
  }
}

/** One budget per destination key, replaced when its settings change. */
export class RetryBudgets {
  readonly #now: () => number;
  readonly #byKey = new Map<string, RetryBudget>();

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  get(key: string, settings: RetryBudgetSettings): RetryBudget {
    const have = this.#byKey.get(key);
    const s = have?.settings;
    if (
      have &&
      s &&
      s.retryRatio === settings.retryRatio &&
      s.minRetriesPerSecond === settings.minRetriesPerSecond &&
      s.ttlMs === settings.ttlMs
    )
      return have;
    const b = new RetryBudget(settings, this.#now);
    this.#byKey.set(key, b);
    return b;
  }

  retain(keep: (key: string) => boolean): void {
    for (const key of this.#byKey.keys()) if (!keep(key)) this.#byKey.delete(key);
  }
}

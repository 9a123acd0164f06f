// A token bucket in Envoy's local rate limit shape (`token_bucket`: max_tokens, tokens_per_fill,
// fill_interval): the bucket starts full, gains `tokensPerFill` every `fillIntervalMs` up to `maxTokens`,
// and each admitted request takes one token. Refills are computed lazily from the clock on each call (no
// timers), in whole fill intervals as Envoy does, so a bucket costs nothing while idle and `retryAfterMs`
// can say exactly when the next token arrives (the 429's `retry-after`, `RateLimit-Reset`). Generic: knows
// nothing of HTTP or identities; one bucket per whatever key the caller chooses. Time is injected.
//
// Invariants: 0 ≤ tokens ≤ maxTokens; `#filledAt` is the start of the current fill interval.

export interface TokenBucketSettings {
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
}

export class TokenBucket {
  readonly settings: TokenBucketSettings;
  readonly #now: () => number;
  #tokens: number;
  #filledAt: number;

  constructor(settings: TokenBucketSettings, now: () => number = () => performance.now()) {
    const { maxTokens, tokensPerFill, fillIntervalMs } = settings;
    if (!Number.isInteger(maxTokens) || maxTokens < 1)
      throw new RangeError("token bucket maxTokens must be an integer >= 1");
    if (!Number.isInteger(tokensPerFill) || tokensPerFill < 1)
      throw new RangeError("token bucket tokensPerFill must be an integer >= 1");
    if (!(fillIntervalMs > 0)) throw new RangeError("token bucket fillIntervalMs must be > 0");
    this.settings = settings;
    this.#now = now;
    this.#tokens = maxTokens;
    this.#filledAt = now();
  }

  /** Takes one token; false (nothing taken) when the bucket is empty. */
  tryTake(): boolean {
    this.#refill();
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Tokens left now. */
  get remaining(): number {
    this.#refill();
    return this.#tokens;
  }

  /** Milliseconds until the next refill (0 when a token is available now). */
  retryAfterMs(): number {
    this.#refill();
    if (this.#tokens >= 1) return 0;
    return Math.max(0, this.#filledAt + this.settings.fillIntervalMs - this.#now());
  }

  #refill(): void {
    const s = this.settings;
    const now = this.#now();
    const fills = Math.floor((now - this.#filledAt) / s.fillIntervalMs);
    if (fills <= 0) return;
    this.#tokens = Math.min(s.maxTokens, this.#tokens + fills * s.tokensPerFill);
    this.#filledAt += fills * s.fillIntervalMs;
  }
}

/** One bucket per key (a destination, a route, a SPIFFE ID), up to `maxKeys` so a key flood stays bounded. */
export class TokenBuckets {
  readonly #settings: TokenBucketSettings;
  readonly #now: () => number;
  readonly #maxKeys: number;
  readonly #byKey = new Map<string, TokenBucket>();

  constructor(settings: TokenBucketSettings, opts: { now?: () => number; maxKeys?: number } = {}) {
    this.#settings = settings;
    this.#now = opts.now ?? (() => performance.now());
    this.#maxKeys = opts.maxKeys ?? 10_000;
    new TokenBucket(settings, this.#now); // validates the settings once, here
  }

  get(key: string): TokenBucket {
    let b = this.#byKey.get(key);
    if (b) {
      // Map order is insertion order: re-inserting makes this the most recently used key.
      this.#byKey.delete(key);
      this.#byKey.set(key, b);
      return b;
    }
    b = new TokenBucket(this.#settings, this.#now);
    this.#byKey.set(key, b);
    // The least recently used bucket goes; it was idle longest, so it was likely full anyway.
    if (this.#byKey.size > this.#maxKeys) this.#byKey.delete(this.#byKey.keys().next().value as string);
    return b;
  }

  get size(): number {
    return this.#byKey.size;
  }
}

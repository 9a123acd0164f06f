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

  /** Milliseconds until the next fill adds tokens (RateLimit-Reset on an admitted request). */
  nextFillMs(): number {
    this.#refill();
    return Math.max(0, this.#filledAt + this.settings.fillIntervalMs - this.#now());
  }

  /** A full bucket is indistinguishable from a new one: dropping it loses nothing. */
  get full(): boolean {
    return this.remaining >= this.settings.maxTokens;
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

/** Full buckets looked at, oldest first, before a bucket that still counts something is evicted. */
const SWEEP = 8;

/**
 * One bucket per key (a destination, a route, a SPIFFE ID), at most `maxKeys` of them, so a flood of keys
 * (callers) cannot grow memory. At the bound, the least recently used full buckets go first (losslessly:
 * a new bucket starts full); only when the oldest ones are all still counting is the least recently used
 * one evicted, which hands its key a fresh bucket (counted in `evictions`). Map order is use order.
 */
export class TokenBuckets {
  readonly #settings: TokenBucketSettings;
  readonly #now: () => number;
  readonly #maxKeys: number;
  readonly #byKey = new Map<string, TokenBucket>();
  #evictions = 0;

  constructor(settings: TokenBucketSettings, opts: { now?: () => number; maxKeys?: number } = {}) {
    this.#settings = settings;
    this.#now = opts.now ?? (() => performance.now());
    this.#maxKeys = opts.maxKeys ?? 10_000;
    if (!Number.isInteger(this.#maxKeys) || this.#maxKeys < 1)
      throw new RangeError("token buckets maxKeys must be an integer >= 1");
    new TokenBucket(settings, this.#now); // validates the settings once, here
  }

  get(key: string): TokenBucket {
    let b = this.#byKey.get(key);
    if (b) {
      // Re-inserting makes this the most recently used key.
      this.#byKey.delete(key);
      this.#byKey.set(key, b);
      return b;
    }
    if (this.#byKey.size >= this.#maxKeys) this.#makeRoom();
    b = new TokenBucket(this.#settings, this.#now);
    this.#byKey.set(key, b);
    return b;
  }

  get size(): number {
    return this.#byKey.size;
  }

  /** Buckets dropped while they still counted (the bound was hit by busy keys). */
  get evictions(): number {
    return this.#evictions;
  }

  #makeRoom(): void {
    let looked = 0;
    for (const [k, b] of this.#byKey) {
      if (looked++ >= SWEEP) break;
      if (b.full) this.#byKey.delete(k);
    }
    if (this.#byKey.size < this.#maxKeys) return;
    this.#byKey.delete(this.#byKey.keys().next().value as string);
    this.#evictions += 1;
  }
}

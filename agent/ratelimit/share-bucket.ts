// A token bucket whose rate can change while it runs: the agent's part ("share") of a global rate limit,
// which the controller moves every few seconds. Unlike token-bucket.ts (Envoy's whole fill intervals, a
// fixed shape), it refills continuously at `requestsPerSecond`, because shares are fractional (33.7 rps)
// and re-created buckets would start full: keeping the tokens across a change is what stops every
// rebalance from admitting an extra burst. Generic: knows nothing of HTTP or of the controller. Time is
// injected (milliseconds).
//
// Invariants: 0 ≤ tokens ≤ burst; `#at` is when tokens were last brought up to date; a change of rate
// first settles the tokens earned at the old rate.

/** What a bucket at rate 0 tells a refused caller to wait: about one rebalance, when a share may come. */
const IDLE_RETRY_MS = 2000;

export class ShareBucket {
  readonly #now: () => number;
  #perMs = 0;
  #burst = 1;
  #tokens: number;
  #at: number;

  constructor(requestsPerSecond: number, burst: number, now: () => number = () => performance.now()) {
    this.#now = now;
    this.#at = now();
    this.#set(requestsPerSecond, burst);
    this.#tokens = this.#burst;
  }

  get requestsPerSecond(): number {
    return this.#perMs * 1000;
  }

  get burst(): number {
    return this.#burst;
  }

  /** Whole tokens available now. */
  get remaining(): number {
    this.#refill();
    return Math.floor(this.#tokens);
  }

  /** A new share: tokens earned so far are kept (up to the new burst); the new rate applies from now. */
  set(requestsPerSecond: number, burst: number): void {
    this.#refill();
    this.#set(requestsPerSecond, burst);
    this.#tokens = Math.min(this.#tokens, this.#burst);
  }

  /** Takes one token; false (nothing taken) when less than one is there. */
  tryTake(): boolean {
    this.#refill();
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Milliseconds until a whole token is there (0 when one is there now). */
  retryAfterMs(): number {
    this.#refill();
    if (this.#tokens >= 1) return 0;
    if (this.#perMs === 0) return IDLE_RETRY_MS;
    return Math.ceil((1 - this.#tokens) / this.#perMs);
  }

  #set(requestsPerSecond: number, burst: number): void {
    if (!(requestsPerSecond >= 0) || !Number.isFinite(requestsPerSecond))
      throw new RangeError(`share requestsPerSecond must be a finite number >= 0, got ${requestsPerSecond}`);
    if (!(burst >= 1) || !Number.isFinite(burst))
      throw new RangeError(`share burst must be a finite number >= 1, got ${burst}`);
    this.#perMs = requestsPerSecond / 1000;
    this.#burst = burst;
  }

  #refill(): void {
    const now = this.#now();
    const elapsed = now - this.#at;
    this.#at = now;
    if (elapsed > 0) this.#tokens = Math.min(this.#burst, this.#tokens + elapsed * this.#perMs);
  }
}

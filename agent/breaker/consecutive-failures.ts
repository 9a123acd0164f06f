// A per-endpoint circuit breaker as a small explicit state machine (linkerd2-proxy
// `app/outbound/src/http/breaker/consecutive_failures.rs`, with Envoy-style windowed counting):
//
//   closed ──(N consecutive failures, or M failures within windowMs)──▶ open
//   open ──(openMs elapsed)──▶ half-open            (checked lazily when the endpoint is considered)
//   half-open ──(K successes)──▶ closed             (open time resets to the base)
//   half-open ──(any failure)──▶ open, open time doubled up to maxOpenMs
//
// Half-open admits traffic (it does not ration probes): the balancer puts the endpoint back among the
// candidates, and the first failure sends it straight back to open for longer. Generic: knows nothing of
// HTTP; "failure" is whatever the caller reports. Time is injected so tests use fake time.

export type BreakerState = "closed" | "open" | "half-open";

export interface BreakerSettings {
  /** Opens after this many failures in a row (0 = off). */
  readonly consecutiveFailures: number;
  /** Opens after this many failures within `windowMs` (0 = off). The default: 5 in 10 s. */
  readonly windowFailures: number;
  readonly windowMs: number;
  /** First open period (issue: 30 s); each re-open from half-open doubles it, up to `maxOpenMs`. */
  readonly baseOpenMs: number;
  readonly maxOpenMs: number;
  /** Successes in half-open that close the breaker (issue: 2). */
  readonly halfOpenSuccesses: number;
}

export const DEFAULT_BREAKER: BreakerSettings = Object.freeze({
  consecutiveFailures: 5,
  windowFailures: 5,
  windowMs: 10_000,
  baseOpenMs: 30_000,
  maxOpenMs: 300_000,
  halfOpenSuccesses: 2,
});

export type TransitionListener = (from: BreakerState, to: BreakerState) => void;

/**
 * Invariants: `#failures` holds only failure times within the last `windowMs` while closed, and is
 * empty in any other state; `#openMs` is baseOpenMs·2^k ≤ maxOpenMs; `#until` is meaningful only when open.
 */
export class ConsecutiveFailures {
  readonly settings: BreakerSettings;
  readonly #now: () => number;
  readonly #onTransition: TransitionListener | undefined;
  #state: BreakerState = "closed";
  #consecutive = 0;
  #failures: number[] = [];
  #successes = 0;
  #openMs: number;
  #until = 0;

  constructor(settings: BreakerSettings, now: () => number, onTransition?: TransitionListener) {
    this.settings = settings;
    this.#now = now;
    this.#onTransition = onTransition;
    this.#openMs = settings.baseOpenMs;
  }

  /** The state now (an open breaker whose time is up reads as half-open). */
  get state(): BreakerState {
    if (this.#state === "open" && this.#now() >= this.#until) this.#enter("half-open");
    return this.#state;
  }

  /** Whether a request may go to this endpoint now. */
  allows(): boolean {
    return this.state !== "open";
  }

  success(): void {
    const state = this.state;
    if (state === "closed") this.#consecutive = 0;
    else if (state === "half-open") this.#halfOpenSuccess();
  }

  failure(): void {
    const state = this.state;
    if (state === "closed") this.#closedFailure();
    else if (state === "half-open") this.#trip(Math.min(this.settings.maxOpenMs, this.#openMs * 2));
  }

  /** Closed: count the failure both ways; either threshold trips the breaker at the base open time. */
  #closedFailure(): void {
    const s = this.settings;
    const now = this.#now();
    this.#consecutive += 1;
    this.#failures = this.#failures.filter((t) => now - t < s.windowMs);
    this.#failures.push(now);
    const byRun = s.consecutiveFailures > 0 && this.#consecutive >= s.consecutiveFailures;
    const byWindow = s.windowFailures > 0 && this.#failures.length >= s.windowFailures;
    if (byRun || byWindow) this.#trip(s.baseOpenMs);
  }

  /** Half-open: enough successes prove the endpoint healthy again. */
  #halfOpenSuccess(): void {
    this.#successes += 1;
    if (this.#successes >= this.settings.halfOpenSuccesses) {
      this.#openMs = this.settings.baseOpenMs;
      this.#enter("closed");
    }
  }

  #trip(openMs: number): void {
    this.#openMs = openMs;
    this.#until = this.#now() + openMs;
    this.#enter("open");
  }

  #enter(next: BreakerState): void {
    const from = this.#state;
    this.#state = next;
    this.#consecutive = 0;
    this.#failures = [];
    this.#successes = 0;
    if (from !== next) this.#onTransition?.(from, next);
  }

  /** For the config dump. */
  dump(): { state: BreakerState; openMs: number; reopensInMs?: number } {
    const state = this.state;
    return state === "open"
      ? { state, openMs: this.#openMs, reopensInMs: Math.max(0, this.#until - this.#now()) }
      : { state, openMs: this.#openMs };
  }
}

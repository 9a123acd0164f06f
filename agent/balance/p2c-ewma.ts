// PEAK_EWMA: power of two choices over Linkerd's peak-EWMA cost (linkerd2-proxy balances HTTP with
// tower's PeakEwma; Finagle's design). Each endpoint has a latency estimate that
//   - jumps to any observed latency above it at once (peak sensitivity: a slow endpoint is avoided
//     from its first slow response, not after an average catches up),
//   - otherwise moves towards observations with an exponential time decay (time constant `decayMs`),
//   - decays towards zero while nothing is observed, so an endpoint that was slow gets tried again;
// and the cost is estimate × (pending + 1), pending from the shared ActiveConnections, so a fast
// endpoint is preferred until its queue makes it as slow as the others.
import type { ActiveConnections, Balancer, Clock, RandomSource } from "./balancer.ts";
import { pickTwo } from "./random.ts";

/** Linkerd's defaults (linkerd2-proxy app/outbound, DEFAULT_EWMA): 30 ms for unseen endpoints, 10 s decay. */
export const DEFAULT_RTT_MS = 30;
export const DEFAULT_DECAY_MS = 10_000;
/**
 * A failed request counts as at least this latency. Not in Linkerd (its failure accrual is separate):
 * without it a server that fails fast looks like the fastest endpoint and attracts most traffic
 * until outlier detection ejects it. 1 s is far above healthy latencies and decays back in ~τ.
 */
export const DEFAULT_FAILURE_PENALTY_MS = 1000;
/** Estimates idle this many time constants (< 0.3 % of their peak) are dropped and start over as unseen. */
const FORGET_AFTER_DECAYS = 6;

export interface PeakEwmaOptions {
  readonly defaultRttMs?: number;
  readonly decayMs?: number;
  readonly failurePenaltyMs?: number;
  readonly random?: RandomSource;
  readonly now?: Clock;
}

interface Estimate {
  rttMs: number;
  at: number;
}

/**
 * Invariants: every estimate is ≥ 0 and finite; `at` never moves backwards; keys not observed or
 * costed for FORGET_AFTER_DECAYS × decayMs are swept, so endpoints that left do not leak.
 */
export class PeakEwma implements Balancer {
  readonly kind = "PEAK_EWMA" as const;
  readonly #active: ActiveConnections;
  readonly #defaultRttMs: number;
  readonly #decayMs: number;
  readonly #failurePenaltyMs: number;
  readonly #random: RandomSource;
  readonly #now: Clock;
  readonly #estimates = new Map<string, Estimate>();
  readonly #cost = (key: string): number => this.cost(key);
  #sweptAt: number;

  constructor(active: ActiveConnections, opts: PeakEwmaOptions = {}) {
    this.#active = active;
    this.#defaultRttMs = positive("defaultRttMs", opts.defaultRttMs ?? DEFAULT_RTT_MS);
    this.#decayMs = positive("decayMs", opts.decayMs ?? DEFAULT_DECAY_MS);
    this.#failurePenaltyMs = positive(
      "failurePenaltyMs",
      opts.failurePenaltyMs ?? DEFAULT_FAILURE_PENALTY_MS,
    );
    this.#random = opts.random ?? Math.random;
    this.#now = opts.now ?? (() => performance.now());
    this.#sweptAt = this.#now();
  }

  pick(candidates: readonly string[]): string | undefined {
    this.#maybeSweep(this.#now());
    return pickTwo(candidates, this.#random, this.#cost);
  }

  /** Records a finished request; a failure counts as at least the failure penalty. */
  observe(key: string, latencyMs: number, failed: boolean): void {
    if (!Number.isFinite(latencyMs) || latencyMs < 0) {
      throw new RangeError(`peak-ewma observe: latencyMs must be a finite number ≥ 0, got ${latencyMs}`);
    }
    const now = this.#now();
    const rtt = failed ? Math.max(latencyMs, this.#failurePenaltyMs) : latencyMs;
    this.#update(this.#estimate(key, now), rtt, now);
    this.#maybeSweep(now);
  }

  /** The current cost of `key`: decayed estimate × (pending + 1). Exposed for admin pages and tests. */
  cost(key: string): number {
    const now = this.#now();
    const estimate = this.#update(this.#estimate(key, now), 0, now);
    return estimate * (this.#active.get(key) + 1);
  }

  /** The decayed latency estimate of `key` in ms (the default RTT for an unseen key). */
  estimateMs(key: string): number {
    const now = this.#now();
    return this.#update(this.#estimate(key, now), 0, now);
  }

  #estimate(key: string, now: number): Estimate {
    let e = this.#estimates.get(key);
    if (!e) {
      e = { rttMs: this.#defaultRttMs, at: now };
      this.#estimates.set(key, e);
    }
    return e;
  }

  /** tower's RttEstimate::update: a peak replaces the estimate, else a time-weighted blend; rtt 0 = decay only. */
  #update(e: Estimate, rttMs: number, now: number): number {
    if (now < e.at) return e.rttMs;
    if (e.rttMs < rttMs) {
      e.rttMs = rttMs;
    } else {
      const decay = Math.exp(-(now - e.at) / this.#decayMs);
      e.rttMs = e.rttMs * decay + rttMs * (1 - decay);
    }
    e.at = now;
    return e.rttMs;
  }

  #maybeSweep(now: number): void {
    const horizon = FORGET_AFTER_DECAYS * this.#decayMs;
    if (now - this.#sweptAt < horizon) return;
    this.#sweptAt = now;
    for (const [key, e] of this.#estimates) {
      if (now - e.at >= horizon) this.#estimates.delete(key);
    }
  }
}

function positive(field: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`peak-ewma: ${field} must be a finite number > 0, got ${value}`);
  }
  return value;
}

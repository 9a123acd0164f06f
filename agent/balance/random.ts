// RANDOM (uniform, Envoy's and Istio's RANDOM) and the power-of-two-choices draw that LEAST_REQUEST
// and PEAK_EWMA share. P2C (Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing")
// compares two distinct random candidates and keeps the cheaper: O(1) per pick, and unlike "always
// the global minimum" it does not send a burst of requests to the one endpoint that looked idle.
import type { Balancer, RandomSource } from "./balancer.ts";

/** Picks uniformly at random; stateless apart from the random source. */
export class RandomBalancer implements Balancer {
  readonly kind = "RANDOM" as const;
  readonly #random: RandomSource;

  constructor(random: RandomSource = Math.random) {
    this.#random = random;
  }

  pick(candidates: readonly string[]): string | undefined {
    return candidates[randomIndex(this.#random, candidates.length)];
  }
}

/** An index in [0, n); a source that returns 1.0 (out of contract) is clamped rather than overflowing. */
export function randomIndex(random: RandomSource, n: number): number {
  return Math.min(n - 1, Math.floor(random() * n));
}

/**
 * Power of two choices: two distinct random candidates, the one with the lower `cost` wins, the
 * first drawn on a tie (as tower's p2c). One candidate is returned as is; none gives undefined.
 */
export function pickTwo(
  candidates: readonly string[],
  random: RandomSource,
  cost: (key: string) => number,
): string | undefined {
  const n = candidates.length;
  if (n <= 1) return candidates[0];
  const i = randomIndex(random, n);
  // Draw the second from the n-1 others, so the two are always distinct without a retry loop.
  let j = randomIndex(random, n - 1);
  if (j >= i) j++;
  const a = candidates[i] as string;
  const b = candidates[j] as string;
  return cost(b) < cost(a) ? b : a;
}

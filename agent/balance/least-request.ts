// LEAST_REQUEST: fewest active requests (L7) or connections (L4) wins, counted in the shared
// ActiveConnections. Like Envoy's least_request with equal weights, large sets use power of two
// choices (choice count 2). Small sets keep an exact scan: at this size a scan costs about what two
// random draws do, it is exact, and its round-robin tie break spreads load over equal endpoints
// deterministically, where P2C would send two equal picks to the same endpoint half the time.
import type { ActiveConnections, Balancer, RandomSource } from "./balancer.ts";
import { pickTwo } from "./random.ts";

/** Up to this many candidates the pick is an exact scan; above it, P2C. */
export const EXACT_SCAN_MAX = 16;

export class LeastRequest implements Balancer {
  readonly kind = "LEAST_REQUEST" as const;
  readonly #active: ActiveConnections;
  readonly #random: RandomSource;
  readonly #cost: (key: string) => number;
  #tie = 0;

  constructor(active: ActiveConnections, random: RandomSource = Math.random) {
    this.#active = active;
    this.#random = random;
    this.#cost = (key) => active.get(key);
  }

  pick(candidates: readonly string[]): string | undefined {
    if (candidates.length > EXACT_SCAN_MAX) return pickTwo(candidates, this.#random, this.#cost);
    return this.#scan(candidates);
  }

  #scan(candidates: readonly string[]): string | undefined {
    if (candidates.length === 0) return undefined;
    let best = Infinity;
    let ties = 0;
    for (const key of candidates) {
      const n = this.#active.get(key);
      if (n < best) {
        best = n;
        ties = 1;
      } else if (n === best) {
        ties++;
      }
    }
    let nth = this.#tie++ % ties;
    if (this.#tie >= 0x7fffffff) this.#tie = 0;
    for (const key of candidates) {
      if (this.#active.get(key) === best && nth-- === 0) return key;
    }
    return undefined;
  }
}

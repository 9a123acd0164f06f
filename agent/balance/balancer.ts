// Endpoint selection, generic: balancers see opaque endpoint keys and know nothing of workloads,
// services or requests. The caller passes only usable candidates (not ejected, not already tried),
// so a pick is a function of the candidates, the optional request hash and the balancer's own small
// state. `createBalancer` is the one factory; the algorithms live one a file beside it.
//
// Contract for callers (the L4 and L7 proxies):
//   - inc/dec `ActiveConnections` around every connection (L4) or request (L7) to a key: LEAST_REQUEST
//     and PEAK_EWMA read it as the pending count;
//   - call `observe(key, latencyMs, failed)` when a request finished (PEAK_EWMA learns from it);
//   - for RING_HASH / MAGLEV pass `{ hash, endpoints }`: `endpoints` is the service port's whole
//     endpoint set (the table is built over it, so ejections and retries do not rebuild or remap it),
//     `candidates` the usable subset.
import { LeastRequest } from "./least-request.ts";
import { Maglev, type MaglevOptions } from "./maglev.ts";
import { PeakEwma, type PeakEwmaOptions } from "./p2c-ewma.ts";
import { RandomBalancer } from "./random.ts";
import { RingHash, type RingHashOptions } from "./ring-hash.ts";

export type LoadBalancerKind =
  "ROUND_ROBIN" | "LEAST_REQUEST" | "RANDOM" | "PEAK_EWMA" | "RING_HASH" | "MAGLEV";

export const LOAD_BALANCER_KINDS: readonly LoadBalancerKind[] = Object.freeze([
  "ROUND_ROBIN",
  "LEAST_REQUEST",
  "RANDOM",
  "PEAK_EWMA",
  "RING_HASH",
  "MAGLEV",
]);

export interface PickContext {
  /** 32-bit unsigned request hash for consistent hashing (see `hash32`); absent = no affinity. */
  readonly hash?: number;
  /**
   * The full endpoint set of the destination (a superset of `candidates`) that a consistent-hash
   * table is built over. Pass the same array while the set is unchanged: it is compared by
   * reference first. Absent: the table is built over `candidates`.
   */
  readonly endpoints?: readonly string[];
}

export interface Balancer {
  readonly kind: LoadBalancerKind;
  /** Picks one of `candidates` (keys); undefined only when there are none. */
  pick(candidates: readonly string[], ctx?: PickContext): string | undefined;
  /** Feedback after a request/connection to `key` finished: its latency and whether it failed. */
  observe?(key: string, latencyMs: number, failed: boolean): void;
}

/** A uniform random source in [0, 1), as Math.random; injectable so tests are deterministic. */
export type RandomSource = () => number;
/** A monotonic clock in milliseconds, as performance.now; injectable for fake time in tests. */
export type Clock = () => number;

export interface BalancerOptions {
  readonly random?: RandomSource;
  readonly now?: Clock;
  readonly peakEwma?: PeakEwmaOptions;
  readonly ringHash?: RingHashOptions;
  readonly maglev?: MaglevOptions;
}

/** Rotates through candidates; the cursor advances on every pick so skipped endpoints do not skew the order. */
export class RoundRobin implements Balancer {
  readonly kind = "ROUND_ROBIN" as const;
  #next = 0;

  pick(candidates: readonly string[]): string | undefined {
    if (candidates.length === 0) return undefined;
    const picked = candidates[this.#next % candidates.length];
    this.#next = (this.#next + 1) % 0x7fffffff;
    return picked;
  }
}

/** Kept for the L4 proxy and its tests: least connections is LEAST_REQUEST counted per connection. */
export { LeastRequest as LeastConnections } from "./least-request.ts";

/**
 * Active connections or requests per endpoint key, shared by every balancer of a proxy.
 * Invariant: no entry is ever ≤ 0 (a key at zero is deleted), so the map holds only busy keys.
 */
export class ActiveConnections {
  readonly #counts = new Map<string, number>();

  get(key: string): number {
    return this.#counts.get(key) ?? 0;
  }
  inc(key: string): void {
    this.#counts.set(key, this.get(key) + 1);
  }
  dec(key: string): void {
    const n = this.get(key) - 1;
    if (n <= 0) this.#counts.delete(key);
    else this.#counts.set(key, n);
  }
}

export function createBalancer(
  kind: LoadBalancerKind,
  active: ActiveConnections,
  opts: BalancerOptions = {},
): Balancer {
  const random = opts.random ?? Math.random;
  switch (kind) {
    case "ROUND_ROBIN":
      return new RoundRobin();
    case "LEAST_REQUEST":
      return new LeastRequest(active, random);
    case "RANDOM":
      return new RandomBalancer(random);
    case "PEAK_EWMA":
      return new PeakEwma(active, { ...opts.peakEwma, random, now: opts.now });
    case "RING_HASH":
      return new RingHash({ ...opts.ringHash, random });
    case "MAGLEV":
      return new Maglev({ ...opts.maglev, random });
    default:
      // Fail closed on a kind added to the type but not here, or an unchecked value from the wire.
      throw new TypeError(
        `unknown load balancer kind "${String(kind)}"; expected one of ${LOAD_BALANCER_KINDS.join(", ")}`,
      );
  }
}

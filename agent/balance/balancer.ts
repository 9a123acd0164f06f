// Endpoint selection, generic: it sees opaque keys and knows nothing of workloads or services. The caller
// passes only usable candidates (not ejected, not already tried), so a pick is a pure function of the
// candidates and the balancer's own small state.

export type LoadBalancerKind = "ROUND_ROBIN" | "LEAST_REQUEST";

export interface Balancer {
  readonly kind: LoadBalancerKind;
  /** Picks one of `candidates` (keys); undefined when there are none. */
  pick(candidates: readonly string[]): string | undefined;
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

/**
 * Fewest active connections wins; ties go round robin so that equal endpoints share load. A full scan:
 * a service has tens of endpoints at most here, and a scan is exact where power-of-two-choices is not.
 */
export class LeastConnections implements Balancer {
  readonly kind = "LEAST_REQUEST" as const;
  readonly #active: ActiveConnections;
  #tie = 0;

  constructor(active: ActiveConnections) {
    this.#active = active;
  }

  pick(candidates: readonly string[]): string | undefined {
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
    for (const key of candidates) {
      if (this.#active.get(key) === best && nth-- === 0) return key;
    }
    return undefined;
  }
}

/** Active connection count per endpoint key, shared by every balancer that needs it. */
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

export function createBalancer(kind: LoadBalancerKind, active: ActiveConnections): Balancer {
  return kind === "LEAST_REQUEST" ? new LeastConnections(active) : new RoundRobin();
}

// One circuit breaker per endpoint, grouped per destination, kept across config snapshots while the
// destination's settings stay the same (as agent/balance/endpoint-state.ts keeps balancers). Generic:
// destinations and endpoints are opaque keys; transitions are reported to one listener (metrics).
import { ConsecutiveFailures, type BreakerSettings, type BreakerState } from "./consecutive-failures.ts";

export type BreakerTransition = (
  destination: string,
  endpoint: string,
  from: BreakerState,
  to: BreakerState,
) => void;

interface Destination {
  readonly signature: string;
  readonly settings: BreakerSettings;
  readonly byEndpoint: Map<string, ConsecutiveFailures>;
}

export class Breakers {
  readonly #now: () => number;
  readonly #onTransition: BreakerTransition | undefined;
  readonly #destinations = new Map<string, Destination>();

  constructor(opts: { now?: () => number; onTransition?: BreakerTransition } = {}) {
    this.#now = opts.now ?? (() => performance.now());
    this.#onTransition = opts.onTransition;
  }

  /** The breaker of `endpoint` in `destination`, created closed on first use. */
  get(destination: string, settings: BreakerSettings, endpoint: string): ConsecutiveFailures {
    const d = this.#destination(destination, settings);
    let b = d.byEndpoint.get(endpoint);
    if (!b) {
      b = new ConsecutiveFailures(d.settings, this.#now, (from, to) =>
        this.#onTransition?.(destination, endpoint, from, to),
      );
      d.byEndpoint.set(endpoint, b);
    }
    return b;
  }

  /** Whether `endpoint` of `destination` is open now (false when it has no breaker yet). */
  isOpen(destination: string, endpoint: string): boolean {
    const b = this.#destinations.get(destination)?.byEndpoint.get(endpoint);
    return b !== undefined && !b.allows();
  }

  /** Drops destinations that left the config, and endpoints that left a destination. */
  retain(keepDestination: (key: string) => boolean, endpointsOf: (key: string) => readonly string[]): void {
    for (const [key, d] of this.#destinations) {
      if (!keepDestination(key)) {
        this.#destinations.delete(key);
        continue;
      }
      const keep = new Set(endpointsOf(key));
      for (const ep of d.byEndpoint.keys()) if (!keep.has(ep)) d.byEndpoint.delete(ep);
    }
  }

  dump(): {
    destination: string;
    endpoint: string;
    state: BreakerState;
    openMs: number;
    reopensInMs?: number;
  }[] {
    const out = [];
    for (const [destination, d] of this.#destinations)
      for (const [endpoint, b] of d.byEndpoint) out.push({ destination, endpoint, ...b.dump() });
    return out;
  }

  #destination(key: string, settings: BreakerSettings): Destination {
    const have = this.#destinations.get(key);
    // The same settings object (one per config snapshot) needs no signature: this runs per request.
    if (have?.settings === settings) return have;
    const signature = JSON.stringify(settings);
    if (have && have.signature === signature) return have;
    const d: Destination = { signature, settings, byEndpoint: new Map() };
    this.#destinations.set(key, d);
    return d;
  }
}

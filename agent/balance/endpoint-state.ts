// Per-destination endpoint state that both the L4 (per connection) and the L7 (per request) paths use:
// one balancer and one outlier detector per destination key (a service port), kept across config
// snapshots while their settings stay the same. Generic: destinations and endpoints are opaque keys.
//
// Invariants: `state()` returns the same object for the same key and signature, so a balancer's memory
// (round-robin cursor, EWMA estimates) and an endpoint's ejection survive a snapshot that did not change
// them; `retain()` drops destinations that left the config.
import { OutlierDetector, type OutlierSettings } from "../health/outlier.ts";
import {
  ActiveConnections,
  createBalancer,
  type Balancer,
  type BalancerOptions,
  type LoadBalancerKind,
} from "./balancer.ts";

export interface DestinationState {
  readonly key: string;
  readonly balancer: Balancer;
  readonly outlier: OutlierDetector;
  readonly signature: string;
  /** The endpoint keys of the latest snapshot (for the config dump and outlier bookkeeping). */
  endpoints: readonly string[];
}

export interface DestinationSettings {
  readonly loadBalancer: LoadBalancerKind;
  readonly balancerOptions?: BalancerOptions;
  readonly outlier: OutlierSettings;
}

export class EndpointStates {
  /** Active connections or requests per endpoint key, shared by every balancer that weighs load. */
  readonly active = new ActiveConnections();
  readonly #byKey = new Map<string, DestinationState>();
  /** Per snapshot object (the caller's immutable destination): resolved once, not per request. */
  readonly #byOwner = new WeakMap<object, DestinationState>();

  /**
   * The state of `key`, resolved once per `owner` (an object immutable for one config snapshot, such as a
   * service port): a connection or request then costs one WeakMap lookup, not a signature build.
   * `settings` is called only on the first lookup for an owner.
   */
  stateOf(
    owner: object,
    key: string,
    settings: () => DestinationSettings,
    endpoints: readonly string[],
  ): DestinationState {
    const cached = this.#byOwner.get(owner);
    if (cached && this.#byKey.get(key) === cached) return cached;
    const state = this.state(key, settings(), endpoints);
    this.#byOwner.set(owner, state);
    return state;
  }

  state(key: string, settings: DestinationSettings, endpoints: readonly string[]): DestinationState {
    const signature = `${settings.loadBalancer}|${JSON.stringify(settings.balancerOptions ?? {})}|${JSON.stringify(settings.outlier)}`;
    const have = this.#byKey.get(key);
    if (have && have.signature === signature) {
      have.endpoints = endpoints;
      return have;
    }
    const state: DestinationState = {
      key,
      balancer: createBalancer(settings.loadBalancer, this.active, settings.balancerOptions),
      outlier: new OutlierDetector(settings.outlier),
      signature,
      endpoints,
    };
    this.#byKey.set(key, state);
    return state;
  }

  /** Keeps only the destinations `keep` says are still configured. */
  retain(keep: (key: string) => boolean): void {
    for (const key of this.#byKey.keys()) if (!keep(key)) this.#byKey.delete(key);
  }

  dump(): { destination: string; loadBalancer: string; endpoints: number; ejected: string[] }[] {
    return [...this.#byKey.values()].map((s) => ({
      destination: s.key,
      loadBalancer: s.balancer.kind,
      endpoints: s.endpoints.length,
      ejected: s.endpoints.filter((k) => s.outlier.isEjected(k)),
    }));
  }
}

/** Which endpoints may be tried next: not yet tried, not ejected (all not-tried ones if all are ejected). */
export function candidates(
  endpoints: readonly string[],
  tried: ReadonlySet<string>,
  isEjected: (key: string) => boolean,
): string[] {
  const fresh = tried.size === 0 ? [...endpoints] : endpoints.filter((k) => !tried.has(k));
  const healthy = fresh.filter((k) => !isEjected(k));
  // Panic mode (Envoy): when every remaining endpoint is ejected, trying one beats failing outright,
  // but only on the first attempt so that a dead service still fails fast.
  return healthy.length > 0 || tried.size > 0 ? healthy : fresh;
}

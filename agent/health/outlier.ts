// Passive outlier detection (Envoy's consecutive-gateway-failure detector, field names from Istio's
// DestinationRule): an endpoint that fails N tunnel attempts in a row is ejected for
// baseEjectionTime × (times ejected), capped so that at most maxEjectionPercent of the endpoints are out
// at once (at least one may always be ejected). Generic: keys are opaque strings; time is injected.
//
// Invariants:
// - an endpoint is ejected iff `#ejectedUntil.get(key) > now()`; expiry is lazy (no timers);
// - `#ejections` (the multiplier) decays by one per `interval` spent healthy after an ejection ends;
// - a success resets the consecutive-failure count.

export interface OutlierSettings {
  readonly consecutiveGatewayErrors: number;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionPercent: number;
}

interface EndpointHealth {
  failures: number;
  ejections: number;
  ejectedUntil: number;
}

export class OutlierDetector {
  readonly settings: OutlierSettings;
  readonly #now: () => number;
  readonly #state = new Map<string, EndpointHealth>();

  constructor(settings: OutlierSettings, now: () => number = Date.now) {
    this.settings = settings;
    this.#now = now;
  }

  isEjected(key: string): boolean {
    const s = this.#state.get(key);
    return s !== undefined && s.ejectedUntil > this.#now();
  }

  /** Remaining ejection time in ms (0 when not ejected); for the config dump. */
  ejectedForMs(key: string): number {
    const s = this.#state.get(key);
    return s ? Math.max(0, s.ejectedUntil - this.#now()) : 0;
  }

  success(key: string): void {
    const s = this.#state.get(key);
    if (!s) return;
    s.failures = 0;
    this.#decay(s);
    if (s.ejections === 0 && s.ejectedUntil <= this.#now()) this.#state.delete(key);
  }

  /**
   * Records a gateway error (connect refused/timeout, TLS failure, 503 from the peer agent). Returns true
   * when this failure ejected the endpoint. `total` is the number of endpoints in the service.
   */
  failure(key: string, total: number): boolean {
    const threshold = this.settings.consecutiveGatewayErrors;
    if (threshold <= 0) return false; // detector disabled
    let s = this.#state.get(key);
    if (!s) {
      s = { failures: 0, ejections: 0, ejectedUntil: 0 };
      this.#state.set(key, s);
    }
    const now = this.#now();
    if (s.ejectedUntil > now) return false;
    this.#decay(s);
    s.failures++;
    if (s.failures < threshold || !this.#mayEject(total)) return false;
    s.ejections++;
    s.failures = 0;
    s.ejectedUntil = now + this.settings.baseEjectionTimeMs * s.ejections;
    return true;
  }

  ejectedCount(): number {
    const now = this.#now();
    let n = 0;
    for (const s of this.#state.values()) if (s.ejectedUntil > now) n++;
    return n;
  }

  /** Drops state of endpoints no longer in the service. */
  retain(keys: ReadonlySet<string>): void {
    for (const key of this.#state.keys()) if (!keys.has(key)) this.#state.delete(key);
  }

  #mayEject(total: number): boolean {
    const ejected = this.ejectedCount();
    if (ejected === 0) return true;
    return ((ejected + 1) * 100) / Math.max(total, 1) <= this.settings.maxEjectionPercent;
  }

  #decay(s: EndpointHealth): void {
    if (s.ejections === 0 || this.settings.intervalMs <= 0) return;
    const now = this.#now();
    if (s.ejectedUntil > now) return;
    const healthyIntervals = Math.floor((now - s.ejectedUntil) / this.settings.intervalMs);
    if (healthyIntervals > 0) {
      s.ejections = Math.max(0, s.ejections - healthyIntervals);
      s.ejectedUntil = now; // restart the decay clock
    }
  }
}

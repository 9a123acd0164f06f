// Local rate limiting at the destination (Envoy's local_ratelimit, per pod as Istio configures it): the
// destination service's TrafficPolicy `rateLimit` is a token bucket per destination workload, checked
// by that workload's agent for each request after authorization. A request over the limit gets 429
// with `retry-after` (flag RateLimited) and never reaches the application. Buckets are kept per
// (workload, service, settings), so a changed limit starts a fresh bucket.
import { TokenBuckets, type TokenBucketSettings } from "../ratelimit/token-bucket.ts";
import type { MeshView, ServiceInfo } from "../state/view.ts";
import { resilienceOf } from "./resilience-policy.ts";

export type Admission =
  { readonly ok: true } | { readonly ok: false; readonly retryAfterMs: number; readonly limit: string };

export class LocalRateLimiter {
  readonly #buckets = new Map<string, TokenBuckets>();
  readonly #hosts = new WeakMap<MeshView, Map<string, ServiceInfo>>();
  readonly #now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** `serviceHost`: "name.namespace" of the service the caller addressed (the `forwarded` host). */
  admit(view: MeshView, uid: string, serviceHost: string | undefined): Admission {
    const service = serviceHost === undefined ? undefined : this.#service(view, serviceHost);
    const settings = service && resilienceOf(view, service).rateLimit;
    if (!settings) return { ok: true };
    const bucket = this.#bucketsFor(settings).get(`${uid}|${serviceHost}`);
    if (bucket.tryTake()) return { ok: true };
    return {
      ok: false,
      retryAfterMs: bucket.retryAfterMs(),
      limit: `${settings.maxTokens} per ${settings.fillIntervalMs} ms`,
    };
  }

  #bucketsFor(s: TokenBucketSettings): TokenBuckets {
    const key = `${s.maxTokens}/${s.tokensPerFill}/${s.fillIntervalMs}`;
    let b = this.#buckets.get(key);
    if (!b) {
      b = new TokenBuckets(s, { now: this.#now });
      this.#buckets.set(key, b);
    }
    return b;
  }

  #service(view: MeshView, host: string): ServiceInfo | undefined {
    let byHost = this.#hosts.get(view);
    if (!byHost) {
      byHost = new Map(view.services().map((s) => [s.host, s]));
      this.#hosts.set(view, byHost);
    }
    return byHost.get(host);
  }
}

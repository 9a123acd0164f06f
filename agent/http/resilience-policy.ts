// The resilience settings of a destination service, resolved once per config snapshot from its
// TrafficPolicy (`timeout`, `retries`, `circuitBreaker`; docs/resources.md) over the built-in defaults
// (the issue's: retry 3 times on 5xx and connect failures with 100/200/400 ms backoff ceilings; a breaker
// that opens after 5 failures in 10 s for 30 s and closes after 2 successes). The timeout, retry and
// breaker layers read them here; an HTTPRoute rule's own `timeouts`/`retry` win over them in the layers.
import {
  durationMs,
  trafficPolicyTargets,
  type CircuitBreakerSettings,
  type FaultInjectionSettings,
  type ServiceRateLimitSettings,
  type RetrySettings,
  type TrafficPolicy,
} from "../../controller/api/index.ts";
import { DEFAULT_BREAKER, type BreakerSettings } from "../breaker/consecutive-failures.ts";
import type { BackoffSettings } from "../retry/backoff.ts";
import { DEFAULT_RETRY_BUDGET, type RetryBudgetSettings } from "../retry/budget.ts";
import type { MeshView, ServiceInfo } from "../state/view.ts";

export interface RetryPolicy {
  /** Retries after the first try. */
  readonly attempts: number;
  readonly codes: ReadonlySet<number>;
  readonly perTryTimeoutMs: number | undefined;
  readonly backoff: BackoffSettings;
  readonly retryNonIdempotent: boolean;
  readonly maxBodyBytes: number;
  readonly budget: RetryBudgetSettings;
}

export interface Resilience {
  /** TrafficPolicy `timeout` (0 = disabled); undefined = the agent's default. */
  readonly timeoutMs: number | undefined;
  readonly retry: RetryPolicy;
  readonly breaker: BreakerSettings;
  /** TrafficPolicy `fault`, applied by the calling agent (agent/http/fault.ts). */
  readonly fault: FaultInjectionSettings | undefined;
  /** TrafficPolicy `rateLimit`, applied per destination workload by its agent (ratelimit-policy.ts). */
  readonly rateLimit: ServiceRateLimitSettings | undefined;
  /** TrafficPolicy `connectionPool` limits (pool-limit.ts; maxRequestsPerConnection in inbound.ts). */
  readonly pool: PoolPolicy;
}

/** Istio's connection-pool limits; Infinity (or 0 for maxRequestsPerConnection) = none. */
export interface PoolPolicy {
  readonly maxRequests: number;
  /** `tcp.maxConnections`: on an HTTP/1.1 port each request in flight needs a connection of its own. */
  readonly maxConnections: number;
  readonly maxPending: number;
  readonly maxRetries: number;
  readonly maxRequestsPerConnection: number;
}

/** Istio's defaults are 2^32-1 (none); pending requests are ours: 0, so overflow is a fast 503, not a queue. */
export const DEFAULT_POOL: PoolPolicy = Object.freeze({
  maxRequests: Infinity,
  maxConnections: Infinity,
  maxPending: 0,
  maxRetries: Infinity,
  maxRequestsPerConnection: 0,
});

const EVERY_5XX: ReadonlySet<number> = new Set(Array.from({ length: 100 }, (_, i) => 500 + i));
/** The brief's retry defaults; Envoy's default backoff cap is 10 × the base, so 1 s for 100 ms. */
export const DEFAULT_RETRY: RetryPolicy = Object.freeze({
  attempts: 3,
  codes: EVERY_5XX,
  perTryTimeoutMs: undefined,
  backoff: Object.freeze({ baseMs: 100, maxMs: 1_000 }),
  retryNonIdempotent: false,
  /** Envoy buffers up to its per-request buffer limit for retries; 64 KiB covers typical API bodies. */
  maxBodyBytes: 64 * 1024,
  budget: DEFAULT_RETRY_BUDGET,
});

const cache = new WeakMap<ServiceInfo, Resilience>();

/** The settings for `service` in `view` (cached per snapshot: ServiceInfo is rebuilt with each one). */
export function resilienceOf(view: MeshView, service: ServiceInfo): Resilience {
  let r = cache.get(service);
  if (!r) {
    r = Object.freeze(resolve(trafficPolicyOf(view, service)));
    cache.set(service, r);
  }
  return r;
}

/** The same choice as the view makes for load balancing: the first targeting policy by name. */
export function trafficPolicyOf(view: MeshView, service: ServiceInfo): TrafficPolicy | undefined {
  const s = view.config.services.find(
    (x) => x.metadata.name === service.name && x.metadata.namespace === service.namespace,
  );
  if (!s) return undefined;
  return view.config.trafficPolicies
    .filter((p) => trafficPolicyTargets(p, s))
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))[0];
}

function resolve(tp: TrafficPolicy | undefined): Resilience {
  const spec = tp?.spec;
  return {
    timeoutMs: spec?.timeout === undefined ? undefined : durationMs(spec.timeout),
    retry: retryPolicy(spec?.retries),
    breaker: breakerSettings(spec?.circuitBreaker),
    fault: spec?.fault,
    rateLimit: spec?.rateLimit,
    pool: poolPolicy(spec?.connectionPool),
  };
}

function poolPolicy(c: TrafficPolicy["spec"]["connectionPool"]): PoolPolicy {
  if (!c) return DEFAULT_POOL;
  const d = DEFAULT_POOL;
  return Object.freeze({
    maxRequests: c.http?.http2MaxRequests ?? d.maxRequests,
    maxConnections: c.tcp?.maxConnections ?? d.maxConnections,
    maxPending: c.http?.http1MaxPendingRequests ?? d.maxPending,
    maxRetries: c.http?.maxRetries ?? d.maxRetries,
    maxRequestsPerConnection: c.http?.maxRequestsPerConnection ?? d.maxRequestsPerConnection,
  });
}

const ms = (d: string | undefined, fallback: number) => (d === undefined ? fallback : durationMs(d));

function retryPolicy(r: RetrySettings | undefined): RetryPolicy {
  if (!r) return DEFAULT_RETRY;
  const d = DEFAULT_RETRY;
  const baseMs = ms(r.backoff?.baseInterval, d.backoff.baseMs);
  return Object.freeze({
    attempts: r.attempts ?? d.attempts,
    codes: r.codes ? new Set(r.codes) : d.codes,
    perTryTimeoutMs: r.perTryTimeout === undefined ? undefined : durationMs(r.perTryTimeout),
    backoff: Object.freeze({
      baseMs,
      maxMs: ms(r.backoff?.maxInterval, Math.max(baseMs * 10, d.backoff.maxMs)),
    }),
    retryNonIdempotent: r.retryNonIdempotent ?? d.retryNonIdempotent,
    maxBodyBytes: r.maxBodyBytes ?? d.maxBodyBytes,
    budget: Object.freeze({
      retryRatio: r.budget?.retryRatio ?? d.budget.retryRatio,
      minRetriesPerSecond: r.budget?.minRetriesPerSecond ?? d.budget.minRetriesPerSecond,
      ttlMs: Math.max(10, ms(r.budget?.ttl, d.budget.ttlMs)),
    }),
  });
}

function breakerSettings(c: CircuitBreakerSettings | undefined): BreakerSettings {
  if (!c) return DEFAULT_BREAKER;
  const d = DEFAULT_BREAKER;
  const baseOpenMs = ms(c.openTime, d.baseOpenMs);
  return Object.freeze({
    consecutiveFailures: c.consecutiveFailures ?? d.consecutiveFailures,
    windowFailures: c.failures ?? d.windowFailures,
    windowMs: ms(c.interval, d.windowMs),
    baseOpenMs,
    maxOpenMs: Math.max(baseOpenMs, ms(c.maxOpenTime, d.maxOpenMs)),
    halfOpenSuccesses: c.halfOpenSuccesses ?? d.halfOpenSuccesses,
  });
}

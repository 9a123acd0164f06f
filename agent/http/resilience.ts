// The resilience layers assembled for the outbound HTTP path, in their order (docs/http.md
// "Resilience"): fault injection → route-rule marking for rate limits → whole-request timeout → retry →
// connection-pool limits → circuit breaker → per-try timeout → upstream. Owns the per-destination state
// they keep across requests (retry budgets, breakers, pool counters) and
// hands the composition root its config-dump page content and its cleanup on each snapshot.
import type { AgentSettings } from "../config.ts";
import { Breakers } from "../breaker/breakers.ts";
import { RetryBudgets } from "../retry/budget.ts";
import type { Layer } from "../stack/compose.ts";
import type { MeshView } from "../state/view.ts";
import type { ResilienceMetrics } from "../telemetry/resilience.ts";
import { breakerLayer } from "./breaker.ts";
import { faultLayer } from "./fault.ts";
import { PoolLimits, poolLimitLayer } from "./pool-limit.ts";
import { ruleMarkLayer } from "./ratelimit-policy.ts";
import type { Exchange, ResponseHead } from "./exchange.ts";
import { retryLayer } from "./retry.ts";
import { requestTimeoutLayer, tryTimeoutLayer } from "./timeout.ts";

export interface ResilienceStack {
  readonly layers: readonly Layer<Exchange, ResponseHead>[];
  readonly breakers: Breakers;
  readonly pools: PoolLimits;
  /** Forgets budgets and breakers of destinations and endpoints that left the config. */
  retain(view: MeshView): void;
  dump(): ReturnType<Breakers["dump"]>;
}

export function createResilience(
  settings: Pick<AgentSettings, "defaultRequestTimeoutMs">,
  metrics: ResilienceMetrics,
  now: () => number = () => performance.now(),
): ResilienceStack {
  const breakers = new Breakers({
    now,
    onTransition: (d, e, from, to) => metrics.breakerTransition(d, e, from, to),
  });
  const budgets = new RetryBudgets(now);
  const pools = new PoolLimits();
  return {
    layers: [
      faultLayer({ metrics }),
      ruleMarkLayer(),
      requestTimeoutLayer(settings),
      retryLayer({ budgets, metrics }),
      poolLimitLayer(pools, metrics),
      breakerLayer(breakers),
      tryTimeoutLayer(),
    ],
    breakers,
    pools,
    retain(view) {
      const keep = (key: string) => view.servicePort(key) !== undefined;
      breakers.retain(keep, (key) => view.servicePort(key)?.endpointKeys ?? []);
      budgets.retain(keep);
      pools.retain(keep);
    },
    dump: () => breakers.dump(),
  };
}

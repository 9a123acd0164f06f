// Metrics of the resilience layers: retries by reason, exhausted retry budgets, each endpoint's
// circuit-breaker state and transitions, injected faults, rate-limited requests (destination side) and
// connection-pool overflows. These fire on failures only (not per request), so plain
// prom-client series are cheap enough here; `destination_service` is the destination key
// ("namespace/name:port"), `endpoint` the endpoint key ("podIP:port").
import { createRequire } from "node:module";
import type * as PromClient from "prom-client";

// Per-file requires as metrics.ts does: loading prom-client's index pulls in modules the agent never uses.
const require = createRequire(import.meta.url);
const Counter = require("prom-client/lib/counter.js") as typeof PromClient.Counter;
const Gauge = require("prom-client/lib/gauge.js") as typeof PromClient.Gauge;
type Counter<T extends string> = PromClient.Counter<T>;
type Gauge<T extends string> = PromClient.Gauge<T>;

const STATES = ["closed", "open", "half-open"] as const;

export class ResilienceMetrics {
  readonly #retries: Counter<"destination_service" | "reason">;
  readonly #exhausted: Counter<"destination_service">;
  readonly #state: Gauge<"destination_service" | "endpoint" | "state">;
  readonly #transitions: Counter<"destination_service" | "endpoint" | "from" | "to">;
  readonly #faults: Counter<"destination_service" | "fault" | "source">;
  readonly #rateLimited: Counter<"destination_service" | "policy" | "source_principal">;
  readonly #overflow: Counter<"destination_service" | "limit">;

  constructor(registry: PromClient.Registry) {
    const registers = [registry];
    this.#retries = new Counter({
      name: "nodemesh_request_retries_total",
      help: "HTTP request retries, by destination and reason (status, connect-failure, refused-stream, reset, per-try-timeout).",
      labelNames: ["destination_service", "reason"],
      registers,
    });
    this.#exhausted = new Counter({
      name: "nodemesh_retry_budget_exhausted_total",
      help: "Retries not made because the destination's retry budget was spent.",
      labelNames: ["destination_service"],
      registers,
    });
    this.#state = new Gauge({
      name: "nodemesh_circuit_breaker_state",
      help: "Circuit breaker state per endpoint: 1 for the current state (closed, open, half-open), 0 otherwise.",
      labelNames: ["destination_service", "endpoint", "state"],
      registers,
    });
    this.#transitions = new Counter({
      name: "nodemesh_circuit_breaker_transitions_total",
      help: "Circuit breaker state changes per endpoint.",
      labelNames: ["destination_service", "endpoint", "from", "to"],
      registers,
    });
    this.#faults = new Counter({
      name: "nodemesh_faults_injected_total",
      help: "Faults injected by the calling agent, by destination, fault (delay, abort) and source (route: a FaultInjection ExtensionRef; policy: the TrafficPolicy).",
      labelNames: ["destination_service", "fault", "source"],
      registers,
    });
    this.#rateLimited = new Counter({
      name: "nodemesh_rate_limited_total",
      help: "Requests refused with 429 by the destination's agent, by destination service host, limiting policy (Kind/namespace/name) and caller SPIFFE ID.",
      labelNames: ["destination_service", "policy", "source_principal"],
      registers,
    });
    this.#overflow = new Counter({
      name: "nodemesh_upstream_overflow_total",
      help: "Requests answered 503 UpstreamOverflow by the calling agent because a connection-pool limit was reached, by destination and limit.",
      labelNames: ["destination_service", "limit"],
      registers,
    });
  }

  /** `destination` is the service host ("name.namespace"), as the destination reporter labels it. */
  rateLimited(destination: string, policy: string, sourcePrincipal: string): void {
    this.#rateLimited.inc({ destination_service: destination, policy, source_principal: sourcePrincipal });
  }

  upstreamOverflow(destination: string, limit: string): void {
    this.#overflow.inc({ destination_service: destination, limit });
  }

  faultInjected(destination: string, fault: "delay" | "abort", source: "route" | "policy"): void {
    this.#faults.inc({ destination_service: destination, fault, source });
  }

  retry(destination: string, reason: string): void {
    this.#retries.inc({ destination_service: destination, reason });
  }

  budgetExhausted(destination: string): void {
    this.#exhausted.inc({ destination_service: destination });
  }

  breakerTransition(destination: string, endpoint: string, from: string, to: string): void {
    this.#transitions.inc({ destination_service: destination, endpoint, from, to });
    for (const state of STATES)
      this.#state.set({ destination_service: destination, endpoint, state }, state === to ? 1 : 0);
  }
}

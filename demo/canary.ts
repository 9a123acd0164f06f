// The demo's bad canary: `checkout` (declared HTTP) is served by both echo pods on port 8081, and
// n2p2 runs a new version that answers 503 to half of its requests. A TrafficPolicy gives the
// service retries (to the other endpoint) and a per-endpoint circuit breaker, so clients keep
// succeeding while the breaker takes the canary out; the demo prints the agent's own counts as
// proof. Pure config and metric reading: demo.ts starts the processes.
import { API_VERSION, type LabService } from "./mesh-config.ts";

export const CHECKOUT_VIP = "10.96.0.17";
export const CHECKOUT_PORT = 8081;
/** The pod running the failing version, and how often it fails. */
export const CANARY_POD = "n2p2";
export const CANARY_FAIL_PERCENT = 50;

export const CHECKOUT_SERVICE: LabService = {
  name: "checkout",
  vip: CHECKOUT_VIP,
  port: 80,
  targetPort: CHECKOUT_PORT,
  app: "echo",
  appProtocol: "http",
};

export const CHECKOUT_POLICY = {
  apiVersion: API_VERSION,
  kind: "TrafficPolicy",
  metadata: { name: "checkout", namespace: "default" },
  spec: {
    targetRefs: [{ group: "", kind: "Service", name: "checkout" }],
    // Round robin so the canary gets its full share until the breaker opens (PEAK_EWMA, the HTTP
    // default, would already prefer the client's own node and hide it).
    loadBalancer: { simple: "ROUND_ROBIN" },
    retries: { attempts: 2, codes: [503], backoff: { baseInterval: "25ms", maxInterval: "250ms" } },
    circuitBreaker: { consecutiveFailures: 3, openTime: "10s", halfOpenSuccesses: 2 },
  },
};

/** What the calling agent's metrics say about checkout: retries made and endpoints open now. */
export interface CanaryEvidence {
  retries: number;
  openEndpoints: string[];
  transitionsToOpen: number;
}

// Retries and breakers are kept per service port, and labelled with its key.
const SERVICE = 'destination_service="default/checkout:80"';

function value(line: string): number {
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** Reads the Prometheus text of the client's agent; `podOf` names an endpoint address. */
export function canaryEvidence(metrics: string, podOf: (address: string) => string): CanaryEvidence {
  const out: CanaryEvidence = { retries: 0, openEndpoints: [], transitionsToOpen: 0 };
  for (const line of metrics.split("\n")) {
    if (!line.includes(SERVICE)) continue;
    if (line.startsWith("nodemesh_request_retries_total{")) out.retries += value(line);
    else if (line.startsWith("nodemesh_circuit_breaker_transitions_total{") && line.includes('to="open"'))
      out.transitionsToOpen += value(line);
    else if (
      line.startsWith("nodemesh_circuit_breaker_state{") &&
      line.includes('state="open"') &&
      value(line) === 1
    ) {
      const endpoint = /endpoint="([^"]+)"/.exec(line)?.[1] ?? "?";
      out.openEndpoints.push(podOf(endpoint.replace(/:\d+$/, "")));
    }
  }
  return out;
}

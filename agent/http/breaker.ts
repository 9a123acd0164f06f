// The circuit-breaker layer, per endpoint: it hides endpoints whose breaker is open from the upstream's
// pick (`ex.skipEndpoint`, like outlier ejection but without panic mode), answers a fast 503 with flag
// UpstreamOverflow (Envoy's UO) when every endpoint of the destination is open, and feeds each try's
// outcome to the breaker of the endpoint it went to. It sits inside the retry loop and outside the per-try
// timeout, so every try counts and a timed-out try is a failure.
import type { Breakers } from "../breaker/breakers.ts";
import type { Layer } from "../stack/compose.ts";
import { localReply, type Exchange, type ResponseHead } from "./exchange.ts";
import { resilienceOf } from "./resilience-policy.ts";
import { isGrpc } from "./server.ts";

export const BREAKER_OPEN_FLAG = "UpstreamOverflow";
/** Mesh answers that mean the endpoint failed (as opposed to policy or routing answers). */
const FAILURE_FLAGS = new Set([
  "UpstreamRequestTimeout",
  "UpstreamConnectionTermination",
  "ConnectionFailure",
  "TlsFailure",
  "Http2HandshakeFailure",
]);

/** Whether a try's answer counts against its endpoint: a 5xx, or a failure the mesh observed. */
export function isEndpointFailure(res: ResponseHead): boolean {
  return res.status >= 500 || (res.flag !== undefined && FAILURE_FLAGS.has(res.flag));
}

export function breakerLayer(breakers: Breakers): Layer<Exchange, ResponseHead> {
  return (next) => async (ex) => {
    const sp = ex.backend ?? ex.servicePort;
    const key = sp.key;
    if (sp.endpoints.length > 0 && sp.endpoints.every((e) => breakers.isOpen(key, e.key))) {
      const reason = `every endpoint of ${sp.service.host}:${sp.port} has an open circuit breaker`;
      return localReply(503, BREAKER_OPEN_FLAG, reason, isGrpc(ex));
    }
    ex.skipEndpoint = (endpoint) => breakers.isOpen(key, endpoint);
    ex.endpoint = undefined;
    const res = await next(ex);
    const endpoint = ex.endpoint;
    // A try that went nowhere (no endpoint picked), or that the client abandoned, says nothing about
    // the endpoint.
    if (endpoint !== undefined && !ex.signal.aborted) {
      const b = breakers.get(key, resilienceOf(ex.view, sp.service).breaker, endpoint);
      if (isEndpointFailure(res)) b.failure();
      else b.success();
    }
    return res;
  };
}

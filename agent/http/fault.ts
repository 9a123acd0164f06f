// Fault injection as a layer (Istio's HTTPFaultInjection, from the destination service's TrafficPolicy
// `fault`): a fixed delay and/or an abort, each for a percentage of requests, applied by the calling
// agent before the request leaves the node, so chaos tests need no change to any application. An
// aborted request is answered by the mesh with the configured status (flag FaultInjected); a delay
// ends early when the client goes away.
import { setTimeout as sleep } from "node:timers/promises";
import { durationMs } from "../../controller/api/index.ts";
import type { Layer } from "../stack/compose.ts";
import { grpcStatusOf, localReply, type Exchange, type ResponseHead } from "./exchange.ts";
import { resilienceOf } from "./resilience-policy.ts";
import { isGrpc } from "./server.ts";

export function faultLayer(random: () => number = Math.random): Layer<Exchange, ResponseHead> {
  return (next) => async (ex) => {
    const fault = resilienceOf(ex.view, (ex.backend ?? ex.servicePort).service).fault;
    if (!fault) return next(ex);
    if (fault.delay && random() * 100 < fault.delay.percentage) {
      try {
        await sleep(durationMs(fault.delay.fixedDelay), undefined, { signal: ex.signal });
      } catch {
        return localReply(
          499,
          "DownstreamConnectionTermination",
          "client went away during an injected delay",
          isGrpc(ex),
        );
      }
    }
    const abort = fault.abort;
    if (abort && random() * 100 < abort.percentage) {
      const reason = `fault injected by the TrafficPolicy of ${(ex.backend ?? ex.servicePort).service.host}`;
      if (!isGrpc(ex)) return localReply(abort.httpStatus ?? 503, "FaultInjected", reason, false);
      const reply = localReply(abort.httpStatus ?? 503, "FaultInjected", reason, true);
      const grpcStatus = abort.grpcStatus ?? grpcStatusOf(abort.httpStatus ?? 503);
      return { ...reply, headers: { ...reply.headers, "grpc-status": String(grpcStatus) } };
    }
    return next(ex);
  };
}

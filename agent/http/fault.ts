// Fault injection as a layer (Istio's HTTPFaultInjection): a fixed delay and/or an abort, each for a
// percentage of requests, applied by the calling agent before the request leaves the node, so chaos
// tests need no change to any application. The faults come from the matched route rule's (or
// backendRef's) FaultInjection ExtensionRef when it has one (the route layer put it on `ex.fault`),
// else from the destination service's TrafficPolicy `fault`: a rule's header match can thus confine
// faults to test traffic. An aborted request is answered by the mesh with the configured status (flag
// FaultInjected); a delayed one is flagged DelayInjected; a delay ends early when the client goes away.
import { setTimeout as sleep } from "node:timers/promises";
import { durationMs, type FaultInjectionSettings } from "../../controller/api/index.ts";
import type { Layer } from "../stack/compose.ts";
import { grpcStatusOf, localReply, type Exchange, type ResponseHead } from "./exchange.ts";
import { resilienceOf } from "./resilience-policy.ts";
import { isGrpc } from "./server.ts";

export const DELAY_FLAG = "DelayInjected";
export const ABORT_FLAG = "FaultInjected";

/** Where the layer reports each injected fault (ResilienceMetrics implements it). */
export interface FaultSink {
  faultInjected(destination: string, fault: "delay" | "abort", source: "route" | "policy"): void;
}

export interface FaultLayerOptions {
  /** Uniform in [0, 1); injectable so tests are deterministic. */
  readonly random?: () => number;
  readonly metrics?: FaultSink;
}

interface Chosen {
  readonly settings: FaultInjectionSettings;
  readonly source: "route" | "policy";
  /** Names where the fault came from, for the reason the access log shows. */
  readonly origin: string;
}

function chosenFault(ex: Exchange): Chosen | undefined {
  const sp = ex.backend ?? ex.servicePort;
  // A dangling ref never gets here: the route layer answered 500 for it.
  if (ex.fault?.settings)
    return { settings: ex.fault.settings, source: "route", origin: `FaultInjection ${ex.fault.ref}` };
  const fault = resilienceOf(ex.view, sp.service).fault;
  return fault && { settings: fault, source: "policy", origin: `the TrafficPolicy of ${sp.service.host}` };
}

function abortReply(
  ex: Exchange,
  abort: NonNullable<FaultInjectionSettings["abort"]>,
  reason: string,
): ResponseHead {
  const status = abort.httpStatus ?? 503;
  if (!isGrpc(ex)) return localReply(status, ABORT_FLAG, reason, false);
  const reply = localReply(status, ABORT_FLAG, reason, true);
  const grpcStatus = abort.grpcStatus ?? grpcStatusOf(status);
  return { ...reply, headers: { ...reply.headers, "grpc-status": String(grpcStatus) } };
}

export function faultLayer(opts: FaultLayerOptions = {}): Layer<Exchange, ResponseHead> {
  const random = opts.random ?? Math.random;
  return (next) => async (ex) => {
    const chosen = chosenFault(ex);
    if (!chosen) return next(ex);
    const { settings, source, origin } = chosen;
    const destination = (ex.backend ?? ex.servicePort).key;
    let delayed = false;
    if (settings.delay && random() * 100 < settings.delay.percentage) {
      delayed = true;
      opts.metrics?.faultInjected(destination, "delay", source);
      try {
        await sleep(durationMs(settings.delay.fixedDelay), undefined, { signal: ex.signal });
      } catch {
        return localReply(
          499,
          "DownstreamConnectionTermination",
          "client went away during an injected delay",
          isGrpc(ex),
        );
      }
    }
    const abort = settings.abort;
    if (abort && random() * 100 < abort.percentage) {
      opts.metrics?.faultInjected(destination, "abort", source);
      return abortReply(ex, abort, `fault injected by ${origin}`);
    }
    if (!delayed) return next(ex);
    const res = await next(ex);
    // Istio's log joins flags with ","; the delay is named first as it happened first.
    return { ...res, flag: res.flag === undefined ? DELAY_FLAG : `${DELAY_FLAG},${res.flag}` };
  };
}

// The outbound decision, pure (ztunnel's `build_request()`): a captured connection's source workload and
// original destination → what to do with it: fail (with a response flag), carry it as opaque TCP, hand it
// to the HTTP path, or detect its protocol first; with the destination's endpoints and the budgets; for an
// ExternalService, through its egress gateway (a forward plan) or out of this agent (an egress plan).
// No I/O: `outbound.ts` acts on the plan; table tests drive this.
import type { AgentSettings } from "../config.ts";
import type { Destination } from "../datapath/datapath.ts";
import type { EndpointInfo, MeshView, ServicePortInfo, WorkloadInfo } from "../state/view.ts";
import type { PortProtocol } from "../state/protocol.ts";
import { BLACKHOLE_SERVICE, REGISTRY_ONLY_FLAG, type ExternalPortInfo } from "../egress/registry.ts";

export type OutboundPlan =
  | { readonly kind: "fail"; readonly flag: string; readonly reason: string; readonly service?: string }
  | ForwardPlan
  | DirectEgressPlan;

/** An ExternalService without egress gateway: this agent originates the outside connection (opaque TCP). */
export interface DirectEgressPlan {
  readonly kind: "egress";
  readonly source: WorkloadInfo;
  readonly external: ExternalPortInfo;
  /** What the application connected to (preferred when it is one of the service's addresses). */
  readonly destination: Destination;
  readonly connectTimeoutMs: number;
}

export interface ForwardPlan {
  readonly kind: "forward";
  readonly source: WorkloadInfo;
  /** How the connection is carried: `tcp` opaque, `detect` sniff first, else per request. */
  readonly protocol: PortProtocol;
  /** The service port, when the destination was a VIP (not a workload address). */
  readonly servicePort: ServicePortInfo | undefined;
  /** The endpoint-state key: the service port's, or the workload address's. */
  readonly destination: string;
  readonly endpoints: readonly EndpointInfo[];
  /** `destination_service` label ("name.namespace"), "unknown" for a workload address. */
  readonly serviceHost: string;
  readonly connectTimeoutMs: number;
}

type PlanSettings = Pick<AgentSettings, "connectTimeoutMs">;

export function planOutbound(
  view: MeshView,
  uid: string,
  dst: Destination | undefined,
  settings: PlanSettings,
): OutboundPlan {
  const source = view.localWorkload(uid);
  if (!source) return { kind: "fail", flag: "NoRoute", reason: `workload ${uid} is not local` };
  if (!dst) return { kind: "fail", flag: "NoRoute", reason: "original destination is unknown" };
  const target = view.resolve(dst.address, dst.port);
  if (!target) return planExternal(view, source, dst, settings);
  if (target.kind === "workload") {
    // A pod address has no declared protocol and no routes: carried as opaque TCP, as Istio ambient does
    // without a waypoint.
    return {
      kind: "forward",
      source,
      protocol: "tcp",
      servicePort: undefined,
      destination: target.endpoint.key,
      endpoints: [target.endpoint],
      serviceHost: "unknown",
      connectTimeoutMs: settings.connectTimeoutMs,
    };
  }
  const sp = target.servicePort;
  // A routed service port is answered per request even with no endpoint of its own: its routes may
  // send requests elsewhere. An unrouted one with no endpoint cannot be served at all.
  if (sp.endpoints.length === 0 && !(sp.protocol !== "tcp" && view.routesFor(sp))) {
    return {
      kind: "fail",
      flag: "NoHealthyUpstream",
      reason: "service has no endpoints",
      service: sp.service.host,
    };
  }
  return {
    kind: "forward",
    source,
    protocol: sp.protocol,
    servicePort: sp,
    destination: sp.key,
    endpoints: sp.endpoints,
    serviceHost: sp.service.host,
    connectTimeoutMs: sp.service.connectTimeoutMs ?? settings.connectTimeoutMs,
  };
}

/**
 * A destination that is no service and no workload: an ExternalService's (through its egress gateway, or
 * direct), else unknown: refused under REGISTRY_ONLY (the kernel then captures every connect), and under
 * ALLOW_ANY only reached here when the destination left the mesh between connect and accept.
 */
function planExternal(
  view: MeshView,
  source: WorkloadInfo,
  dst: Destination,
  settings: PlanSettings,
): OutboundPlan {
  const ext = view.external.resolve(dst.address, dst.port);
  if (!ext) {
    if (view.external.mode !== "REGISTRY_ONLY")
      return { kind: "fail", flag: "NoRoute", reason: "original destination is not meshed" };
    return {
      kind: "fail",
      flag: REGISTRY_ONLY_FLAG,
      reason: `outbound traffic policy REGISTRY_ONLY: ${dst.address}:${dst.port} is no service, workload or ExternalService`,
      service: BLACKHOLE_SERVICE,
    };
  }
  if (!ext.gatewayUid) {
    if (ext.targets.length === 0)
      return {
        kind: "fail",
        flag: "NoHealthyUpstream",
        reason: `external service ${ext.host} has no address yet (DNS not resolved)`,
        service: ext.host,
      };
    return {
      kind: "egress",
      source,
      external: ext,
      destination: dst,
      connectTimeoutMs: settings.connectTimeoutMs,
    };
  }
  // Through the gateway, never around it: a missing gateway fails the connection (no direct fallback).
  if (!ext.gateway)
    return {
      kind: "fail",
      flag: "NoHealthyUpstream",
      reason: `egress gateway ${ext.gatewayUid} of ${ext.host} is not in the mesh`,
      service: ext.host,
    };
  const sp = ext.servicePort;
  return {
    kind: "forward",
    source,
    protocol: sp.protocol,
    servicePort: sp,
    destination: sp.key,
    endpoints: sp.endpoints,
    serviceHost: ext.host,
    connectTimeoutMs: settings.connectTimeoutMs,
  };
}

// The outbound decision, pure (ztunnel's `build_request()`): a captured connection's source workload and
// original destination → what to do with it: fail (with a response flag), carry it as opaque TCP, hand it
// to the HTTP path, or detect its protocol first; with the destination's endpoints and the budgets.
// No I/O: `outbound.ts` acts on the plan; table tests drive this.
import type { AgentSettings } from "../config.ts";
import type { Destination } from "../datapath/datapath.ts";
import type { EndpointInfo, MeshView, ServicePortInfo, WorkloadInfo } from "../state/view.ts";
import type { PortProtocol } from "../state/protocol.ts";

export type OutboundPlan =
  | { readonly kind: "fail"; readonly flag: string; readonly reason: string; readonly service?: string }
  | ForwardPlan;

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
  if (!target) return { kind: "fail", flag: "NoRoute", reason: "original destination is not meshed" };
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

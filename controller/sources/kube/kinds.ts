// Which custom kinds the Kubernetes source watches, and discovery of those the server serves.
// Our CRDs live in nodemesh.io/v1alpha1; HTTPRoute, GRPCRoute and Gateway come from Gateway API
// (gateway.networking.k8s.io, v1 preferred, v1beta1 accepted: the fields the mesh uses are the same). A kind is watched only when the server serves it AND controller/api validates it,
// so routes join automatically once the wire schema knows them.
import type { ApisApi } from "@kubernetes/client-node";
import { API_VERSION, KINDS } from "../../api/index.ts";
import type { CustomKind } from "./status.ts";

export const NODEMESH_GROUP = "nodemesh.io";
export const GATEWAY_GROUP = "gateway.networking.k8s.io";

const OURS: ReadonlyArray<Omit<CustomKind, "group" | "version" | "route">> = [
  { kind: "AuthorizationPolicy", plural: "authorizationpolicies" },
  { kind: "PeerAuthentication", plural: "peerauthentications" },
  { kind: "TrafficPolicy", plural: "trafficpolicies" },
  { kind: "FaultInjection", plural: "faultinjections" },
  { kind: "RateLimitPolicy", plural: "ratelimitpolicies" },
  { kind: "ExternalService", plural: "externalservices" },
];
const ROUTES: ReadonlyArray<Omit<CustomKind, "group" | "version" | "route">> = [
  { kind: "HTTPRoute", plural: "httproutes" },
  { kind: "GRPCRoute", plural: "grpcroutes" },
  { kind: "Gateway", plural: "gateways" },
];
const GATEWAY_VERSIONS = ["v1", "v1beta1"];

/** What discovery found: served group versions ("group/version") and the kinds to watch. */
export interface Discovery {
  groupVersions: ReadonlySet<string>;
  kinds: CustomKind[];
  /** discovery.k8s.io/v1 (Kubernetes 1.21+); endpoints are derived from Pods either way. */
  endpointSlices: boolean;
  missing: string[];
}

/** Pure: the kinds to watch given the served group versions and the kinds our schema knows. */
export function kindsFor(groupVersions: ReadonlySet<string>, known: readonly string[] = KINDS): Discovery {
  const kinds: CustomKind[] = [];
  const missing: string[] = [];
  const [group, version] = API_VERSION.split("/") as [string, string];
  for (const k of OURS) {
    if (!known.includes(k.kind)) continue;
    if (groupVersions.has(API_VERSION)) kinds.push({ ...k, group, version, route: false });
    else missing.push(`${k.kind} (${API_VERSION}: CRDs not installed)`);
  }
  const gw = GATEWAY_VERSIONS.find((v) => groupVersions.has(`${GATEWAY_GROUP}/${v}`));
  for (const k of ROUTES) {
    if (!known.includes(k.kind)) continue;
    if (gw)
      kinds.push(
        k.kind === "Gateway"
          ? { ...k, group: GATEWAY_GROUP, version: gw, route: false, gateway: true }
          : { ...k, group: GATEWAY_GROUP, version: gw, route: true },
      );
    else missing.push(`${k.kind} (${GATEWAY_GROUP}: Gateway API CRDs not installed)`);
  }
  return { groupVersions, kinds, endpointSlices: groupVersions.has("discovery.k8s.io/v1"), missing };
}

export async function discover(apis: ApisApi): Promise<Discovery> {
  const list = await apis.getAPIVersions();
  const served = new Set<string>();
  for (const g of list.groups) for (const v of g.versions) served.add(v.groupVersion);
  return kindsFor(served);
}

export function kindKey(k: CustomKind): string {
  return `${k.plural}.${k.group}/${k.version}`;
}

// The config stream and CSR messages between an agent and the controller (schemas + types), and
// the pure `applyDelta` both sides use to turn a snapshot plus deltas into the next snapshot.
//
// Wire (HTTP/2 over TLS, port 15012, `authorization: Bearer <node token>`, `nodemesh-node: <node>`):
//   POST /v1/stream   bidi NDJSON: response lines are ServerMessage (a snapshot first, then deltas,
//                     heartbeats); request lines are ClientMessage (ACK/NACK of versions).
//                     Header `nodemesh-version: <v>` resumes: the controller answers with a delta
//                     from v when it still knows v, else with a full snapshot.
//                     The same stream carries the global rate limit's demand reports (agent →
//                     controller) and shares (controller → agent): global-ratelimit.ts.
//   POST /v1/csr      JSON CsrRequest → 200 CsrResponse | 4xx ErrorBody.
import { z } from "zod";
import {
  AuthorizationPolicy,
  FaultInjection,
  PeerAuthentication,
  RateLimitPolicy,
  Resource,
  Service,
  TrafficPolicy,
  WorkloadEntry,
  PendingWorkload,
  UnmeshedPod,
  Kind,
  keyOf,
  keyString,
} from "./resources.ts";
import type { ResourceKey } from "./resources.ts";
import { GRPCRoute, HTTPRoute } from "./routes.ts";
import { Gateway, TLSCertificate } from "./gateway.ts";
import { ExternalService } from "./resources.ts";
import { OutboundTrafficPolicy } from "./external-service.ts";
import { DemandReport, RateLimitShares } from "./global-ratelimit.ts";
import { NodeAddressBook, NodeAddressReport } from "./node-addresses.ts";

export const CONTROLLER_PORT = 15012;
export const CONTROLLER_MONITORING_PORT = 15014;
export const PATH_STREAM = "/v1/stream";
export const PATH_CSR = "/v1/csr";
export const HEADER_NODE = "nodemesh-node";
export const HEADER_VERSION = "nodemesh-version";
export const NDJSON = "application/x-ndjson";
/** The controller sends a heartbeat this often; a client that hears nothing for 3× reconnects. */
export const HEARTBEAT_INTERVAL_MS = 10_000;

export const MeshConfig = z
  .object({
    version: z.string().min(1),
    trustDomain: z.string().min(1),
    /** Policies in this namespace apply mesh-wide. */
    rootNamespace: z.string().min(1),
    /** PEM roots every agent trusts (more than one while a root rotates). */
    trustBundle: z.array(z.string()),
    services: z.array(Service),
    workloads: z.array(WorkloadEntry),
    authorizationPolicies: z.array(AuthorizationPolicy),
    peerAuthentications: z.array(PeerAuthentication),
    trafficPolicies: z.array(TrafficPolicy),
    /** Absent from a sender that predates routes: no route attached anywhere. */
    httpRoutes: z.array(HTTPRoute).default([]),
    grpcRoutes: z.array(GRPCRoute).default([]),
    /** Absent from a sender that predates the kind: every ExtensionRef to one dangles (500). */
    faultInjections: z.array(FaultInjection).default([]),
    /** Absent from a sender that predates the kind: no RateLimitPolicy applies (optional, as gateways). */
    rateLimitPolicies: z.array(RateLimitPolicy).optional(),
    /** Absent from a sender that predates ingress: no Gateway runs anywhere (optional, so that
     * builders of a MeshConfig written before the kinds stay valid). */
    gateways: z.array(Gateway).optional(),
    tlsCertificates: z.array(TLSCertificate).optional(),
    /** Absent from a sender that predates egress: no external destination is known. */
    externalServices: z.array(ExternalService).optional(),
    /** Mesh-wide (controller flag); absent = ALLOW_ANY, destinations nobody declared pass by the agent. */
    outboundTrafficPolicy: OutboundTrafficPolicy.optional(),
    /**
     * This node's pods without an IP yet (Kubernetes source only; never another node's). Absent from a
     * sender that predates the kind: no pod is enrolled before its IP is published.
     */
    pendingWorkloads: z.array(PendingWorkload).optional(),
    /**
     * This node's pods that are not meshed (Kubernetes source only; never another node's): the CNI
     * plugin's ADD for them is answered at once. Absent from a sender that predates the kind: every
     * pod the agent does not know as a workload is held at ADD until the plugin's bound.
     */
    unmeshedPods: z.array(UnmeshedPod).optional(),
  })
  .strict();

export const ResourceKeySchema = z.object({ kind: Kind, namespace: z.string(), name: z.string() }).strict();

export const MeshDelta = z
  .object({
    fromVersion: z.string().min(1),
    toVersion: z.string().min(1),
    upserts: z.array(Resource),
    removals: z.array(ResourceKeySchema),
    /** Present only when the trust bundle changed. */
    trustBundle: z.array(z.string()).optional(),
  })
  .strict();

export const ServerMessage = z.discriminatedUnion("type", [
  z.object({ type: z.literal("snapshot"), config: MeshConfig }).strict(),
  z.object({ type: z.literal("delta"), delta: MeshDelta }).strict(),
  z.object({ type: z.literal("heartbeat"), version: z.string() }).strict(),
  /** Only to an agent that has sent a demand report (so never to one that predates the message). */
  RateLimitShares,
  /** Only to an agent that has reported its addresses (node-addresses.ts). */
  NodeAddressBook,
]);

export const ClientMessage = z.discriminatedUnion("type", [
  /** `error` set = NACK: the agent could not apply that version and keeps its previous one. */
  z.object({ type: z.literal("ack"), version: z.string().min(1), error: z.string().optional() }).strict(),
  DemandReport,
  NodeAddressReport,
]);

export const CsrRequest = z
  .object({
    /** PKCS#10 PEM; key generated on the agent, the private key never leaves it. */
    csr: z.string().min(1),
    /** The SPIFFE ID requested; must be the CSR's only SAN. */
    identity: z.string().min(1),
  })
  .strict();

export const CsrResponse = z
  .object({
    /** Leaf first (PEM); today the root signs leaves directly, so the chain is the leaf alone. */
    certChain: z.array(z.string()).min(1),
    trustBundle: z.array(z.string()).min(1),
    /** ISO 8601 NotAfter of the leaf. */
    expiresAt: z.string(),
  })
  .strict();

export const ErrorBody = z
  .object({ error: z.object({ code: z.string(), reason: z.string(), message: z.string() }).strict() })
  .strict();

export type MeshConfig = z.infer<typeof MeshConfig>;
export type MeshDelta = z.infer<typeof MeshDelta>;
export type ServerMessage = z.infer<typeof ServerMessage>;
export type ClientMessage = z.infer<typeof ClientMessage>;
export type CsrRequest = z.infer<typeof CsrRequest>;
export type CsrResponse = z.infer<typeof CsrResponse>;
export type ErrorBody = z.infer<typeof ErrorBody>;

/** The MeshConfig list that holds each kind. */
export const LIST_OF_KIND = {
  Service: "services",
  WorkloadEntry: "workloads",
  AuthorizationPolicy: "authorizationPolicies",
  PeerAuthentication: "peerAuthentications",
  TrafficPolicy: "trafficPolicies",
  HTTPRoute: "httpRoutes",
  GRPCRoute: "grpcRoutes",
  FaultInjection: "faultInjections",
  RateLimitPolicy: "rateLimitPolicies",
  Gateway: "gateways",
  TLSCertificate: "tlsCertificates",
  ExternalService: "externalServices",
  PendingWorkload: "pendingWorkloads",
  UnmeshedPod: "unmeshedPods",
} as const satisfies Record<Kind, keyof MeshConfig>;

export class DeltaMismatchError extends Error {
  readonly code = "NODEMESH_ERR_DELTA_MISMATCH";
  constructor(have: string, from: string) {
    super(`delta from version ${from} cannot apply to version ${have}; the client resyncs from a snapshot`);
  }
}

function applyToList<T extends { kind: Kind; metadata: { namespace: string; name: string } }>(
  list: readonly T[],
  upserts: readonly T[],
  removed: ReadonlySet<string>,
): T[] {
  if (upserts.length === 0 && removed.size === 0) return list as T[];
  if (upserts.length + removed.size <= 32) {
    // The common delta touches a few resources: copy the list and patch it in place, without
    // building a key index of the whole list (10,000 workloads → ~50 µs instead of ~2 ms). Only
    // elements whose name is touched get a key string: no allocation for the other 9,999.
    const byKey = new Map<string, T>();
    const names = new Set<string>();
    for (const r of upserts) {
      byKey.set(keyString(keyOf(r)), r);
      names.add(r.metadata.name);
    }
    for (const k of removed) names.add(k.slice(k.lastIndexOf("/") + 1));
    const out: T[] = new Array<T>(list.length);
    let n = 0;
    for (const r of list) {
      if (names.has(r.metadata.name)) {
        const k = `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;
        if (removed.has(k)) continue;
        const up = byKey.get(k);
        if (up) {
          byKey.delete(k);
          out[n++] = up;
          continue;
        }
      }
      out[n++] = r;
    }
    out.length = n;
    for (const r of byKey.values()) out.push(r);
    return out;
  }
  const byKey = new Map<string, T>();
  for (const r of list) byKey.set(keyString(keyOf(r)), r);
  for (const k of removed) byKey.delete(k);
  for (const r of upserts) byKey.set(keyString(keyOf(r)), r);
  return [...byKey.values()];
}

/**
 * The snapshot after `delta`; `config` is not modified and unchanged lists are shared.
 * Throws DeltaMismatchError when the delta does not start at config.version.
 */
export function applyDelta(config: MeshConfig, delta: MeshDelta): MeshConfig {
  if (delta.fromVersion !== config.version) throw new DeltaMismatchError(config.version, delta.fromVersion);
  const up: Record<Kind, Resource[]> = {
    Service: [],
    WorkloadEntry: [],
    AuthorizationPolicy: [],
    PeerAuthentication: [],
    TrafficPolicy: [],
    HTTPRoute: [],
    GRPCRoute: [],
    FaultInjection: [],
    RateLimitPolicy: [],
    Gateway: [],
    TLSCertificate: [],
    ExternalService: [],
    PendingWorkload: [],
    UnmeshedPod: [],
  };
  const rm: Record<Kind, Set<string>> = {
    Service: new Set(),
    WorkloadEntry: new Set(),
    AuthorizationPolicy: new Set(),
    PeerAuthentication: new Set(),
    TrafficPolicy: new Set(),
    HTTPRoute: new Set(),
    GRPCRoute: new Set(),
    FaultInjection: new Set(),
    RateLimitPolicy: new Set(),
    Gateway: new Set(),
    TLSCertificate: new Set(),
    ExternalService: new Set(),
    PendingWorkload: new Set(),
    UnmeshedPod: new Set(),
  };
  for (const r of delta.upserts) up[r.kind].push(r);
  for (const k of delta.removals) rm[k.kind].add(keyString(k as ResourceKey));
  return {
    ...config,
    version: delta.toVersion,
    trustBundle: delta.trustBundle ?? config.trustBundle,
    services: applyToList(config.services, up.Service as Service[], rm.Service),
    workloads: applyToList(config.workloads, up.WorkloadEntry as WorkloadEntry[], rm.WorkloadEntry),
    authorizationPolicies: applyToList(
      config.authorizationPolicies,
      up.AuthorizationPolicy as AuthorizationPolicy[],
      rm.AuthorizationPolicy,
    ),
    peerAuthentications: applyToList(
      config.peerAuthentications,
      up.PeerAuthentication as PeerAuthentication[],
      rm.PeerAuthentication,
    ),
    trafficPolicies: applyToList(
      config.trafficPolicies,
      up.TrafficPolicy as TrafficPolicy[],
      rm.TrafficPolicy,
    ),
    httpRoutes: applyToList(config.httpRoutes, up.HTTPRoute as HTTPRoute[], rm.HTTPRoute),
    grpcRoutes: applyToList(config.grpcRoutes, up.GRPCRoute as GRPCRoute[], rm.GRPCRoute),
    faultInjections: applyToList(
      config.faultInjections,
      up.FaultInjection as FaultInjection[],
      rm.FaultInjection,
    ),
    rateLimitPolicies: applyToList(
      config.rateLimitPolicies ?? [],
      up.RateLimitPolicy as RateLimitPolicy[],
      rm.RateLimitPolicy,
    ),
    gateways: applyToList(config.gateways ?? [], up.Gateway as Gateway[], rm.Gateway),
    tlsCertificates: applyToList(
      config.tlsCertificates ?? [],
      up.TLSCertificate as TLSCertificate[],
      rm.TLSCertificate,
    ),
    externalServices: applyToList(
      config.externalServices ?? [],
      up.ExternalService as ExternalService[],
      rm.ExternalService,
    ),
    pendingWorkloads: applyToList(
      config.pendingWorkloads ?? [],
      up.PendingWorkload as PendingWorkload[],
      rm.PendingWorkload,
    ),
    unmeshedPods: applyToList(config.unmeshedPods ?? [], up.UnmeshedPod as UnmeshedPod[], rm.UnmeshedPod),
  };
}

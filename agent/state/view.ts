// An immutable, indexed view of one MeshConfig snapshot, built once per snapshot so that the hot path
// (one lookup per connection) is a Map get: VIP:port → service + endpoints, address → workload, local
// workloads of this node, and per-workload policies. Selection rules come from controller/api's
// selectors, so the agent and the controller agree on what applies where.
import {
  gatewayIdentity,
  gatewayNodes,
  isOurGateway,
  durationMs,
  endpointsOf,
  policyAppliesTo,
  spiffeIdOf,
  trafficPolicyTargets,
  type AuthorizationPolicy,
  type MeshConfig,
  type PeerAuthentication,
  type Service,
  type WorkloadEntry,
} from "../../controller/api/index.ts";
import type { BalancerOptions, LoadBalancerKind } from "../balance/balancer.ts";
import type { ConsistentHashLB } from "../../controller/api/index.ts";
import type { OutlierSettings } from "../health/outlier.ts";
import { refusesPlaintext } from "../policy/peer-auth.ts";
import { portProtocol, type PortProtocol } from "./protocol.ts";
import { compileRoutes, type RouteTable } from "./routes.ts";
import { ExternalRegistry } from "../egress/registry.ts";

export interface WorkloadInfo {
  /** "namespace/name": stable across snapshots, the datapath's enrollment key. */
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly address: string;
  readonly serviceAccount: string;
  readonly spiffeId: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly node: string;
  readonly netns: string | undefined;
  readonly cgroup: string | undefined;
  readonly entry: WorkloadEntry;
}

export interface EndpointInfo {
  /** "address:port": the balancing and outlier key. */
  readonly key: string;
  readonly address: string;
  readonly port: number;
  readonly workload: WorkloadInfo;
}

export interface ServicePortInfo {
  /** "namespace/name:port": one balancer and one outlier detector per service port. */
  readonly key: string;
  readonly service: ServiceInfo;
  readonly port: number;
  /** Declared (appProtocol, Istio port name) or `detect`. */
  readonly protocol: PortProtocol;
  readonly endpoints: readonly EndpointInfo[];
  /** `endpoints`' keys, one array per snapshot (balancers cache tables per endpoint set). */
  readonly endpointKeys: readonly string[];
}

export interface ServiceInfo {
  readonly name: string;
  readonly namespace: string;
  /** "name.namespace" — the destination_service label. */
  readonly host: string;
  /** Set by a TrafficPolicy; unset = the protocol's default (PEAK_EWMA for HTTP, ROUND_ROBIN for TCP). */
  readonly loadBalancer: LoadBalancerKind | undefined;
  /** Ring/table sizes for RING_HASH and MAGLEV. */
  readonly balancerOptions: BalancerOptions;
  /** What a consistent-hash balancer hashes (header, cookie, query parameter, source IP). */
  readonly hashPolicy: ConsistentHashLB | undefined;
  readonly connectTimeoutMs: number | undefined;
  readonly outlier: Partial<OutlierSettings>;
}

/** What an original destination resolves to. */
export type Target =
  | { readonly kind: "service"; readonly servicePort: ServicePortInfo }
  | { readonly kind: "workload"; readonly endpoint: EndpointInfo };

export interface MeshViewOptions {
  readonly nodeName: string;
  /** Current DNS answers for ExternalService hosts (agent/egress/dns.ts); default none. */
  readonly resolved?: ReadonlyMap<string, readonly string[]>;
}

export class MeshView {
  readonly config: MeshConfig;
  readonly version: string;
  readonly trustDomain: string;
  /** This agent's node (MeshViewOptions.nodeName). */
  readonly nodeName: string;
  readonly #byVip = new Map<string, ServicePortInfo>();
  readonly #byPortKey = new Map<string, ServicePortInfo>();
  readonly #byAddress = new Map<string, WorkloadInfo>();
  /** "spiffeId node": that identity has a workload, or runs a Gateway, on that node (tunnel peer checks). */
  readonly #identityOnNode = new Set<string>();
  /** SPIFFE IDs of Gateways: their tunnels carry an external client's address, no workload's. */
  readonly #gatewayIdentities = new Set<string>();
  readonly #local: WorkloadInfo[] = [];
  readonly #localByUid = new Map<string, WorkloadInfo>();
  readonly #authz = new Map<string, readonly AuthorizationPolicy[]>();
  readonly #services: ServiceInfo[] = [];
  readonly #routes: ReadonlyMap<string, RouteTable>;
  /** ExternalServices and the outbound traffic policy (agent/egress/registry.ts). */
  readonly external: ExternalRegistry;

  constructor(config: MeshConfig, opts: MeshViewOptions) {
    this.config = config;
    this.version = config.version;
    this.trustDomain = config.trustDomain;
    this.nodeName = opts.nodeName;
    for (const w of config.workloads) {
      const info = workloadInfo(w, config.trustDomain);
      this.#byAddress.set(info.address, info);
      this.#identityOnNode.add(`${info.spiffeId} ${info.node}`);
      if (w.spec.node === opts.nodeName) {
        this.#local.push(info);
        this.#localByUid.set(info.uid, info);
      }
    }
    for (const g of config.gateways ?? []) {
      if (!isOurGateway(g)) continue;
      const id = gatewayIdentity(g, config.trustDomain);
      this.#gatewayIdentities.add(id);
      for (const n of gatewayNodes(g)) this.#identityOnNode.add(`${id} ${n}`);
    }
    for (const s of config.services) this.#indexService(s);
    const byUid = new Map([...this.#byAddress.values()].map((w) => [w.uid, w]));
    this.external = new ExternalRegistry({
      config,
      workload: (uid) => byUid.get(uid),
      resolved: opts.resolved ?? new Map(),
    });
    this.#routes = compileRoutes(config);
    for (const w of this.#local) {
      this.#authz.set(
        w.uid,
        config.authorizationPolicies.filter((p) =>
          policyAppliesTo(p, w.entry, config.services, config.rootNamespace),
        ),
      );
    }
    Object.freeze(this.#local);
  }

  /** Original destination → meshed service port or workload; undefined = not meshed (pass through). */
  resolve(address: string, port: number): Target | undefined {
    const sp = this.#byVip.get(`${address}:${port}`);
    if (sp) return { kind: "service", servicePort: sp };
    const w = this.#byAddress.get(address);
    if (w) return { kind: "workload", endpoint: { key: `${address}:${port}`, address, port, workload: w } };
    return undefined;
  }

  /** The HTTPRoutes/GRPCRoutes attached to a service port; undefined = not routed (its own endpoints). */
  routesFor(sp: ServicePortInfo): RouteTable | undefined {
    return this.#routes.get(sp.key);
  }

  /** A service port by its key, "namespace/name:port" (a route's backend). */
  servicePort(key: string): ServicePortInfo | undefined {
    return this.#byPortKey.get(key) ?? this.external.servicePort(key);
  }

  workloadByAddress(address: string): WorkloadInfo | undefined {
    return this.#byAddress.get(address);
  }

  /** Does some workload with this SPIFFE ID run on `node`? (A tunnel peer must be one of them.) */
  identityOnNode(spiffeId: string, node: string): boolean {
    return this.#identityOnNode.has(`${spiffeId} ${node}`);
  }

  /** Is this the identity of a Gateway (agent/gateway), which speaks for external clients? */
  isGatewayIdentity(spiffeId: string): boolean {
    return this.#gatewayIdentities.has(spiffeId);
  }

  /** Every workload, for per-node address books (agent/state/peer-nodes.ts). */
  workloads(): IterableIterator<WorkloadInfo> {
    return this.#byAddress.values();
  }

  localWorkloads(): readonly WorkloadInfo[] {
    return this.#local;
  }

  localWorkload(uid: string): WorkloadInfo | undefined {
    return this.#localByUid.get(uid);
  }

  services(): readonly ServiceInfo[] {
    return this.#services;
  }

  /** AuthorizationPolicies that apply to a local workload. */
  authorizationPoliciesFor(uid: string): readonly AuthorizationPolicy[] {
    return this.#authz.get(uid) ?? [];
  }

  /** STRICT for the datapath: plaintext from outside the workload's namespace is refused. */
  refusesPlaintext(w: WorkloadInfo): boolean {
    return refusesPlaintext(this.config.peerAuthentications, w.entry, this.config.rootNamespace);
  }

  /** For the datapath: every VIP:port, every workload address (all ports), every external address:port. */
  meshedDestinations(): { address: string; port: number }[] {
    const out: { address: string; port: number }[] = [];
    for (const sp of this.#byVip.keys()) {
      const i = sp.lastIndexOf(":");
      out.push({ address: sp.slice(0, i), port: Number(sp.slice(i + 1)) });
    }
    for (const a of this.#byAddress.keys()) out.push({ address: a, port: 0 });
    out.push(...this.external.capturedDestinations());
    return out;
  }

  #indexService(s: Service): void {
    const tp = this.config.trafficPolicies
      .filter((p) => trafficPolicyTargets(p, s))
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))[0];
    const od = tp?.spec.outlierDetection;
    const outlier: Partial<OutlierSettings> = {};
    const consecutive = od?.consecutiveGatewayErrors ?? od?.consecutiveErrors ?? od?.consecutive5xxErrors;
    if (consecutive !== undefined) Object.assign(outlier, { consecutiveGatewayErrors: consecutive });
    if (od?.interval) Object.assign(outlier, { intervalMs: durationMs(od.interval) });
    if (od?.baseEjectionTime) Object.assign(outlier, { baseEjectionTimeMs: durationMs(od.baseEjectionTime) });
    if (od?.maxEjectionPercent !== undefined)
      Object.assign(outlier, { maxEjectionPercent: od.maxEjectionPercent });
    const timeout = tp?.spec.connectionPool?.tcp?.connectTimeout;
    const info: ServiceInfo = Object.freeze({
      name: s.metadata.name,
      namespace: s.metadata.namespace,
      host: `${s.metadata.name}.${s.metadata.namespace}`,
      ...balancing(tp?.spec.loadBalancer?.simple, tp?.spec.loadBalancer?.consistentHash),
      connectTimeoutMs: timeout ? durationMs(timeout) : undefined,
      outlier: Object.freeze(outlier),
    });
    this.#services.push(info);
    const endpoints = endpointsOf(s, this.config.workloads);
    for (const p of s.spec.ports) {
      const eps: EndpointInfo[] = [];
      for (const e of endpoints) {
        if (e.servicePort !== p.port) continue;
        const workload = this.#byAddress.get(e.address);
        if (workload) eps.push({ key: `${e.address}:${e.port}`, address: e.address, port: e.port, workload });
      }
      const spi: ServicePortInfo = Object.freeze({
        key: `${info.namespace}/${info.name}:${p.port}`,
        service: info,
        port: p.port,
        protocol: portProtocol(p),
        endpoints: Object.freeze(eps),
        endpointKeys: Object.freeze(eps.map((e) => e.key)),
      });
      this.#byPortKey.set(spi.key, spi);
      for (const vip of s.spec.addresses) this.#byVip.set(`${vip}:${p.port}`, spi);
    }
  }
}

/** DestinationRule's `simple` or `consistentHash` → the balancer kind and its options. */
function balancing(
  simple: LoadBalancerKind | undefined,
  hash: ConsistentHashLB | undefined,
): Pick<ServiceInfo, "loadBalancer" | "balancerOptions" | "hashPolicy"> {
  if (!hash) return { loadBalancer: simple, balancerOptions: {}, hashPolicy: undefined };
  if (hash.maglev) {
    const tableSize = hash.maglev.tableSize;
    return {
      loadBalancer: "MAGLEV",
      balancerOptions: tableSize ? { maglev: { tableSize } } : {},
      hashPolicy: hash,
    };
  }
  const minimumRingSize = hash.ringHash?.minimumRingSize;
  return {
    loadBalancer: "RING_HASH",
    balancerOptions: minimumRingSize ? { ringHash: { minimumRingSize } } : {},
    hashPolicy: hash,
  };
}

function workloadInfo(w: WorkloadEntry, trustDomain: string): WorkloadInfo {
  return Object.freeze({
    uid: `${w.metadata.namespace}/${w.metadata.name}`,
    name: w.metadata.name,
    namespace: w.metadata.namespace,
    address: w.spec.address,
    serviceAccount: w.spec.serviceAccount,
    spiffeId: spiffeIdOf(w, trustDomain),
    labels: w.spec.labels,
    node: w.spec.node,
    netns: w.spec.netns,
    cgroup: w.spec.cgroup,
    entry: w,
  });
}

export type { PeerAuthentication };

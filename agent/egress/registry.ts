// The ExternalServices of one snapshot, indexed for the hot path (one Map get per captured connection):
// address:port → external port (capture and the outbound plan), host:port → external port (the egress
// gateway, which learns the service from the tunnel's `forwarded: host=`), and the egress gateways' uids.
// Pure: DNS answers come in from agent/egress/dns.ts as a map; nothing here does I/O.
//
// Invariants: built once per MeshView and never changed; an external port's `servicePort` is shaped like a
// Service's so the L4 and L7 paths, balancers, breakers and telemetry handle it unchanged; its key carries
// the `external:` prefix so it can never collide with a Service's "namespace/name:port".
import {
  egressGatewayUid,
  externalTargetPort,
  type ExternalService,
  type ExternalServicePort,
  type ExternalTls,
  type MeshConfig,
  type OutboundTrafficMode,
} from "../../controller/api/index.ts";
import type { EndpointInfo, ServiceInfo, ServicePortInfo, WorkloadInfo } from "../state/view.ts";

/** Where the outside connection of one external port may go. */
export interface ExternalTarget {
  readonly address: string;
  readonly port: number;
}

export interface ExternalPortInfo {
  readonly service: ExternalService;
  readonly port: ExternalServicePort;
  /** The first host: `destination_service`, the gateway's lookup key, the default TLS server name. */
  readonly host: string;
  /** Shaped like a Service port: endpoints are the egress gateway (empty when the egress is direct). */
  readonly servicePort: ServicePortInfo;
  /** "namespace/name" of the egress gateway workload; undefined = the source's agent originates. */
  readonly gatewayUid: string | undefined;
  /** The gateway's workload when it exists in the snapshot. */
  readonly gateway: WorkloadInfo | undefined;
  /** STATIC: the endpoints; DNS: the hosts' current addresses (empty until resolved: fail closed). */
  readonly targets: readonly ExternalTarget[];
  readonly tls: ExternalTls | undefined;
}

/** What the registry needs of the view it belongs to. */
export interface RegistryInputs {
  readonly config: MeshConfig;
  /** A workload by "namespace/name" (the egress gateway). */
  workload(uid: string): WorkloadInfo | undefined;
  /** Current DNS answers by host (DNS resolution); absent hosts have no address yet. */
  readonly resolved: ReadonlyMap<string, readonly string[]>;
}

/** The access-log and metric `destination_service` of a connection REGISTRY_ONLY refused (Istio's name). */
export const BLACKHOLE_SERVICE = "BlackHoleCluster";
/** Its `response_flags`. */
export const REGISTRY_ONLY_FLAG = "RegistryOnlyDenied";

export class ExternalRegistry {
  readonly mode: OutboundTrafficMode;
  readonly #byAddress = new Map<string, ExternalPortInfo>();
  readonly #byHost = new Map<string, ExternalPortInfo>();
  readonly #byKey = new Map<string, ExternalPortInfo>();
  readonly #gateways = new Set<string>();
  readonly #services: ExternalService[];

  constructor(inputs: RegistryInputs) {
    this.mode = inputs.config.outboundTrafficPolicy?.mode ?? "ALLOW_ANY";
    this.#services = [...(inputs.config.externalServices ?? [])];
    for (const s of this.#services) this.#index(s, inputs);
  }

  /** The external port an application's connect to address:port is for; undefined = unknown. */
  resolve(address: string, port: number): ExternalPortInfo | undefined {
    return this.#byAddress.get(`${address}:${port}`);
  }

  /** The external port a tunnel names by `forwarded: host=` and its port (egress gateway side). */
  byHost(host: string, port: number): ExternalPortInfo | undefined {
    return this.#byHost.get(`${host}:${port}`);
  }

  servicePort(key: string): ServicePortInfo | undefined {
    return this.#byKey.get(key)?.servicePort;
  }

  /** Is this local workload an egress gateway (its tunnels carry traffic out of the mesh)? */
  isGateway(uid: string): boolean {
    return this.#gateways.has(uid);
  }

  /** Every address:port the datapath must capture for the external services. */
  capturedDestinations(): { address: string; port: number }[] {
    return [...this.#byAddress.keys()].map((k) => {
      const i = k.lastIndexOf(":");
      return { address: k.slice(0, i), port: Number(k.slice(i + 1)) };
    });
  }

  /** DNS hosts whose addresses the agent must keep resolved. */
  dnsHosts(): string[] {
    return [
      ...new Set(this.#services.filter((s) => s.spec.resolution === "DNS").flatMap((s) => s.spec.hosts)),
    ];
  }

  /** For the config dump. */
  dump(): object[] {
    return [...this.#byKey.values()].map((e) => ({
      service: e.servicePort.key,
      host: e.host,
      protocol: e.servicePort.protocol,
      egressGateway: e.gatewayUid ?? "direct",
      targets: e.targets.map((t) => `${t.address}:${t.port}`),
      tls: e.tls ? "SIMPLE" : "none",
    }));
  }

  #index(s: ExternalService, inputs: RegistryInputs): void {
    const gatewayUid = egressGatewayUid(s.spec, s.metadata.namespace);
    const gateway = gatewayUid ? inputs.workload(gatewayUid) : undefined;
    if (gatewayUid) this.#gateways.add(gatewayUid);
    const info: ServiceInfo = Object.freeze({
      name: s.metadata.name,
      namespace: s.metadata.namespace,
      host: s.spec.hosts[0] ?? s.metadata.name,
      loadBalancer: undefined,
      balancerOptions: {},
      hashPolicy: undefined,
      connectTimeoutMs: undefined,
      outlier: Object.freeze({}),
    });
    const dnsAddresses =
      s.spec.resolution === "DNS"
        ? [...new Set(s.spec.hosts.flatMap((h) => inputs.resolved.get(h) ?? []))]
        : [];
    for (const p of s.spec.ports) {
      const targets: ExternalTarget[] =
        s.spec.resolution === "STATIC"
          ? (s.spec.endpoints ?? []).map((e) => ({ address: e.address, port: externalTargetPort(p, e) }))
          : dnsAddresses.map((address) => ({ address, port: externalTargetPort(p, undefined) }));
      const endpoints: EndpointInfo[] = gateway
        ? [
            {
              key: `${gateway.address}:${p.number}`,
              address: gateway.address,
              port: p.number,
              workload: gateway,
            },
          ]
        : [];
      const servicePort: ServicePortInfo = Object.freeze({
        key: `external:${s.metadata.namespace}/${s.metadata.name}:${p.number}`,
        service: info,
        port: p.number,
        // L7 needs a hop that reads HTTP on the way out: the egress gateway. Direct egress is opaque.
        protocol: gatewayUid && p.protocol === "HTTP" ? "http" : "tcp",
        endpoints: Object.freeze(endpoints),
        endpointKeys: Object.freeze(endpoints.map((e) => e.key)),
      });
      const entry: ExternalPortInfo = Object.freeze({
        service: s,
        port: p,
        host: info.host,
        servicePort,
        gatewayUid,
        gateway,
        targets: Object.freeze(targets),
        tls: s.spec.tls,
      });
      this.#byKey.set(servicePort.key, entry);
      for (const h of s.spec.hosts) this.#byHost.set(`${h}:${p.number}`, entry);
      const captured = [...(s.spec.addresses ?? []), ...new Set(targets.map((t) => t.address))];
      for (const a of captured) this.#byAddress.set(`${a}:${p.number}`, entry);
    }
  }
}

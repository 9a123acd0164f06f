// The ingress gateway as a role of the node agent (docs/ingress.md): for each Gateway the snapshot
// places on this node, the agent binds the listeners' ports, terminates TLS, routes by host and path,
// and sends each request through the mesh's own layers and HBONE session pool under the Gateway's own
// SPIFFE identity, which the controller issues only to the Gateway's nodes. No extra hop, no second
// process: the pooled sessions, balancers, breakers and budgets are the agent's.
//
// Invariants: `#listeners` holds one bound socket per (address, port) of the current plans; `#wanted`
// holds each Gateway identity referenced once; a snapshot is applied by one apply() at a time (the
// agent's apply chain).
import { networkInterfaces } from "node:os";
import type { Socket } from "node:net";
import type { MeshView, ServicePortInfo, WorkloadInfo } from "../state/view.ts";
import type { IdentityManager } from "../identity/manager.ts";
import type { Logger } from "../log.ts";
import { compose, type Layer } from "../stack/compose.ts";
import type { Attributes } from "@opentelemetry/api";
import type { Exchange, ResponseHead } from "../http/exchange.ts";
import { mirrorLayer } from "../http/mirror.ts";
import { DownstreamServer } from "../http/server.ts";
import { upstreamHandler, type UpstreamDeps } from "../http/upstream.ts";
import type { RequestTelemetry } from "../telemetry/http.ts";
import { CertificateStore, selectCertificate, type CertFiles } from "./certs.ts";
import { gatewayRouteLayer, type ListenerRef } from "./layer.ts";
import { GatewayListener } from "./listener.ts";
import { reportOutbound } from "../http/outbound-report.ts";
import { outboundTracing } from "../http/trace.ts";
import type { MeshTracer } from "../telemetry/tracing/index.ts";
import { gatewaysForNode, type GatewayPlan, type GatewayPortPlan } from "./routes.ts";

/** Certificate files are re-checked this often (a stat of each; a read only when one changed). */
export const DEFAULT_CERT_POLL_MS = 2000;

export interface GatewayRoleDeps extends UpstreamDeps {
  readonly nodeName: string;
  readonly identities: IdentityManager;
  readonly telemetry: RequestTelemetry;
  /** The mesh's resilience layers (fault, timeouts, retry, breaker), shared with the outbound path. */
  readonly layers: readonly Layer<Exchange, ResponseHead>[];
  readonly log: Logger;
  readonly certPollMs?: number;
  /** This node's IPv4 addresses (default: os.networkInterfaces() of the agent's namespace). */
  readonly localAddresses?: () => ReadonlySet<string>;
  /** Request spans (docs/tracing.md, "At the ingress gateway"); absent = tracing off. */
  readonly tracer?: MeshTracer;
}

interface Bound {
  readonly listener: GatewayListener;
  readonly portKey: string;
  readonly protocol: "HTTP" | "HTTPS";
}

export class GatewayRole {
  readonly #deps: GatewayRoleDeps;
  readonly #log: Logger;
  readonly #server: DownstreamServer;
  readonly #certs: CertificateStore;
  readonly #listeners = new Map<string, Bound>();
  readonly #wanted = new Set<string>();
  readonly #frontends = new WeakMap<GatewayPortPlan, ServicePortInfo>();
  #current = new Map<string, ListenerRef>();
  #view: MeshView | undefined;

  constructor(deps: GatewayRoleDeps) {
    this.#deps = deps;
    this.#log = deps.log.child({ part: "gateway" });
    this.#certs = new CertificateStore({ log: this.#log, onChange: () => this.#refreshDefaults() });
    const upstream = upstreamHandler(deps);
    // The gateway's span is a CLIENT span like the source agent's (docs/tracing.md says why), opened
    // outermost so a 404 or a redirect the gateway answers itself is traced too.
    const t = deps.tracer && outboundTracing(deps.tracer, (ex) => this.#spanAttributes(ex));
    const layers = [
      gatewayRouteLayer((key) => this.#current.get(key)),
      mirrorLayer(upstream),
      ...deps.layers,
    ];
    this.#server = new DownstreamServer({
      handler: compose(t ? [t.layer, ...layers, t.attempts] : layers, upstream),
      onDone: (done) => reportOutbound(deps.telemetry, done, "gateway", t?.finish(done)),
      // WebSocket through the gateway is not built yet: say so instead of hanging the client.
      onUpgrade: (_req, socket) =>
        socket.end("HTTP/1.1 501 Not Implemented\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"),
    });
    this.#certs.watch(deps.certPollMs ?? DEFAULT_CERT_POLL_MS);
  }

  /** The Gateways of this snapshot that run here: identities, certificates, then the bound ports. */
  async apply(view: MeshView): Promise<void> {
    this.#view = view;
    const plans = gatewaysForNode(view.config, this.#deps.nodeName);
    this.#identities(plans);
    const current = new Map<string, ListenerRef>();
    for (const gateway of plans) for (const port of gateway.ports) current.set(port.key, { gateway, port });
    this.#current = current;
    await this.#certs.sync(this.#certificateFiles(view, plans));
    await this.#bind(plans);
    this.#refreshDefaults();
  }

  async close(): Promise<void> {
    this.#certs.close();
    await Promise.all([...this.#listeners.values()].map((b) => b.listener.close()));
    this.#listeners.clear();
    this.#server.close();
    for (const id of this.#wanted) this.#deps.identities.release(id);
    this.#wanted.clear();
  }

  dump(): object {
    return {
      gateways: [...this.#current.values()].map(({ gateway, port }) => ({
        gateway: gateway.key,
        identity: gateway.spiffeId,
        port: port.port,
        protocol: port.protocol,
        listeners: port.listeners.map((l) => ({ name: l.name, hostname: l.hostname ?? "*" })),
      })),
      bound: [...this.#listeners.keys()],
      certificates: this.#certs.dump(),
    };
  }

  /** What a gateway span adds to the source agent's attributes: who reported it and on which listener. */
  #spanAttributes(ex: Exchange): Attributes {
    const port = this.#current.get(ex.servicePort.key)?.port;
    return {
      "nodemesh.reporter": "gateway",
      "nodemesh.gateway": `${ex.source.namespace}/${ex.source.name}`,
      ...(port ? { "nodemesh.gateway.port": port.port, "nodemesh.gateway.protocol": port.protocol } : {}),
      // The external client, as the edge saw it (semconv client.address: the original client).
      "client.address": ex.source.address,
    };
  }

  #identities(plans: readonly GatewayPlan[]): void {
    const next = new Set(plans.map((p) => p.spiffeId));
    for (const id of next) if (!this.#wanted.has(id)) this.#deps.identities.want(id);
    for (const id of this.#wanted) if (!next.has(id)) this.#deps.identities.release(id);
    this.#wanted.clear();
    for (const id of next) this.#wanted.add(id);
  }

  #certificateFiles(view: MeshView, plans: readonly GatewayPlan[]): Map<string, CertFiles> {
    const byRef = new Map(
      (view.config.tlsCertificates ?? []).map((c) => [`${c.metadata.namespace}/${c.metadata.name}`, c.spec]),
    );
    const out = new Map<string, CertFiles>();
    for (const g of plans)
      for (const p of g.ports)
        for (const l of p.listeners)
          for (const ref of l.certificates) {
            const files = byRef.get(ref);
            if (files) out.set(ref, files);
            else
              this.#log.error(
                { code: "NODEMESH_ERR_GATEWAY_CERT", gateway: g.key, listener: l.name, certificate: ref },
                `listener ${l.name} of gateway ${g.key} names TLSCertificate ${ref}, which is not in the config`,
              );
          }
    return out;
  }

  async #bind(plans: readonly GatewayPlan[]): Promise<void> {
    const local = this.#deps.localAddresses?.() ?? localIPv4();
    const wanted = new Map<string, { port: GatewayPortPlan }>();
    for (const g of plans)
      for (const port of g.ports) {
        const addresses =
          port.addresses.length === 0 ? ["0.0.0.0"] : port.addresses.filter((a) => local.has(a));
        if (addresses.length === 0)
          this.#log.warn({ gateway: g.key, port: port.port }, "no address of spec.addresses is on this node");
        for (const a of addresses) wanted.set(`${a}:${port.port}`, { port });
      }
    for (const [bind, b] of this.#listeners) {
      const w = wanted.get(bind);
      if (w && w.port.key === b.portKey && w.port.protocol === b.protocol) continue;
      this.#listeners.delete(bind);
      await b.listener.close();
    }
    for (const [bind, { port }] of wanted) {
      if (this.#listeners.has(bind)) continue;
      const listener = this.#listener(bind, port);
      try {
        await listener.listen();
        this.#listeners.set(bind, { listener, portKey: port.key, protocol: port.protocol });
        this.#log.info({ listener: port.key, address: bind, protocol: port.protocol }, "gateway listening");
      } catch (err) {
        this.#log.error({ err, listener: port.key, address: bind }, (err as Error).message);
      }
    }
  }

  #listener(bind: string, port: GatewayPortPlan): GatewayListener {
    const key = port.key;
    return new GatewayListener({
      key,
      protocol: port.protocol,
      address: bind.slice(0, bind.lastIndexOf(":")),
      port: port.port,
      log: this.#log,
      sni: (servername) => {
        const ref = this.#current.get(key);
        return ref && selectCertificate(servername, ref.port.listeners, (c) => this.#certs.get(c))?.context;
      },
      onConnection: (socket, protocol) => this.#accept(key, socket, protocol),
    });
  }

  #refreshDefaults(): void {
    for (const b of this.#listeners.values()) {
      const ref = this.#current.get(b.portKey);
      if (ref)
        b.listener.setDefaultCertificate(
          selectCertificate(undefined, ref.port.listeners, (c) => this.#certs.get(c))?.pem,
        );
    }
  }

  #accept(key: string, socket: Socket, protocol: "http1" | "http2"): void {
    const ref = this.#current.get(key);
    const view = this.#view;
    if (!ref || !view) return void socket.destroy();
    socket.on("error", () => {}); // a client reset is the request's to report, not an uncaught error
    this.#server.accept(socket, protocol, {
      view: () => this.#view ?? view,
      source: gatewaySource(ref.gateway, socket.remoteAddress ?? "0.0.0.0", this.#deps.nodeName),
      servicePort: this.#frontend(ref.port, ref.gateway),
      socket,
    });
  }

  /** The Gateway port as the layers see the "service port the client connected to". */
  #frontend(port: GatewayPortPlan, g: GatewayPlan): ServicePortInfo {
    let sp = this.#frontends.get(port);
    if (!sp) {
      sp = Object.freeze({
        key: port.key,
        service: Object.freeze({
          name: g.name,
          namespace: g.namespace,
          host: `${g.name}.${g.namespace}`,
          loadBalancer: undefined,
          balancerOptions: {},
          hashPolicy: undefined,
          connectTimeoutMs: undefined,
          outlier: {},
        }),
        port: port.port,
        protocol: "http",
        endpoints: [],
        endpointKeys: [],
      });
      this.#frontends.set(port, sp);
    }
    return sp;
  }
}

/** The Gateway as the source workload of its requests: its identity, the external client's address. */
export function gatewaySource(g: GatewayPlan, clientAddress: string, node: string): WorkloadInfo {
  const address = clientAddress.startsWith("::ffff:") ? clientAddress.slice(7) : clientAddress;
  const labels = { "gateway.networking.k8s.io/gateway-name": g.name };
  return {
    uid: `gateway/${g.key}`,
    name: g.name,
    namespace: g.namespace,
    address,
    serviceAccount: g.serviceAccount,
    spiffeId: g.spiffeId,
    labels,
    node,
    netns: undefined,
    cgroup: undefined,
    entry: {
      apiVersion: "nodemesh.io/v1alpha1",
      kind: "WorkloadEntry",
      metadata: { name: g.name, namespace: g.namespace },
      spec: { address, serviceAccount: g.serviceAccount, labels, node },
    },
  };
}

function localIPv4(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === "IPv4") out.add(a.address);
  return out;
}

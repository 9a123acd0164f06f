// Outbound: a connection captured from a local workload → `planOutbound` (pure: source, original
// destination, service port, protocol, endpoints) → one of three carriers: opaque TCP over an HBONE
// tunnel (this file), the per-request HTTP path (`agent/http/`), or protocol detection first. For TCP, a
// failed attempt ejects (outlier detection) and moves to the next endpoint, at most `connectAttempts`
// times with exponential backoff; when no endpoint is left the client socket is reset (RST), never left
// hanging.
import { setTimeout as sleep } from "node:timers/promises";
import type { ClientHttp2Stream } from "node:http2";
import type { Server, Socket } from "node:net";
import type { AgentSettings } from "../config.ts";
import type { Datapath } from "../datapath/datapath.ts";
import { TunnelError } from "../errors.ts";
import type { PickContext } from "../balance/balancer.ts";
import { candidates, type DestinationState, type EndpointStates } from "../balance/endpoint-state.ts";
import { hash32 } from "../balance/hash.ts";
import type { OutlierSettings } from "../health/outlier.ts";
import type { IdentityManager } from "../identity/manager.ts";
import type { Logger } from "../log.ts";
import type { MeshView, WorkloadInfo } from "../state/view.ts";
import { isHttp } from "../state/protocol.ts";
import { unknownLabels, type AgentMetrics, type ConnRecord, type TcpLabels } from "../telemetry/metrics.ts";
import { detectProtocol, type Detected } from "./detect.ts";
import { pipeBoth } from "./pipe.ts";
import { planOutbound, type DirectEgressPlan, type ForwardPlan } from "./plan.ts";
import type { HboneConnector } from "./tunnel/hbone.ts";

/** Where HTTP connections go once known (the agent's DownstreamServer). */
export interface HttpCarrier {
  accept(socket: Socket, protocol: "http1" | "http2", plan: ForwardPlan): void;
}

export interface OutboundDeps {
  view(): MeshView;
  readonly datapath: Datapath;
  readonly hbone: HboneConnector;
  readonly endpoints: EndpointStates;
  readonly identities: IdentityManager;
  readonly metrics: AgentMetrics;
  readonly settings: AgentSettings;
  readonly defaultOutlier: OutlierSettings;
  readonly log: Logger;
  readonly http: HttpCarrier;
  /** Counts a detection outcome (nodemesh_protocol_detection_total). */
  readonly detected: (result: Detected | "declared", service: string) => void;
  /** Carries an ExternalService connection out of this agent (agent/egress/direct.ts). */
  readonly egress?: (socket: Socket, plan: DirectEgressPlan) => void;
}

/** A declared-HTTP client that sends nothing for this long is handed to the HTTP/1.1 server's timeouts. */
const DECLARED_HTTP_WAIT_MS = 10_000;

export class OutboundProxy {
  readonly #deps: OutboundDeps;

  constructor(deps: OutboundDeps) {
    this.#deps = deps;
  }

  /** Starts handling connections captured for `workload` (by uid: labels are re-read per connection). */
  attach(uid: string, server: Server): void {
    server.on("connection", (socket: Socket) => void this.#handle(uid, socket));
  }

  async #handle(uid: string, socket: Socket): Promise<void> {
    socket.pause();
    socket.setNoDelay(true); // request/response traffic: never hold a reply back for Nagle
    socket.on("error", () => {});
    const dst = this.#deps.datapath.originalDestination(socket);
    const plan = planOutbound(this.#deps.view(), uid, dst, this.#deps.settings);
    if (plan.kind === "fail") {
      const rec = this.#record(this.#deps.view().localWorkload(uid), socket, dst);
      if (plan.service) rec.labels.destination_service = plan.service;
      return this.#fail(socket, rec, plan.flag, plan.reason);
    }
    if (plan.kind === "egress") {
      if (this.#deps.egress) return this.#deps.egress(socket, plan);
      const rec = this.#record(plan.source, socket, dst);
      return this.#fail(socket, rec, "NoRoute", "direct egress is not available in this agent");
    }
    if (isHttp(plan.protocol)) {
      // Declared HTTP: the client speaks first, so this only tells HTTP/1.1 from h2c prior knowledge
      // (either may arrive on any HTTP port, as with Istio); an HTTP port never falls back to TCP.
      this.#deps.detected("declared", plan.serviceHost);
      const d = await detectProtocol(socket, DECLARED_HTTP_WAIT_MS);
      if (d.protocol === "closed" || d.endedWith) return void socket.destroy();
      return this.#deps.http.accept(socket, d.protocol === "http2" ? "http2" : "http1", plan);
    }
    if (plan.protocol === "detect") {
      const d = await detectProtocol(socket, this.#deps.settings.protocolDetectionTimeoutMs);
      this.#deps.detected(d.protocol, plan.serviceHost);
      if (d.protocol === "closed") return void socket.destroy();
      if ((d.protocol === "http1" || d.protocol === "http2") && !socket.destroyed) {
        return this.#deps.http.accept(socket, d.protocol, plan);
      }
      return this.#tcp(socket, plan, dst!, d.endedWith, true);
    }
    return this.#tcp(socket, plan, dst!);
  }

  /** Carries an upgraded HTTP/1.1 connection (WebSocket) as TCP; `head` is the request as it came. */
  carryUpgrade(socket: Socket, plan: ForwardPlan, head: Buffer): void {
    const vip = plan.servicePort?.service.host ?? "";
    void this.#tcp(socket, plan, { address: vip, port: plan.servicePort?.port ?? 0 }, head, false);
  }

  async #tcp(
    socket: Socket,
    plan: ForwardPlan,
    dst: { address: string; port: number },
    head?: Buffer,
    ended = false,
  ): Promise<void> {
    const rec = this.#record(plan.source, socket, dst);
    const labels = rec.labels;
    labels.destination_service = plan.serviceHost;
    const src = plan.source;
    const state = plan.servicePort ? this.#state(plan) : undefined;
    const timeoutMs = plan.connectTimeoutMs;
    let svid = this.#deps.identities.get(src.spiffeId);
    if (!svid) {
      try {
        svid = await withTimeout(this.#deps.identities.ready(src.spiffeId), timeoutMs);
      } catch (err) {
        return this.#fail(
          socket,
          rec,
          "IdentityError",
          `no certificate for ${src.spiffeId}: ${(err as Error).message}`,
        );
      }
    }
    const keys = plan.servicePort?.endpointKeys ?? plan.endpoints.map((e) => e.key);
    const tried = new Set<string>();
    let lastError: TunnelError | undefined;
    for (let attempt = 0; attempt < this.#deps.settings.connectAttempts; attempt++) {
      if (socket.destroyed)
        return this.#fail(socket, rec, "DownstreamConnectionTermination", "client went away");
      const usable = candidates(keys, tried, (k) => state?.outlier.isEjected(k) ?? false);
      const key = state ? state.balancer.pick(usable, this.#pickContext(plan, state, src)) : usable[0];
      const ep = key === undefined ? undefined : plan.endpoints.find((e) => e.key === key);
      if (!ep) break;
      tried.add(ep.key);
      if (attempt > 0) await sleep(this.#deps.settings.retryBackoffMs * 2 ** (attempt - 1));
      setDestination(labels, ep.workload);
      rec.hboneAddr = `${ep.address}:${this.#deps.settings.hbonePort}`;
      this.#deps.endpoints.active.inc(ep.key);
      try {
        const stream = await this.#deps.hbone.connect({
          source: svid,
          bundle: this.#deps.identities.bundle,
          address: ep.address,
          hbonePort: this.#deps.settings.hbonePort,
          expectedIdentity: ep.workload.spiffeId,
          authority: `${ep.address}:${ep.port}`,
          headers: { forwarded: forwarded(src, plan) },
          sourceAddress: src.address,
          timeoutMs,
        });
        state?.outlier.success(ep.key);
        if (head && ended)
          stream.end(head); // the client said this much and half-closed during detection
        else if (head) stream.write(head);
        return this.#pipe(socket, stream, rec, ep.key);
      } catch (err) {
        this.#deps.endpoints.active.dec(ep.key);
        lastError =
          err instanceof TunnelError ? err : new TunnelError("ConnectionFailure", String(err), true);
        if (lastError.endpointFault && state?.outlier.failure(ep.key, keys.length)) {
          this.#deps.log.warn({ endpoint: ep.key, service: labels.destination_service }, "endpoint ejected");
        }
        if (!lastError.endpointFault) break; // policy denial: another endpoint would say the same
      }
    }
    this.#fail(
      socket,
      rec,
      lastError?.flag ?? "NoHealthyUpstream",
      lastError?.message ?? "every endpoint is ejected or was tried",
    );
  }

  #record(
    src: WorkloadInfo | undefined,
    socket: Socket,
    dst: { address: string; port: number } | undefined,
  ): ConnRecord {
    return this.#deps.metrics.record(
      "outbound",
      sourceLabels(src),
      src?.address ?? socket.remoteAddress ?? "",
      dst ? `${dst.address}:${dst.port}` : "",
    );
  }

  #pipe(socket: Socket, stream: ClientHttp2Stream, rec: ConnRecord, key: string): void {
    this.#deps.metrics.opened(rec);
    if (socket.destroyed) {
      // The client left while the tunnel was opening: 'close' already fired, so the pipe would never end.
      stream.close();
      this.#deps.endpoints.active.dec(key);
      rec.reason = "client closed before the tunnel opened";
      return this.#deps.metrics.finish(rec, false);
    }
    pipeBoth(socket, stream, (err) => {
      this.#deps.endpoints.active.dec(key);
      rec.received = socket.bytesRead;
      rec.sent = socket.bytesWritten;
      if (err) rec.reason = err.message;
      this.#deps.metrics.finish(rec, false);
    });
  }

  #fail(socket: Socket, rec: ConnRecord, flag: string, reason: string): void {
    rec.labels.response_flags = flag;
    rec.reason = reason;
    socket.resetAndDestroy();
    this.#deps.metrics.finish(rec, true);
  }

  /** Opaque TCP can hash only on the source address (useSourceIp); other hash keys need a request. */
  #pickContext(plan: ForwardPlan, state: DestinationState, src: WorkloadInfo): PickContext {
    const policy = plan.servicePort?.service.hashPolicy;
    const hash = policy?.useSourceIp ? hash32(src.address) : undefined;
    return hash === undefined ? { endpoints: state.endpoints } : { hash, endpoints: state.endpoints };
  }

  #state(plan: ForwardPlan): DestinationState {
    const sp = plan.servicePort!;
    // Owner: the port's endpoint list, not the port itself, which the HTTP path owns (another default
    // balancer for the same port key when detection sends some connections each way).
    return this.#deps.endpoints.stateOf(
      sp.endpointKeys,
      sp.key,
      () => ({
        loadBalancer: sp.service.loadBalancer ?? "ROUND_ROBIN",
        balancerOptions: sp.service.balancerOptions,
        outlier: { ...this.#deps.defaultOutlier, ...sp.service.outlier },
      }),
      sp.endpointKeys,
    );
  }
}

function sourceLabels(src: WorkloadInfo | undefined): TcpLabels {
  const labels = unknownLabels("source");
  if (src) {
    labels.source_workload = src.name;
    labels.source_workload_namespace = src.namespace;
    labels.source_principal = src.spiffeId;
  }
  return labels;
}

function setDestination(labels: TcpLabels, w: WorkloadInfo): void {
  labels.destination_workload = w.name;
  labels.destination_workload_namespace = w.namespace;
  labels.destination_principal = w.spiffeId;
}

function forwarded(src: WorkloadInfo, plan: ForwardPlan): string {
  const host = plan.servicePort ? `;host="${plan.serviceHost}"` : "";
  return `for="${src.address}"${host}`;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e instanceof Error ? e : new Error(String(e)))),
    );
  });
}

// Outbound: a connection captured from a local workload → its original destination → a meshed service
// port (balanced over its endpoints) or a workload address → an HBONE tunnel to the chosen endpoint's
// 15008, presenting the source workload's SVID. A failed attempt ejects (outlier detection) and moves to
// the next endpoint, at most `connectAttempts` times with exponential backoff; when no endpoint is left the
// client socket is reset (RST), never left hanging.
//
// `planAttempt` is the pure decision (which endpoint, which identities, which tunnel); `#handle` moves bytes.
import { setTimeout as sleep } from "node:timers/promises";
import type { ClientHttp2Stream } from "node:http2";
import type { Server, Socket } from "node:net";
import type { AgentSettings } from "../config.ts";
import type { Datapath } from "../datapath/datapath.ts";
import { TunnelError } from "../errors.ts";
import { ActiveConnections, createBalancer, type Balancer } from "../balance/balancer.ts";
import { OutlierDetector, type OutlierSettings } from "../health/outlier.ts";
import type { IdentityManager } from "../identity/manager.ts";
import type { Logger } from "../log.ts";
import type { EndpointInfo, MeshView, ServicePortInfo, Target, WorkloadInfo } from "../state/view.ts";
import { unknownLabels, type AgentMetrics, type ConnRecord, type TcpLabels } from "../telemetry/metrics.ts";
import { pipeBoth } from "./pipe.ts";
import type { HbonePool } from "./pool.ts";

export interface OutboundDeps {
  view(): MeshView;
  readonly datapath: Datapath;
  readonly pool: HbonePool;
  readonly identities: IdentityManager;
  readonly metrics: AgentMetrics;
  readonly settings: AgentSettings;
  readonly defaultOutlier: OutlierSettings;
  readonly log: Logger;
}

interface ServiceState {
  readonly balancer: Balancer;
  readonly outlier: OutlierDetector;
  readonly signature: string;
  endpoints: readonly string[];
}

/** Which endpoints may be tried next: not yet tried, not ejected (all not-tried ones if all are ejected). */
export function candidates(
  endpoints: readonly EndpointInfo[],
  tried: ReadonlySet<string>,
  isEjected: (key: string) => boolean,
): string[] {
  const fresh = endpoints.filter((e) => !tried.has(e.key)).map((e) => e.key);
  const healthy = fresh.filter((k) => !isEjected(k));
  // Panic mode (Envoy): when every remaining endpoint is ejected, trying one beats failing outright,
  // but only on the first attempt so that a dead service still fails fast.
  return healthy.length > 0 || tried.size > 0 ? healthy : fresh;
}

export class OutboundProxy {
  readonly #deps: OutboundDeps;
  readonly #services = new Map<string, ServiceState>();
  /** ServicePortInfo objects are immutable per snapshot: resolve their state once, not per connection. */
  readonly #stateOf = new WeakMap<ServicePortInfo, ServiceState>();
  readonly active = new ActiveConnections();

  constructor(deps: OutboundDeps) {
    this.#deps = deps;
  }

  /** Starts handling connections captured for `workload` (by uid: labels are re-read per connection). */
  attach(uid: string, server: Server): void {
    server.on("connection", (socket: Socket) => void this.#handle(uid, socket));
  }

  /** Drops balancer/outlier state of service ports that left the config (called per snapshot). */
  retain(view: MeshView): void {
    const keep = new Set<string>();
    for (const s of view.services()) keep.add(`${s.namespace}/${s.name}`);
    for (const key of this.#services.keys()) {
      if (!keep.has(key.slice(0, key.lastIndexOf(":")))) this.#services.delete(key);
    }
  }

  /** Per service port: balancer kind and the endpoints currently ejected (for the config dump). */
  dump(): { servicePort: string; loadBalancer: string; endpoints: number; ejected: string[] }[] {
    return [...this.#services].map(([servicePort, st]) => ({
      servicePort,
      loadBalancer: st.balancer.kind,
      endpoints: st.endpoints.length,
      ejected: st.endpoints.filter((k) => st.outlier.isEjected(k)),
    }));
  }

  async #handle(uid: string, socket: Socket): Promise<void> {
    socket.pause();
    socket.setNoDelay(true); // request/response traffic: never hold a reply back for Nagle
    socket.on("error", () => {});
    const view = this.#deps.view();
    const src = view.localWorkload(uid);
    const dst = this.#deps.datapath.originalDestination(socket);
    const target = dst && view.resolve(dst.address, dst.port);
    const labels = sourceLabels(src);
    const rec = this.#deps.metrics.record(
      "outbound",
      labels,
      src?.address ?? socket.remoteAddress ?? "",
      dst ? `${dst.address}:${dst.port}` : "",
    );
    if (!src || !target) {
      return this.#fail(
        socket,
        rec,
        "NoRoute",
        src ? "original destination is not meshed" : `workload ${uid} is not local`,
      );
    }
    const endpoints = target.kind === "service" ? target.servicePort.endpoints : [target.endpoint];
    if (target.kind === "service") labels.destination_service = target.servicePort.service.host;
    if (endpoints.length === 0)
      return this.#fail(socket, rec, "NoHealthyUpstream", "service has no endpoints");

    const state = target.kind === "service" ? this.#state(target.servicePort) : undefined;
    const timeoutMs =
      (target.kind === "service" && target.servicePort.service.connectTimeoutMs) ||
      this.#deps.settings.connectTimeoutMs;
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
    const tried = new Set<string>();
    let lastError: TunnelError | undefined;
    for (let attempt = 0; attempt < this.#deps.settings.connectAttempts; attempt++) {
      if (socket.destroyed)
        return this.#fail(socket, rec, "DownstreamConnectionTermination", "client went away");
      const keys = candidates(endpoints, tried, (k) => state?.outlier.isEjected(k) ?? false);
      const key = state ? state.balancer.pick(keys) : keys[0];
      const ep = key === undefined ? undefined : endpoints.find((e) => e.key === key);
      if (!ep) break;
      tried.add(ep.key);
      if (attempt > 0) await sleep(this.#deps.settings.retryBackoffMs * 2 ** (attempt - 1));
      setDestination(labels, ep.workload);
      rec.hboneAddr = `${ep.address}:${this.#deps.settings.hbonePort}`;
      this.active.inc(ep.key);
      try {
        const stream = await this.#deps.pool.connect({
          source: svid,
          bundle: this.#deps.identities.bundle,
          address: ep.address,
          hbonePort: this.#deps.settings.hbonePort,
          expectedIdentity: ep.workload.spiffeId,
          authority: `${ep.address}:${ep.port}`,
          headers: { forwarded: forwarded(src, target) },
          timeoutMs,
        });
        state?.outlier.success(ep.key);
        return this.#pipe(socket, stream, rec, ep.key);
      } catch (err) {
        this.active.dec(ep.key);
        lastError =
          err instanceof TunnelError ? err : new TunnelError("ConnectionFailure", String(err), true);
        if (lastError.endpointFault && state?.outlier.failure(ep.key, endpoints.length)) {
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

  #pipe(socket: Socket, stream: ClientHttp2Stream, rec: ConnRecord, key: string): void {
    this.#deps.metrics.opened(rec);
    if (socket.destroyed) {
      // The client left while the tunnel was opening: 'close' already fired, so the pipe would never end.
      stream.close();
      this.active.dec(key);
      rec.reason = "client closed before the tunnel opened";
      return this.#deps.metrics.finish(rec, false);
    }
    pipeBoth(socket, stream, (err) => {
      this.active.dec(key);
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

  #state(sp: ServicePortInfo): ServiceState {
    const cached = this.#stateOf.get(sp);
    if (cached) return cached;
    const state = this.#resolveState(sp);
    this.#stateOf.set(sp, state);
    return state;
  }

  #resolveState(sp: ServicePortInfo): ServiceState {
    const outlier = { ...this.#deps.defaultOutlier, ...sp.service.outlier };
    const signature = `${sp.service.loadBalancer}|${JSON.stringify(outlier)}`;
    const have = this.#services.get(sp.key);
    const endpoints = sp.endpoints.map((e) => e.key);
    if (have && have.signature === signature) {
      have.endpoints = endpoints;
      return have;
    }
    const state: ServiceState = {
      balancer: createBalancer(sp.service.loadBalancer, this.active),
      outlier: new OutlierDetector(outlier),
      signature,
      endpoints,
    };
    this.#services.set(sp.key, state);
    return state;
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

function forwarded(src: WorkloadInfo, target: Target): string {
  const host = target.kind === "service" ? `;host="${target.servicePort.service.host}"` : "";
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

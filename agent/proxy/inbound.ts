// Inbound HBONE for one local workload (its 15008 listener, served by tunnel/hbone-server.ts). A stream
// with any other method than CONNECT is one HTTP request (`agent/http/inbound.ts`). Per CONNECT stream
// (ztunnel `serve_connect`): target IP not this workload → 400; peer node, identity and `for=` address
// not agreeing (tunnel/source-check.ts) → 401 IdentityError; policy denial (on the proven client
// address) → 401; application unreachable → 503; else 200 and a two-way pipe to the application at
// <address>:<port>. Live connections are tracked so a later policy change can cut them.
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { Server, Socket } from "node:net";
import type { Logger } from "../log.ts";
import { evaluateAuthz, parsePrincipal, type AuthzRequest } from "../policy/authz.ts";
import { HostPeerNodes, plainIpv4, type PeerNodeResolver } from "../state/peer-nodes.ts";
import { parseHostPort } from "./tunnel/host-port.ts";
import type { MeshView, WorkloadInfo } from "../state/view.ts";
import type { AgentMetrics, ConnRecord, TcpLabels } from "../telemetry/metrics.ts";
import type { Svid } from "../tls/svid.ts";
import type { ConnectionManager, TrackedConnection } from "./connections.ts";
import { pipeBoth } from "./pipe.ts";
import { HboneServer } from "./tunnel/hbone-server.ts";
import {
  authenticateSource,
  parseForwarded,
  sourceFacts,
  type SourceRefusal,
} from "./tunnel/source-check.ts";
import { TlsFailureReporter } from "./tunnel/tls-failures.ts";

export { parseForwarded } from "./tunnel/source-check.ts";

/** Serves one per-request stream (the agent's HTTP inbound); `sourceAddress` is the proven client pod's. */
export type RequestStreamHandler = (
  uid: string,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  principal: string | undefined,
  sourceAddress: string,
) => void;

export interface InboundDeps {
  view(): MeshView;
  readonly metrics: AgentMetrics;
  readonly connections: ConnectionManager;
  readonly log: Logger;
  readonly appConnectTimeoutMs: number;
  /**
   * A session that carried no frame for this long is closed (0: never). Peers PING their sessions every
   * few seconds, so only a peer that vanished without a FIN (power loss, a partition) gets here.
   */
  readonly sessionIdleMs: number;
  /** Opens the connection to the local application (the datapath does it from inside the pod). */
  /** `source`: the client pod's proven address, for the application to see as its peer. */
  connectApp(uid: string, address: string, port: number, source?: string): Promise<Socket>;
  readonly onRequest: RequestStreamHandler;
  /** Names the node a tunnel comes from; default: this host's addresses and routes. */
  readonly peerNodes?: PeerNodeResolver;
}

// One per agent (per deps object): the book of node addresses and the log rate limit are node-wide.
const shared = new WeakMap<InboundDeps, { nodes: PeerNodeResolver; tls: TlsFailureReporter }>();

function sharedOf(deps: InboundDeps): { nodes: PeerNodeResolver; tls: TlsFailureReporter } {
  let s = shared.get(deps);
  if (!s) {
    const tls = new TlsFailureReporter({
      log: deps.log,
      count: (reason) => deps.metrics.security.tlsHandshakeFailed(reason),
    });
    shared.set(deps, (s = { nodes: deps.peerNodes ?? new HostPeerNodes(), tls }));
  }
  return s;
}

export class InboundTunnel {
  readonly uid: string;
  readonly #deps: InboundDeps;
  readonly #server: HboneServer;
  readonly #peerNodes: PeerNodeResolver;

  constructor(uid: string, listener: Server, deps: InboundDeps) {
    this.uid = uid;
    this.#deps = deps;
    const { nodes, tls } = sharedOf(deps);
    this.#peerNodes = nodes;
    this.#server = new HboneServer(listener, {
      uid,
      log: deps.log,
      sessionIdleMs: deps.sessionIdleMs,
      tlsFailures: tls,
      onStream: (stream, headers, principal) => this.#onStream(stream, headers, principal),
    });
  }

  setCredentials(svid: Svid, bundle: readonly string[]): void {
    this.#server.setCredentials(svid, bundle);
  }

  close(): void {
    this.#server.close();
  }

  #onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, principal: string | undefined): void {
    const view = this.#deps.view();
    const tunnelSource = plainIpv4(stream.session?.socket?.remoteAddress ?? "");
    const source = authenticateSource(view, this.#peerNodes, sourceFacts(headers, principal, tunnelSource));
    if (headers[":method"] !== "CONNECT") {
      if (!source.ok) return this.#refuseRequest(stream, headers, principal, tunnelSource, source);
      return this.#deps.onRequest(this.uid, stream, headers, principal, source.address);
    }
    const w = view.localWorkload(this.uid);
    const labels = this.#labels(w, principal, headers, source.ok ? source.workload : undefined);
    const target = parseHostPort(headers[":authority"]);
    // The access log's source is the client pod once proven; until then the tunnel's own address.
    const sourceIp = source.ok ? source.address : tunnelSource;
    const rec = this.#deps.metrics.record("inbound", labels, sourceIp, headers[":authority"] ?? "");
    const refuse = (status: number, flag: string, reason: string) => {
      labels.response_flags = flag;
      rec.reason = reason;
      if (!stream.destroyed) stream.respond({ ":status": status }, { endStream: true });
      this.#deps.metrics.finish(rec, true);
    };
    if (!w) return refuse(503, "NoHealthyUpstream", `workload ${this.uid} is no longer on this node`);
    if (!target || target.address !== w.address) {
      return refuse(
        400,
        "IPMismatch",
        `CONNECT target ${headers[":authority"] ?? "(none)"} is not ${w.address}`,
      );
    }
    if (!source.ok) {
      this.#deps.metrics.security.sourceRefused(source.reason);
      return refuse(401, "IdentityError", `unauthenticated source (${source.reason}): ${source.message}`);
    }
    const request: AuthzRequest = {
      principal,
      sourceIp,
      destinationIp: target.address,
      destinationPort: target.port,
    };
    const decision = evaluateAuthz(view.authorizationPoliciesFor(this.uid), request);
    if (!decision.allowed) return refuse(401, "AuthorizationPolicyDenied", decision.reason);

    // A stream reset in the same read as its HEADERS (rapid reset) is gone by the next turn: it must not
    // cost a connection to the application.
    // A pod client is delivered from its own address, as without the mesh; a Gateway's external client
    // is not (the Gateway is the peer, as with Istio's gateways; `forwarded` carries the client).
    const deliverFrom = source.workload ? source.address : undefined;
    setImmediate(() => {
      if (stream.destroyed || stream.closed) return void this.#deps.metrics.finish(rec, true);
      this.#connect(stream, w, target, rec, labels, request, refuse, deliverFrom);
    });
  }

  /** A per-request stream whose source is not proven: 401 before the HTTP layer sees it, logged once. */
  #refuseRequest(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    principal: string | undefined,
    tunnelSource: string,
    source: { reason: SourceRefusal; message: string },
  ): void {
    this.#deps.metrics.security.sourceRefused(source.reason);
    const labels = this.#labels(this.#deps.view().localWorkload(this.uid), principal, headers, undefined);
    labels.response_flags = "IdentityError";
    const rec = this.#deps.metrics.record("inbound", labels, tunnelSource, headers[":authority"] ?? "");
    rec.reason = `unauthenticated source (${source.reason}): ${source.message}`;
    if (!stream.destroyed) stream.respond({ ":status": 401 }, { endStream: true });
    this.#deps.metrics.finish(rec, true);
  }

  #connect(
    stream: ServerHttp2Stream,
    w: WorkloadInfo,
    target: { address: string; port: number },
    rec: ConnRecord,
    labels: TcpLabels,
    request: AuthzRequest,
    refuse: (status: number, flag: string, reason: string) => void,
    deliverFrom: string | undefined,
  ): void {
    this.#deps.connectApp(this.uid, w.address, target.port, deliverFrom).then(
      (app) => this.#deliver(stream, app, rec, labels, request, target, refuse),
      (err: Error) =>
        refuse(503, "ConnectionFailure", `cannot open a socket to the application: ${err.message}`),
    );
  }

  #deliver(
    stream: ServerHttp2Stream,
    app: Socket,
    rec: ConnRecord,
    labels: TcpLabels,
    request: AuthzRequest,
    target: { address: string; port: number },
    refuse: (status: number, flag: string, reason: string) => void,
  ): void {
    const timer = setTimeout(() => app.destroy(new Error("timed out")), this.#deps.appConnectTimeoutMs);
    app.once("error", (err) => {
      clearTimeout(timer);
      if (!app.connecting && rec.opened) return; // handled by the pipe
      refuse(
        503,
        "ConnectionFailure",
        `application ${target.address}:${target.port} unreachable: ${err.message}`,
      );
    });
    app.once("connect", () => {
      clearTimeout(timer);
      if (stream.destroyed) return void app.destroy();
      stream.respond({ ":status": 200 }, { endStream: false });
      this.#deps.metrics.opened(rec);
      const tracked: TrackedConnection = {
        uid: this.uid,
        request,
        close: (reason) => {
          labels.response_flags = "AuthorizationPolicyDenied";
          rec.reason = reason;
          abort(new Error(reason));
        },
      };
      this.#deps.connections.add(tracked);
      const abort = pipeBoth(stream, app, (err) => {
        this.#deps.connections.remove(tracked);
        rec.received = app.bytesWritten;
        rec.sent = app.bytesRead;
        if (err && !rec.reason) rec.reason = err.message;
        this.#deps.metrics.finish(rec, false);
      });
    });
  }

  #labels(
    w: WorkloadInfo | undefined,
    principal: string | undefined,
    headers: IncomingHttpHeaders,
    src: WorkloadInfo | undefined,
  ): TcpLabels {
    return {
      reporter: "destination",
      source_workload: src?.name ?? "unknown",
      source_workload_namespace: src?.namespace ?? (parsePrincipal(principal).namespace || "unknown"),
      source_principal: principal ?? "unknown",
      destination_service: parseForwarded(headers["forwarded"]).host ?? "unknown",
      destination_workload: w?.name ?? "unknown",
      destination_workload_namespace: w?.namespace ?? "unknown",
      destination_principal: w?.spiffeId ?? "unknown",
      connection_security_policy: "mutual_tls",
      response_flags: "-",
    };
  }
}

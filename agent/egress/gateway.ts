// The egress gateway: the 15008 listener of a workload that an ExternalService names as its
// `egressGateway`, served by this class instead of the workload's InboundTunnel. Sources reach it as they
// reach any workload (HBONE: mTLS with the gateway's SVID, CONNECT for TCP, one HTTP/2 stream per request
// for HTTP); it learns the external service from `forwarded: host=` and the target port, authorizes the
// caller with the AuthorizationPolicies that select the gateway workload (DENY before ALLOW, source
// principals; at L7 also paths, methods, hosts), then originates the outside connection from the gateway
// pod's namespace (agent/egress/originate.ts), with TLS when the service asks for it.
//
// Per CONNECT stream: not this gateway's address → 400; no service egressing here → 404; denied → 401;
// outside unreachable → 503; else 200 and a two-way pipe. Live connections are tracked so a policy
// change cuts them, as for inbound tunnels.
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { Server, Socket } from "node:net";
import type { AgentSettings } from "../config.ts";
import type { Logger } from "../log.ts";
import { evaluateAuthz, type AuthzRequest } from "../policy/authz.ts";
import type { ConnectionManager, TrackedConnection } from "../proxy/connections.ts";
import { parseHostPort } from "../proxy/tunnel/host-port.ts";
import { pipeBoth } from "../proxy/pipe.ts";
import { HboneServer } from "../proxy/tunnel/hbone-server.ts";
import type { MeshView } from "../state/view.ts";
import type { AgentMetrics, ConnRecord } from "../telemetry/metrics.ts";
import type { RequestTelemetry } from "../telemetry/http.ts";
import type { Svid } from "../tls/svid.ts";
import { forwardRequest, gatewayLabels, identify } from "./gateway-http.ts";
import { EgressError, originate, type OpenSocket } from "./originate.ts";

export interface EgressGatewayDeps {
  view(): MeshView;
  readonly metrics: AgentMetrics;
  readonly requests: RequestTelemetry;
  readonly connections: ConnectionManager;
  readonly log: Logger;
  readonly open: OpenSocket;
  readonly settings: Pick<AgentSettings, "connectTimeoutMs" | "connectAttempts">;
  /** As the inbound tunnel's (agent/proxy/tunnel/hbone-server.ts). */
  readonly sessionIdleMs: number;
}

export class EgressGateway {
  readonly uid: string;
  readonly #deps: EgressGatewayDeps;
  readonly #server: HboneServer;

  constructor(uid: string, listener: Server, deps: EgressGatewayDeps) {
    this.uid = uid;
    this.#deps = deps;
    this.#server = new HboneServer(listener, {
      uid,
      log: deps.log,
      sessionIdleMs: deps.sessionIdleMs,
      onStream: (stream, headers, principal) => this.#onStream(stream, headers, principal),
    });
  }

  /** The gateway's SVID; sockets accepted before the first one wait, paused. */
  setCredentials(svid: Svid, bundle: readonly string[]): void {
    this.#server.setCredentials(svid, bundle);
  }

  close(): void {
    this.#server.close();
  }

  #onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, principal: string | undefined): void {
    const view = this.#deps.view();
    const peerIp = stream.session?.socket?.remoteAddress ?? "";
    const id = identify(view, this.uid, headers, principal, peerIp);
    if (headers[":method"] !== "CONNECT")
      return forwardRequest(this.#deps, this.uid, stream, headers, id, principal);
    const labels = gatewayLabels(id, principal);
    const rec = this.#deps.metrics.record("inbound", labels, id.sourceAddress, headers[":authority"] ?? "");
    const refuse = (status: number, flag: string, reason: string) => {
      labels.response_flags = flag;
      rec.reason = reason;
      if (!stream.destroyed) stream.respond({ ":status": status }, { endStream: true });
      this.#deps.metrics.finish(rec, true);
    };
    if (id.problem) return refuse(id.problem.status, id.problem.flag, id.problem.reason);
    const target = parseHostPort(headers[":authority"])!;
    const request: AuthzRequest = {
      principal: principal!,
      sourceIp: peerIp,
      destinationIp: target.address,
      destinationPort: target.port,
    };
    const decision = evaluateAuthz(view.authorizationPoliciesFor(this.uid), request);
    if (!decision.allowed) return refuse(401, "AuthorizationPolicyDenied", decision.reason);
    originate(this.#deps.open, this.uid, id.external!, {
      timeoutMs: this.#deps.settings.connectTimeoutMs,
      attempts: this.#deps.settings.connectAttempts,
    }).then(
      ({ socket, target: out }) => {
        rec.dstAddr = `${out.address}:${out.port}`;
        this.#pipe(stream, socket, rec, request);
      },
      (err: unknown) => {
        const e = err instanceof EgressError ? err : new EgressError("ConnectionFailure", String(err));
        refuse(503, e.flag, e.message);
      },
    );
  }

  #pipe(stream: ServerHttp2Stream, outside: Socket, rec: ConnRecord, request: AuthzRequest): void {
    if (stream.destroyed) return void outside.destroy();
    stream.respond({ ":status": 200 }, { endStream: false });
    this.#deps.metrics.opened(rec);
    const tracked: TrackedConnection = {
      uid: this.uid,
      request,
      close: (reason) => {
        rec.labels.response_flags = "AuthorizationPolicyDenied";
        rec.reason = reason;
        abort(new Error(reason));
      },
    };
    this.#deps.connections.add(tracked);
    const abort = pipeBoth(stream, outside, (err) => {
      this.#deps.connections.remove(tracked);
      rec.received = outside.bytesWritten;
      rec.sent = outside.bytesRead;
      if (err && !rec.reason) rec.reason = err.message;
      this.#deps.metrics.finish(rec, false);
    });
  }
}

// The egress gateway's per-request side (any method but CONNECT): who is calling and which external
// service the stream is for (shared with the CONNECT side), L7 authorization of the request against the
// gateway's policies, and the request sent on to the outside host as HTTP/1.1 (over TLS when the service
// originates it) with the answer streamed back. Reported as reporter="destination" request metrics and one
// access line, destination_service = the external host.
import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { Duplex } from "node:stream";
import { endToEnd, headerValue, TARGET_HEADER } from "../http/headers.ts";
import { FLAG_HEADER } from "../http/upstream.ts";
import { evaluateAuthz, normalizePath, parsePrincipal } from "../policy/authz.ts";
import { parseForwarded } from "../proxy/inbound.ts";
import { parseHostPort } from "../proxy/tunnel/host-port.ts";
import type { MeshView, WorkloadInfo } from "../state/view.ts";
import type { TcpLabels } from "../telemetry/metrics.ts";
import type { EgressGatewayDeps } from "./gateway.ts";
import { EgressError, originate } from "./originate.ts";
import type { ExternalPortInfo } from "./registry.ts";

// getBuiltinModule, not an ES import: see agent/http/app-client.ts.
const { request: h1request } = process.getBuiltinModule("node:http");

/** What the gateway knows of one stream before it decides. */
export interface StreamIdentity {
  readonly gateway: WorkloadInfo | undefined;
  /** The calling pod when the peer's certificate proves it. */
  readonly source: WorkloadInfo | undefined;
  readonly sourceAddress: string;
  readonly external: ExternalPortInfo | undefined;
  /** Set when the stream must be refused before policy: status, flag, reason. */
  readonly problem?: { readonly status: number; readonly flag: string; readonly reason: string };
}

export function identify(
  view: MeshView,
  uid: string,
  headers: IncomingHttpHeaders,
  principal: string | undefined,
  peerIp: string,
): StreamIdentity {
  const gateway = view.localWorkload(uid);
  const fwd = parseForwarded(headers["forwarded"]);
  const claimed = fwd.for ? view.workloadByAddress(fwd.for) : undefined;
  const source = claimed !== undefined && claimed.spiffeId === principal ? claimed : undefined;
  const base = { gateway, source, sourceAddress: source?.address ?? peerIp };
  const raw = headers[":method"] === "CONNECT" ? headers[":authority"] : headerValue(headers, TARGET_HEADER);
  const target = parseHostPort(raw);
  const external = fwd.host && target ? view.external.byHost(fwd.host, target.port) : undefined;
  const problem = (status: number, flag: string, reason: string) => ({
    ...base,
    external,
    problem: { status, flag, reason },
  });
  if (!gateway) return problem(503, "NoHealthyUpstream", `egress gateway ${uid} is no longer on this node`);
  if (!target || target.address !== gateway.address)
    return problem(400, "IPMismatch", `target ${raw || "(none)"} is not ${gateway.address}`);
  if (!principal) return problem(401, "IdentityError", "peer certificate has no SPIFFE ID");
  if (!external || external.gatewayUid !== uid)
    return problem(
      404,
      "NoRoute",
      `${fwd.host ?? "(no host)"}:${target.port} is no ExternalService that leaves through ${uid}`,
    );
  return { ...base, external };
}

/** The TCP labels of a CONNECT through the gateway (reporter="destination"). */
export function gatewayLabels(id: StreamIdentity, principal: string | undefined): TcpLabels {
  return {
    reporter: "destination",
    source_workload: id.source?.name ?? "unknown",
    source_workload_namespace: id.source?.namespace ?? (parsePrincipal(principal).namespace || "unknown"),
    source_principal: principal ?? "unknown",
    destination_service: id.external?.host ?? "unknown",
    destination_workload: id.gateway?.name ?? "unknown",
    destination_workload_namespace: id.gateway?.namespace ?? "unknown",
    destination_principal: id.gateway?.spiffeId ?? "unknown",
    connection_security_policy: "mutual_tls",
    response_flags: "-",
  };
}

/** One request through the gateway: refuse, authorize, send out, stream the answer back, report once. */
export function forwardRequest(
  deps: EgressGatewayDeps,
  uid: string,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  id: StreamIdentity,
  principal: string | undefined,
): void {
  const report = requestReport(deps, stream, headers, id, principal);
  const refuse = (status: number, flag: string, reason: string, policy?: string) => {
    report.set(status, flag, reason, policy);
    if (stream.destroyed || stream.headersSent) return;
    stream.respond({ ":status": status, "content-type": "text/plain; charset=utf-8", [FLAG_HEADER]: flag });
    stream.end(`${reason}\n`);
  };
  if (id.problem) return refuse(id.problem.status, id.problem.flag, id.problem.reason);
  const ext = id.external!;
  const method = headerValue(headers, ":method");
  const raw = headerValue(headers, ":path");
  const q = raw.indexOf("?");
  const path = normalizePath(raw) + (q >= 0 ? raw.slice(q) : "");
  const host = headerValue(headers, ":authority") || ext.host;
  const decision = evaluateAuthz(deps.view().authorizationPoliciesFor(uid), {
    principal: principal!,
    sourceIp: stream.session?.socket?.remoteAddress ?? "",
    destinationIp: id.gateway!.address,
    destinationPort: ext.port.number,
    http: { method, path, host, headers },
  });
  if (!decision.allowed)
    return refuse(
      403,
      "AuthorizationPolicyDenied",
      `RBAC: access denied (${decision.reason})`,
      decision.policy,
    );
  const out: OutgoingHttpHeaders = { ...endToEnd(headers), host };
  delete out["forwarded"]; // the mesh's own, never sent outside
  const req = h1request({
    method,
    path,
    headers: out,
    setHost: false,
    createConnection: (_o: unknown, cb: (err: Error | null, s: Duplex) => void) => {
      originate(deps.open, uid, ext, {
        timeoutMs: deps.settings.connectTimeoutMs,
        attempts: deps.settings.connectAttempts,
      }).then(
        (o) => {
          report.upstream(`${o.target.address}:${o.target.port}`);
          cb(null, o.socket);
        },
        (err: Error) => cb(err, undefined as unknown as Duplex),
      );
      return undefined;
    },
  });
  req.once("error", (err) =>
    refuse(
      503,
      err instanceof EgressError ? err.flag : "UpstreamConnectionFailure",
      `${ext.host}: ${err.message}`,
    ),
  );
  req.once("response", (res: IncomingMessage) => {
    report.set(res.statusCode ?? 502, "-");
    if (stream.destroyed) return void res.destroy();
    stream.respond({ ...endToEnd(res.headers), ":status": res.statusCode ?? 502 });
    res.on("data", (c: Buffer) => report.responseBytes(c.length));
    res.pipe(stream);
  });
  stream.once("close", () => req.destroy()); // the caller left (or the answer is done): free the socket
  if (stream.endAfterHeaders) req.end();
  else {
    stream.on("data", (c: Buffer) => report.requestBytes(c.length));
    stream.pipe(req);
  }
}

/** The destination reporter's record of one gateway request, finished when the stream closes. */
function requestReport(
  deps: EgressGatewayDeps,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  id: StreamIdentity,
  principal: string | undefined,
) {
  const host = id.external?.host ?? "unknown";
  const rec = deps.requests.begin(
    {
      reporter: "destination",
      source_workload: id.source?.name ?? "unknown",
      source_workload_namespace: id.source?.namespace ?? (parsePrincipal(principal).namespace || "unknown"),
      source_principal: principal ?? "unknown",
      source_app: id.source?.labels["app"] ?? "unknown",
      destination_service: host,
      destination_service_name: id.external?.service.metadata.name ?? "unknown",
      destination_service_namespace: id.external?.service.metadata.namespace ?? "unknown",
      destination_workload: id.gateway?.name ?? "unknown",
      destination_workload_namespace: id.gateway?.namespace ?? "unknown",
      destination_principal: id.gateway?.spiffeId ?? "unknown",
      destination_app: id.gateway?.labels["app"] ?? "unknown",
      request_protocol: "http",
      response_code: "",
      grpc_response_status: "",
      response_flags: "",
      connection_security_policy: "mutual_tls",
      route_name: "",
    },
    {
      method: headerValue(headers, ":method"),
      path: headerValue(headers, ":path"),
      authority: headerValue(headers, ":authority"),
      protocol: "HTTP/2",
      requestId: headerValue(headers, "x-request-id"),
      userAgent: headerValue(headers, "user-agent"),
      sourceAddress: id.sourceAddress,
    },
  );
  rec.upstreamCluster = id.external?.servicePort.key ?? "unknown";
  rec.flags = "-";
  stream.once("close", () => deps.requests.finish(rec));
  return {
    set(status: number, flag: string, reason?: string, policy?: string) {
      rec.responseCode = status;
      rec.flags = flag;
      if (reason) rec.reason = reason;
      if (policy) rec.policy = policy;
    },
    upstream: (address: string) => void (rec.upstreamHost = address),
    requestBytes: (n: number) => void (rec.requestBytes += n),
    responseBytes: (n: number) => void (rec.responseBytes += n),
  };
}

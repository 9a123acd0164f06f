// The destination reporter's record of one request (Istio's `reporter="destination"` series and access
// line), built from what the destination agent saw: the peer's proven identity, the target workload and
// the application's answer.
import { parsePrincipal } from "../policy/authz.ts";
import type { RequestTelemetry } from "../telemetry/http.ts";
import { headerValue } from "./headers.ts";
import type { InboundRequest } from "./inbound.ts";
import type { MeshView } from "../state/view.ts";
import { parseForwarded } from "../proxy/inbound.ts";

export function reportInbound(t: RequestTelemetry, view: MeshView, r: InboundRequest): void {
  const h = r.headers;
  const src = view.workloadByAddress(r.sourceAddress);
  const srcOk = src !== undefined && src.spiffeId === r.principal;
  const host = parseForwarded(h["forwarded"]).host ?? "unknown";
  const dot = host.indexOf(".");
  const w = r.workload;
  const rec = t.begin(
    {
      reporter: "destination",
      source_workload: srcOk ? src.name : "unknown",
      source_workload_namespace: srcOk ? src.namespace : parsePrincipal(r.principal).namespace || "unknown",
      source_principal: r.principal ?? "unknown",
      source_app: srcOk ? (src.labels["app"] ?? "unknown") : "unknown",
      destination_service: host,
      destination_service_name: dot > 0 ? host.slice(0, dot) : host,
      destination_service_namespace: dot > 0 ? host.slice(dot + 1) : "unknown",
      destination_workload: w?.name ?? "unknown",
      destination_workload_namespace: w?.namespace ?? "unknown",
      destination_principal: w?.spiffeId ?? "unknown",
      destination_app: w?.labels["app"] ?? "unknown",
      request_protocol: headerValue(h, "content-type").startsWith("application/grpc") ? "grpc" : "http",
      response_code: "",
      grpc_response_status: "",
      response_flags: "",
      connection_security_policy: "mutual_tls",
      route_name: "",
    },
    {
      method: headerValue(h, ":method"),
      path: headerValue(h, ":path"),
      authority: headerValue(h, ":authority"),
      protocol: "HTTP/2",
      requestId: headerValue(h, "x-request-id"),
      userAgent: headerValue(h, "user-agent"),
      sourceAddress: r.sourceAddress,
      start: r.start,
    },
  );
  rec.upstreamHost = w ? `${w.address}:${headerValue(h, "nodemesh-target").split(":").pop() ?? ""}` : "";
  rec.upstreamCluster = `inbound|${w?.uid ?? r.uid}`;
  rec.requestBytes = r.requestBytes;
  rec.responseBytes = r.responseBytes;
  rec.responseCode = r.status;
  rec.flags = r.flag;
  if (r.reason) rec.reason = r.reason;
  if (r.policy) rec.policy = r.policy;
  if (r.grpcStatus !== undefined) rec.grpcStatus = r.grpcStatus;
  t.finish(rec);
}

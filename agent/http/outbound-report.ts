// The record of one request by the proxy that sent it: Istio's request series and access line with
// the calling workload as the source and the routed backend as the destination. The node's outbound
// path reports as `source`, the ingress gateway as `gateway`; one shape so dashboards join them.
import { headerValue } from "./headers.ts";
import { isGrpc, type RequestDone } from "./server.ts";
import type { RequestTelemetry } from "../telemetry/http.ts";

export function reportOutbound(
  telemetry: RequestTelemetry,
  done: RequestDone,
  reporter: "source" | "gateway",
  traceId?: string,
): void {
  const ex = done.exchange;
  const sp = ex.backend ?? ex.servicePort;
  const dst = ex.destination;
  const rec = telemetry.begin(
    {
      reporter,
      source_workload: ex.source.name,
      source_workload_namespace: ex.source.namespace,
      source_principal: ex.source.spiffeId,
      source_app: ex.source.labels["app"] ?? "unknown",
      destination_service: sp.service.host,
      destination_service_name: sp.service.name,
      destination_service_namespace: sp.service.namespace,
      destination_workload: dst?.name ?? "unknown",
      destination_workload_namespace: dst?.namespace ?? "unknown",
      destination_principal: dst?.spiffeId ?? "unknown",
      destination_app: dst?.labels["app"] ?? "unknown",
      request_protocol: isGrpc(ex) ? "grpc" : "http",
      response_code: "",
      grpc_response_status: "",
      response_flags: "",
      connection_security_policy: "unknown",
      route_name: ex.rule?.route ?? "",
    },
    {
      method: ex.request.method,
      path: ex.request.path,
      authority: ex.request.authority,
      protocol: ex.request.protocol,
      requestId: ex.request.requestId,
      userAgent: headerValue(ex.request.headers, "user-agent"),
      sourceAddress: ex.source.address,
      start: ex.start,
    },
  );
  rec.upstreamHost = ex.upstreamHost ?? "";
  rec.upstreamCluster = sp.key;
  rec.requestBytes = done.requestBytes;
  rec.responseBytes = done.responseBytes;
  rec.responseCode = done.aborted && done.responseBytes === 0 ? 0 : done.response.status;
  rec.flags = done.aborted ? "DownstreamConnectionTermination" : (done.response.flag ?? "-");
  if (done.response.reason) rec.reason = done.response.reason;
  if (done.grpcStatus !== undefined) rec.grpcStatus = done.grpcStatus;
  if (ex.upstreamMs !== undefined) rec.upstreamMs = ex.upstreamMs;
  if (ex.attempts !== undefined) rec.attempts = ex.attempts;
  if (traceId) rec.traceId = traceId;
  telemetry.finish(rec);
}

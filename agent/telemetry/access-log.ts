// The access-log line of one HTTP request (one per request and reporter), with Istio's JSON access-log
// keys (`EnvoyJSONLogFormatIstio`) for the request and its outcome, and ztunnel's `src.*`/`dst.*` identity
// keys so HTTP and TCP lines of the same `{"log":"access"}` stream filter alike. Empty values are left
// out rather than printed as "-" (pino drops undefined keys, and `jq 'select(.x)'` stays simple).
//
// The record is built only when the access logger is enabled at info: the caller checks first, so a
// disabled log costs one boolean per request (CONVENTIONS "hot paths stay cheap").
import type { Logger } from "../log.ts";

/** The request fields the line needs; `RequestRecord` (http.ts) satisfies it. */
export interface LoggedRequest {
  readonly labels: {
    readonly reporter: string;
    readonly source_workload: string;
    readonly source_workload_namespace: string;
    readonly source_principal: string;
    readonly destination_service: string;
    readonly destination_workload: string;
    readonly destination_workload_namespace: string;
    readonly destination_principal: string;
    readonly route_name: string;
  };
  readonly start: number;
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly protocol: string;
  readonly requestId: string;
  readonly userAgent: string;
  readonly traceId?: string | undefined;
  readonly forwardedFor?: string | undefined;
  readonly sourceAddress: string;
  readonly upstreamHost: string;
  readonly upstreamCluster: string;
  readonly requestBytes: number;
  readonly responseBytes: number;
  readonly responseCode: number;
  readonly grpcStatus?: string | undefined;
  readonly flags: string;
  readonly reason?: string | undefined;
  readonly upstreamMs?: number | undefined;
  readonly attempts?: number | undefined;
  readonly policy?: string | undefined;
}

/** Milliseconds with microsecond precision, as the TCP access line prints `duration`. */
function ms(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** An identity label as logged: "unknown" (the metric placeholder) is no identity at all. */
function known(value: string): string | undefined {
  return value === "" || value === "unknown" ? undefined : value;
}

/** The JSON fields of a request's line; `durationMs` is from `start` to the end of the response. */
export function requestLogFields(rec: LoggedRequest, durationMs: number): Record<string, unknown> {
  const l = rec.labels;
  return {
    // Which side wrote it: source = the client's node (outbound), destination = the server's (inbound).
    direction: l.reporter === "destination" ? "inbound" : "outbound",
    reporter: l.reporter,
    start_time: new Date(performance.timeOrigin + rec.start).toISOString(),
    method: rec.method,
    path: rec.path,
    protocol: rec.protocol,
    authority: rec.authority || undefined,
    response_code: rec.responseCode,
    grpc_status: rec.grpcStatus || undefined,
    response_flags: rec.flags && rec.flags !== "-" ? rec.flags : undefined,
    response_code_details: rec.reason || undefined,
    bytes_received: rec.requestBytes,
    bytes_sent: rec.responseBytes,
    duration: ms(durationMs),
    upstream_service_time: rec.upstreamMs === undefined ? undefined : ms(rec.upstreamMs),
    x_forwarded_for: rec.forwardedFor || undefined,
    user_agent: rec.userAgent || undefined,
    request_id: rec.requestId || undefined,
    trace_id: rec.traceId || undefined,
    upstream_host: rec.upstreamHost || undefined,
    upstream_cluster: rec.upstreamCluster || undefined,
    downstream_remote_address: rec.sourceAddress || undefined,
    route_name: known(l.route_name),
    "src.workload": known(l.source_workload),
    "src.namespace": known(l.source_workload_namespace),
    "src.identity": known(l.source_principal),
    "dst.service": known(l.destination_service),
    "dst.workload": known(l.destination_workload),
    "dst.namespace": known(l.destination_workload_namespace),
    "dst.identity": known(l.destination_principal),
    attempts: rec.attempts,
    policy: rec.policy || undefined,
  };
}

/** Writes the line if the logger is enabled at info; returns whether it wrote. */
export function logRequest(access: Logger, rec: LoggedRequest, durationMs: number): boolean {
  if (!access.isLevelEnabled("info")) return false;
  access.info(requestLogFields(rec, durationMs), "request complete");
  return true;
}

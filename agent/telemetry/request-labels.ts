// Request metric labels: Istio's label names plus `route_name`, the label profiles that bound their
// cardinality, the histogram buckets, and the protocol-detection outcomes. Data only, no I/O: the
// config parser and the admin page may import it without pulling in the telemetry itself.
import { ConfigError } from "../errors.ts";
import { checkBounds } from "./series.ts";

export const LABEL_PROFILES = ["minimal", "standard", "full"] as const;
export type LabelProfile = (typeof LABEL_PROFILES)[number];
/**
 * `standard`: what Istio's dashboards group by, without the labels that only repeat another one
 * (principals and app labels follow the workload) or rarely differ from their default.
 */
export const DEFAULT_LABEL_PROFILE: LabelProfile = "standard";

export interface RequestLabels {
  reporter: "source" | "destination" | "gateway";
  source_workload: string;
  source_workload_namespace: string;
  source_principal: string;
  source_app: string;
  destination_service: string;
  destination_service_name: string;
  destination_service_namespace: string;
  destination_workload: string;
  destination_workload_namespace: string;
  destination_principal: string;
  destination_app: string;
  request_protocol: "http" | "grpc";
  /** Written by `finish` from `responseCode`. */
  response_code: string;
  /** Written by `finish` from `grpcStatus` ("" when the request is not gRPC: Prometheus drops it). */
  grpc_response_status: string;
  /** Written by `finish` from `flags` ("-" when there is none, as Envoy and ztunnel print it). */
  response_flags: string;
  connection_security_policy: "mutual_tls" | "none" | "unknown";
  route_name: string;
}
export type RequestLabelName = keyof RequestLabels;

/**
 * Exported labels per profile, coarse to fine (series share their index prefixes, series.ts).
 * minimal: who called whom and with what result, per route. standard adds the service's parts and mTLS,
 * and grpc_response_status, without which a failed gRPC call reads as a 200. full: all of Istio's set.
 */
const MINIMAL = [
  "reporter",
  "source_workload_namespace",
  "source_workload",
  "destination_service",
  "destination_workload_namespace",
  "destination_workload",
  "route_name",
  "response_code",
] as const satisfies readonly RequestLabelName[];
const STANDARD = [
  ...MINIMAL.slice(0, 3),
  "destination_service_namespace",
  "destination_service_name",
  ...MINIMAL.slice(3),
  "grpc_response_status",
  "connection_security_policy",
] as const satisfies readonly RequestLabelName[];
const FULL = [
  "reporter",
  "source_workload_namespace",
  "source_workload",
  "source_principal",
  "source_app",
  "destination_service_namespace",
  "destination_service_name",
  "destination_service",
  "destination_workload_namespace",
  "destination_workload",
  "destination_principal",
  "destination_app",
  "connection_security_policy",
  "request_protocol",
  "route_name",
  "response_code",
  "grpc_response_status",
  "response_flags",
] as const satisfies readonly RequestLabelName[];
export const PROFILE_LABELS: Readonly<Record<LabelProfile, readonly RequestLabelName[]>> = Object.freeze({
  minimal: MINIMAL,
  standard: STANDARD,
  full: FULL,
});

/** Seconds. 0.5 ms resolves a same-node hop; 30 s is past every default timeout (Istio's goes to 1 h in ms). */
export const DURATION_BUCKETS = checkBounds(
  "nodemesh_request_duration_seconds",
  [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
);
/** Body bytes: Istio's decades (1 B … 100 MB), so its size panels read the same. */
export const SIZE_BUCKETS = checkBounds("nodemesh_request_bytes", [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8]);

export const DETECTION_RESULTS = ["http1", "http2", "tls", "opaque", "timeout", "declared"] as const;
export type DetectionResult = (typeof DETECTION_RESULTS)[number];
export interface DetectionLabels {
  reporter?: "source" | "destination" | "gateway";
  destination_service?: string;
}
export type DetectionLabelName = "result" | "reporter" | "destination_service";

/** Validates a label profile setting; `field` names the setting in the error. */
export function parseLabelProfile(value: unknown, field = "labelProfile"): LabelProfile {
  if (typeof value === "string" && (LABEL_PROFILES as readonly string[]).includes(value)) {
    return value as LabelProfile;
  }
  throw new ConfigError(
    `${field} must be one of ${LABEL_PROFILES.join(", ")}, got ${JSON.stringify(value)}: pick "minimal" to cut metric cardinality`,
  );
}

/**
 * Labels with every peer field "unknown" (Istio's value for a missing one), to fill in as the request is
 * resolved. A fresh object per call: a record owns its labels.
 */
export function unknownRequestLabels(
  reporter: RequestLabels["reporter"],
  requestProtocol: RequestLabels["request_protocol"] = "http",
): RequestLabels {
  return {
    reporter,
    source_workload: "unknown",
    source_workload_namespace: "unknown",
    source_principal: "unknown",
    source_app: "unknown",
    destination_service: "unknown",
    destination_service_name: "unknown",
    destination_service_namespace: "unknown",
    destination_workload: "unknown",
    destination_workload_namespace: "unknown",
    destination_principal: "unknown",
    destination_app: "unknown",
    request_protocol: requestProtocol,
    response_code: "0",
    grpc_response_status: "",
    response_flags: "-",
    connection_security_policy: "unknown",
    route_name: "unknown",
  };
}

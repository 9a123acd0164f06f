// Request telemetry: nodemesh_requests_total, nodemesh_request_duration_seconds and the request/response
// size histograms with Istio's label names plus `route_name`, a label profile that bounds cardinality,
// one access-log line per request, and nodemesh_protocol_detection_total.
//
// A request is one RequestRecord per reporter: `begin` when its headers arrive, mutated as it proceeds,
// `finish` once when the response ends (or the request fails). `finish` is the only place that counts.
// The series share the agent's Registry (AgentMetrics.registry), so /metrics is one page; they are
// aggregated per label set (series.ts explains the cost), not fed to prom-client per request.
import type * as PromClient from "prom-client";
import type { Logger } from "../log.ts";
import { logRequest } from "./access-log.ts";
import type { TapHub } from "./tap.ts";
import {
  DETECTION_RESULTS,
  DURATION_BUCKETS,
  parseLabelProfile,
  PROFILE_LABELS,
  SIZE_BUCKETS,
  type DetectionLabelName,
  type DetectionLabels,
  type DetectionResult,
  type LabelProfile,
  type RequestLabelName,
  type RequestLabels,
} from "./request-labels.ts";
import { Buckets, registerCounter, registerHistogram, SeriesIndex, type SeriesLabels } from "./series.ts";

// One import site for the data path: the label vocabulary is re-exported with the telemetry.
export {
  DEFAULT_LABEL_PROFILE,
  DETECTION_RESULTS,
  DURATION_BUCKETS,
  LABEL_PROFILES,
  parseLabelProfile,
  PROFILE_LABELS,
  SIZE_BUCKETS,
  type DetectionLabels,
  type DetectionResult,
  type LabelProfile,
  type RequestLabelName,
  type RequestLabels,
  unknownRequestLabels,
} from "./request-labels.ts";

export interface RequestInit {
  method: string;
  path: string;
  authority: string;
  /** "HTTP/1.1" | "HTTP/2" */
  protocol: string;
  requestId: string;
  userAgent: string;
  sourceAddress: string;
  traceId?: string;
  forwardedFor?: string;
  /** performance.now() when the request began, if earlier than `begin` (e.g. first byte of the head). */
  start?: number;
}

/** One request as seen by one reporter. Mutable until `finish`; `labels` belongs to this record alone. */
export interface RequestRecord {
  readonly labels: RequestLabels;
  readonly start: number;
  method: string;
  path: string;
  authority: string;
  protocol: string;
  requestId: string;
  userAgent: string;
  traceId?: string;
  forwardedFor?: string;
  sourceAddress: string;
  upstreamHost: string;
  upstreamCluster: string;
  /** Body bytes from the client (request direction) and from the server (response direction). */
  requestBytes: number;
  responseBytes: number;
  /** HTTP status sent to the client; 0 when none was (the client went away first), as Istio reports. */
  responseCode: number;
  grpcStatus?: string;
  /** Envoy-style response flags ("UH", "NR", "UT", "DENY", comma-joined); "" or "-" for none. */
  flags: string;
  reason?: string;
  /** Milliseconds from `start` to the upstream's response headers. */
  upstreamMs?: number;
  attempts?: number;
  /** The AuthorizationPolicy that denied, "ns/name". */
  policy?: string;
  /** Set by `finish`; a second `finish` is a no-op (error and close paths may both end a request). */
  finished: boolean;
}

interface RequestSeries {
  readonly labels: SeriesLabels<RequestLabelName>;
  readonly duration: Buckets;
  readonly requestBytes: Buckets;
  readonly responseBytes: Buckets;
  requests: number;
}
interface DetectionSeries {
  readonly labels: SeriesLabels<DetectionLabelName>;
  count: number;
}

/**
 * Request and detection metrics of one agent, plus the per-request access line.
 * Invariants: a record is counted exactly once, under its labels as they are at `finish`; the series
 * only grow (a scrape sees monotonic counters); nothing is formatted unless the access log is enabled.
 */
export class RequestTelemetry {
  readonly profile: LabelProfile;
  readonly #requests: SeriesIndex<RequestLabelName, RequestSeries>;
  readonly #detections: SeriesIndex<DetectionLabelName, DetectionSeries>;
  readonly #access: Logger | undefined;
  readonly #tap: TapHub | undefined;

  constructor(opts: { registry: PromClient.Registry; profile: LabelProfile; access?: Logger; tap?: TapHub }) {
    this.profile = parseLabelProfile(opts.profile, "profile");
    this.#access = opts.access;
    this.#tap = opts.tap;
    this.#requests = new SeriesIndex(PROFILE_LABELS[this.profile], (labels) => ({
      labels,
      duration: new Buckets(DURATION_BUCKETS),
      requestBytes: new Buckets(SIZE_BUCKETS),
      responseBytes: new Buckets(SIZE_BUCKETS),
      requests: 0,
    }));
    this.#detections = new SeriesIndex(["result", "reporter", "destination_service"], (labels) => ({
      labels,
      count: 0,
    }));
    this.#register(opts.registry);
  }

  #register(registry: PromClient.Registry): void {
    const series = () => this.#requests.values();
    registerCounter({
      registry,
      series,
      name: "nodemesh_requests_total",
      help: "HTTP and gRPC requests handled by the mesh, per reporter.",
      value: (s) => s.requests,
    });
    const histogram = (
      name: string,
      help: string,
      bounds: readonly number[],
      pick: (s: RequestSeries) => Buckets,
    ) => registerHistogram({ registry, series, name, help, bounds, buckets: pick });
    histogram(
      "nodemesh_request_duration_seconds",
      "Time from the request's start to the end of its response, in seconds.",
      DURATION_BUCKETS,
      (s) => s.duration,
    );
    histogram("nodemesh_request_bytes", "Request body sizes in bytes.", SIZE_BUCKETS, (s) => s.requestBytes);
    histogram(
      "nodemesh_response_bytes",
      "Response body sizes in bytes.",
      SIZE_BUCKETS,
      (s) => s.responseBytes,
    );
    registerCounter({
      registry,
      series: () => this.#detections.values(),
      name: "nodemesh_protocol_detection_total",
      help: "Protocol selections of connections to meshed ports (detected from the first bytes, timed out, or declared).",
      value: (s) => s.count,
    });
  }

  /** A record for a request whose head has arrived; `labels` is owned by the record from now on. */
  begin(labels: RequestLabels, init: RequestInit): RequestRecord {
    return {
      labels,
      start: init.start ?? performance.now(),
      method: init.method,
      path: init.path,
      authority: init.authority,
      protocol: init.protocol,
      requestId: init.requestId,
      userAgent: init.userAgent,
      traceId: init.traceId,
      forwardedFor: init.forwardedFor,
      sourceAddress: init.sourceAddress,
      upstreamHost: "",
      upstreamCluster: "",
      requestBytes: 0,
      responseBytes: 0,
      responseCode: 0,
      grpcStatus: undefined,
      flags: "-",
      reason: undefined,
      upstreamMs: undefined,
      attempts: undefined,
      policy: undefined,
      finished: false,
    };
  }

  /**
   * Ends a request: writes the outcome labels from the record's fields, counts it, observes its duration
   * and sizes, and writes its access line. Throws (a caller bug, before anything is counted) on sizes or
   * a status that are not numbers in range.
   */
  finish(rec: RequestRecord): void {
    if (rec.finished) return;
    checkOutcome(rec);
    rec.finished = true;
    const durationMs = performance.now() - rec.start;
    const l = rec.labels;
    l.response_code = String(rec.responseCode);
    l.grpc_response_status = rec.grpcStatus ?? "";
    l.response_flags = rec.flags === "" ? "-" : rec.flags;
    const s = this.#requests.get(l);
    s.requests++;
    s.duration.observe(durationMs > 0 ? durationMs / 1000 : 0);
    s.requestBytes.observe(rec.requestBytes);
    s.responseBytes.observe(rec.responseBytes);
    if (this.#tap?.active) this.#tap.request(rec, durationMs);
    if (this.#access !== undefined) logRequest(this.#access, rec, durationMs);
  }

  /** Counts one protocol selection (once per connection); missing labels read "source" and "unknown". */
  countDetection(result: DetectionResult, labels?: DetectionLabels): void {
    if (!(DETECTION_RESULTS as readonly string[]).includes(result)) {
      throw new TypeError(
        `countDetection: result must be one of ${DETECTION_RESULTS.join(", ")}, got "${result}"`,
      );
    }
    this.#detections.get({
      result,
      reporter: labels?.reporter ?? "source",
      destination_service: labels?.destination_service || "unknown",
    }).count++;
  }

  /** Distinct request label sets so far (for the admin page and cardinality checks). */
  get seriesCount(): number {
    return this.#requests.size;
  }
}

/** NaN and negatives fail `>= 0`; a status outside 0-999 cannot be printed by any client. */
function checkOutcome(rec: RequestRecord): void {
  if (!(rec.requestBytes >= 0 && rec.requestBytes <= Number.MAX_SAFE_INTEGER)) {
    throw new TypeError(`request record: requestBytes must be a number >= 0, got ${rec.requestBytes}`);
  }
  if (!(rec.responseBytes >= 0 && rec.responseBytes <= Number.MAX_SAFE_INTEGER)) {
    throw new TypeError(`request record: responseBytes must be a number >= 0, got ${rec.responseBytes}`);
  }
  if (!Number.isInteger(rec.responseCode) || rec.responseCode < 0 || rec.responseCode > 999) {
    throw new TypeError(`request record: responseCode must be an integer 0-999, got ${rec.responseCode}`);
  }
}

// What the layers of the outbound request path pass along: the request as received from the workload
// (end-to-end headers only, body still streaming), where it came from, and what the layers decided. The
// response is the upstream's (or a layer's own), body streaming, trailers when the upstream sends them.
import type { OutgoingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import type { CompiledRule, RuleFault } from "../state/routes.ts";
import type { MeshView, ServicePortInfo, WorkloadInfo } from "../state/view.ts";

export interface RequestHead {
  readonly method: string;
  /** Path and query, as received (origin form). */
  path: string;
  /** `:authority` / Host. */
  authority: string;
  readonly headers: OutgoingHttpHeaders;
  readonly protocol: "HTTP/1.1" | "HTTP/2";
  readonly requestId: string;
}

export interface Exchange {
  readonly view: MeshView;
  readonly source: WorkloadInfo;
  /** The service port the client connected to (its VIP). */
  readonly servicePort: ServicePortInfo;
  readonly request: RequestHead;
  /** undefined for a request without a body (GET, or END_STREAM with the headers). */
  body: Readable | undefined;
  /** The client went away: layers stop early. */
  readonly signal: AbortSignal;
  /** performance.now() when the request's headers arrived. */
  readonly start: number;
  /** Milliseconds from `start` to the upstream's response headers. */
  upstreamMs?: number;
  /** Body bytes read from the client so far (the upstream layer counts them as it forwards). */
  requestBytes: number;
  /** Set by the route layer: the matched rule (undefined when the service port has no routes). */
  rule?: CompiledRule;
  /** Set by the route layer: the path match that selected `rule` (the tracing layer's `http.route`). */
  pathMatch?: { readonly type: string; readonly value: string };
  /** Set by the route layer: where the request goes. */
  backend?: ServicePortInfo;
  /** Set by the route layer: the backendRef's or rule's FaultInjection (it wins over the TrafficPolicy's). */
  fault?: RuleFault;
  /** Set by the route layer: where copies of the request go (RequestMirror); their answers are dropped. */
  mirrors?: ServicePortInfo[];
  /** Response headers the route's filters add/set/remove once the response is known. */
  responseFilters?: ((headers: OutgoingHttpHeaders) => void)[];
  /** What the upstream layer tells telemetry. */
  upstreamHost?: string;
  destination?: WorkloadInfo;
  attempts?: number;
  /** Set by the upstream: the endpoint key the latest try went to (breaker bookkeeping). */
  endpoint?: string;
  /** Set by the retry layer: endpoints earlier tries went to; the upstream prefers the others. */
  triedEndpoints?: Set<string>;
  /** Set by the breaker layer: endpoints the upstream must not pick (open breakers). */
  skipEndpoint?: (key: string) => boolean;
  /** Set by the timeout layers: cancels the current try (the upstream resets its stream). */
  trySignal?: AbortSignal;
}

export interface ResponseHead {
  readonly status: number;
  readonly headers: OutgoingHttpHeaders;
  /** undefined = no body. */
  readonly body?: Readable;
  /** Resolves with the upstream's trailers (gRPC status) or undefined when it sent none. */
  readonly trailers?: Promise<OutgoingHttpHeaders | undefined>;
  /** Istio-style response flag when the mesh, not the application, answered. */
  readonly flag?: string;
  /** Why the mesh answered (access log). */
  readonly reason?: string;
  /**
   * The request provably never reached an application (no session could be had, or the peer refused
   * the stream with REFUSED_STREAM): safe to retry whatever the method.
   */
  readonly unsent?: boolean;
}

/** An answer the mesh itself gives (404 no route, 503 no upstream, 403 denied…). */
export function localReply(status: number, flag: string, reason: string, grpc: boolean): ResponseHead {
  const body = `${reason}\n`;
  const headers: OutgoingHttpHeaders = grpc
    ? {
        "content-type": "application/grpc",
        "grpc-status": String(grpcStatusOf(status)),
        "grpc-message": encodeURIComponent(reason.toWellFormed()), // a lone surrogate made it throw
      }
    : { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(body) };
  return { status: grpc ? 200 : status, headers, flag, reason, ...(grpc ? {} : { body: readableOf(body) }) };
}

/** gRPC's HTTP → status mapping (grpc/doc/http-grpc-status-mapping.md), plus 403 → PERMISSION_DENIED. */
export function grpcStatusOf(http: number): number {
  switch (http) {
    case 400:
      return 13;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return 12;
    case 429:
    case 502:
    case 503:
      return 14;
    case 504:
      return 4;
    default:
      return 2;
  }
}

import { Readable as ReadableStream } from "node:stream";
function readableOf(text: string): Readable {
  return ReadableStream.from([Buffer.from(text)]);
}

// Request spans of the mesh. Source agent: a CLIENT span per request, opened by the outermost layer
// (so a 404 or a fault the mesh answers is traced too), its context injected into the request before
// any other layer runs, one span event per try (the innermost layer, next to the upstream), ended when
// the response has been written to the client. Destination agent: a SERVER span per request stream,
// a child of the CLIENT span, whose context the application receives. Attributes follow the OTel HTTP
// semantic conventions (docs/tracing.md lists them) plus the mesh's `nodemesh.*`.
//
// An unsampled request gets a non-recording span: its context is still propagated (traceparent
// `-00`, so the next hop agrees not to sample) but no attribute is computed.
import type { IncomingHttpHeaders } from "node:http2";
import type { Attributes } from "@opentelemetry/api";
import type { Layer } from "../stack/compose.ts";
import type { MeshView, WorkloadInfo } from "../state/view.ts";
import type { MeshTracer, TraceSpan } from "../telemetry/tracing/index.ts";
import type { Exchange, ResponseHead } from "./exchange.ts";
import { headerValue } from "./headers.ts";
import type { InboundRequest } from "./inbound.ts";
import type { RequestDone } from "./server.ts";

export interface OutboundTracing {
  /** Outermost: opens the CLIENT span and injects its context. */
  readonly layer: Layer<Exchange, ResponseHead>;
  /** Innermost (next to the upstream): one span event per try. */
  readonly attempts: Layer<Exchange, ResponseHead>;
  /** Ends the request's span; returns its trace id when sampled (for the access log). */
  finish(done: RequestDone): string | undefined;
}

export interface InboundTracing {
  start(headers: IncomingHttpHeaders, sourceAddress: string): TraceSpan;
  finish(rec: InboundRequest, view: MeshView): void;
}

/** RFC 9110 methods plus PATCH: anything else is `_OTHER` (semconv), so span names stay bounded. */
const KNOWN_METHODS = new Set([
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "CONNECT",
  "OPTIONS",
  "TRACE",
  "PATCH",
]);

interface ClientState {
  readonly span: TraceSpan;
  tries: number;
}

/** `extra`: attributes of the reporter (the ingress gateway adds its own), computed only when sampled. */
export function outboundTracing(tracer: MeshTracer, extra?: (ex: Exchange) => Attributes): OutboundTracing {
  const spans = new WeakMap<Exchange, ClientState>();
  return {
    layer: (next) => (ex) => {
      const span = tracer.start("client", spanName(ex.request.method, undefined), ex.request.headers);
      span.inject(ex.request.headers);
      if (span.recording)
        span.setAttributes(extra ? { ...clientAttributes(ex), ...extra(ex) } : clientAttributes(ex));
      spans.set(ex, { span, tries: 0 });
      return next(ex);
    },
    attempts: (next) => async (ex) => {
      const st = spans.get(ex);
      if (!st?.span.recording) return next(ex);
      const attempt = ++st.tries;
      const t0 = performance.now();
      const res = await next(ex);
      st.span.addEvent("attempt", {
        "nodemesh.attempt": attempt,
        "http.request.resend_count": attempt - 1,
        "http.response.status_code": res.status,
        "nodemesh.response_flags": res.flag ?? "-",
        "nodemesh.endpoint": ex.endpoint ?? "",
        "nodemesh.attempt.duration_ms": Math.round((performance.now() - t0) * 1000) / 1000,
        ...(res.reason ? { "nodemesh.reason": res.reason } : {}),
      });
      return res;
    },
    finish(done) {
      const st = spans.get(done.exchange);
      if (!st) return undefined;
      spans.delete(done.exchange);
      const { span } = st;
      if (span.recording) finishClient(span, done, st.tries);
      span.end();
      return span.recording ? span.traceId : undefined;
    },
  };
}

export function inboundTracing(tracer: MeshTracer): InboundTracing {
  return {
    start(headers, sourceAddress) {
      const method = headerValue(headers, ":method");
      const span = tracer.start("server", spanName(method, undefined), headers);
      if (span.recording) {
        const raw = headerValue(headers, ":path");
        const q = raw.indexOf("?");
        const { host, port } = splitAuthority(headerValue(headers, ":authority"));
        span.setAttributes({
          ...methodAttributes(method),
          "url.path": q < 0 ? raw : raw.slice(0, q),
          "url.scheme": "http",
          "server.address": host,
          ...(port !== undefined ? { "server.port": port } : {}),
          "client.address": sourceAddress,
          "network.peer.address": sourceAddress,
          "network.protocol.name": "http",
          "network.protocol.version": "2",
          "user_agent.original": headerValue(headers, "user-agent"),
          "nodemesh.request_id": headerValue(headers, "x-request-id"),
        });
      }
      return span;
    },
    finish(rec, view) {
      const span = rec.span;
      if (!span) return;
      if (span.recording) finishServer(span, rec, view);
      span.end();
    },
  };
}

function clientAttributes(ex: Exchange): Attributes {
  const r = ex.request;
  const q = r.path.indexOf("?");
  const path = q < 0 ? r.path : r.path.slice(0, q);
  const { host, port } = splitAuthority(r.authority);
  return {
    ...methodAttributes(r.method),
    // Without the query: query strings carry tokens, and span backends keep what they get for weeks.
    "url.full": `http://${r.authority}${path}`,
    "url.path": path,
    "url.scheme": "http",
    "server.address": host,
    "server.port": port ?? ex.servicePort.port,
    "network.protocol.name": "http",
    "network.protocol.version": r.protocol === "HTTP/2" ? "2" : "1.1",
    "user_agent.original": headerValue(r.headers, "user-agent"),
    "nodemesh.request_id": r.requestId,
    ...workloadAttributes("source", ex.source),
  };
}

function finishClient(span: TraceSpan, done: RequestDone, tries: number): void {
  const ex = done.exchange;
  const status = done.aborted && done.responseBytes === 0 ? 0 : done.response.status;
  const route = httpRoute(ex);
  if (route !== undefined) span.updateName(spanName(ex.request.method, route));
  const peer = ex.upstreamHost ? splitAuthority(ex.upstreamHost) : undefined;
  const flag = done.aborted ? "DownstreamConnectionTermination" : done.response.flag;
  span.setAttributes({
    ...(status > 0 ? { "http.response.status_code": status } : {}),
    ...(route !== undefined ? { "http.route": route } : {}),
    ...(ex.rule?.route ? { "nodemesh.route_name": ex.rule.route } : {}),
    ...(tries > 1 ? { "http.request.resend_count": tries - 1 } : {}),
    ...(peer
      ? { "network.peer.address": peer.host, ...(peer.port ? { "network.peer.port": peer.port } : {}) }
      : {}),
    "nodemesh.destination.service": (ex.backend ?? ex.servicePort).service.host,
    ...(ex.destination ? workloadAttributes("destination", ex.destination) : {}),
    "nodemesh.response_flags": flag ?? "-",
    "http.request.body.size": done.requestBytes,
    "http.response.body.size": done.responseBytes,
    ...(done.grpcStatus !== undefined ? { "rpc.grpc.status_code": Number(done.grpcStatus) } : {}),
  });
  // Semconv: on a CLIENT span every 4xx and 5xx is an error, and so is no answer at all.
  if (done.aborted) span.fail(flag ?? "DownstreamConnectionTermination");
  else if (status >= 400) span.fail(done.response.flag ?? String(status));
  else if (done.grpcStatus !== undefined && done.grpcStatus !== "0")
    span.fail(`grpc-status ${done.grpcStatus}`);
}

function finishServer(span: TraceSpan, rec: InboundRequest, view: MeshView): void {
  const src = view.workloadByAddress(rec.sourceAddress);
  const srcOk = src !== undefined && src.spiffeId === rec.principal;
  span.setAttributes({
    ...(rec.status > 0 ? { "http.response.status_code": rec.status } : {}),
    ...(srcOk ? workloadAttributes("source", src) : {}),
    ...(rec.principal ? { "nodemesh.source.principal": rec.principal } : {}),
    ...(rec.workload ? workloadAttributes("destination", rec.workload) : {}),
    "nodemesh.response_flags": rec.flag,
    ...(rec.policy ? { "nodemesh.policy": rec.policy } : {}),
    ...(rec.reason ? { "nodemesh.reason": rec.reason } : {}),
    "http.request.body.size": rec.requestBytes,
    "http.response.body.size": rec.responseBytes,
    ...(rec.grpcStatus !== undefined ? { "rpc.grpc.status_code": Number(rec.grpcStatus) } : {}),
  });
  // Semconv: on a SERVER span only 5xx (and a reset, no status) is the server's error; 4xx is the caller's.
  if (rec.status === 0 || rec.status >= 500) span.fail(rec.flag !== "-" ? rec.flag : String(rec.status));
  else if (rec.grpcStatus !== undefined && GRPC_SERVER_ERRORS.has(rec.grpcStatus))
    span.fail(`grpc-status ${rec.grpcStatus}`);
}

/** gRPC codes that are the server's fault (semconv rpc: UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS). */
const GRPC_SERVER_ERRORS = new Set(["2", "4", "12", "13", "14", "15"]);

function workloadAttributes(side: "source" | "destination", w: WorkloadInfo): Attributes {
  return {
    [`nodemesh.${side}.workload`]: w.name,
    [`nodemesh.${side}.namespace`]: w.namespace,
    [`nodemesh.${side}.principal`]: w.spiffeId,
  };
}

function methodAttributes(method: string): Attributes {
  return KNOWN_METHODS.has(method)
    ? { "http.request.method": method }
    : { "http.request.method": "_OTHER", "http.request.method_original": method };
}

/** Semconv span name: `{method} {http.route}`, or the method alone; an unknown method reads `HTTP`. */
export function spanName(method: string, route: string | undefined): string {
  const m = KNOWN_METHODS.has(method) ? method : "HTTP";
  return route === undefined ? m : `${m} ${route}`;
}

/**
 * The matched HTTPRoute path as a low-cardinality template: Exact as written, PathPrefix `/api` as
 * `/api/*`, a regular expression as written. None when no route matched (no routes, or pass-through).
 */
export function httpRoute(ex: Pick<Exchange, "rule" | "pathMatch">): string | undefined {
  const m = ex.pathMatch;
  if (!m || !ex.rule?.route) return undefined;
  if (m.type !== "PathPrefix") return m.value;
  return m.value === "/" ? "/*" : `${m.value.replace(/\/+$/, "")}/*`;
}

function splitAuthority(authority: string): { host: string; port: number | undefined } {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(authority);
  if (!m) return { host: authority, port: undefined };
  const port = m[2] === undefined ? undefined : Number(m[2]);
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port: port !== undefined && port < 65536 ? port : undefined };
}

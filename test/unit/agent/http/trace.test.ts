// The tracing layers over the real SDK (in-memory exporter) and the real retry layer: the CLIENT span's
// context reaches the upstream, one event per try, semconv and mesh attributes, error status by the
// semconv rules; the SERVER span is the CLIENT span's child and the application gets its context.
import { describe, expect, it } from "vitest";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { compose } from "../../../../agent/stack/compose.ts";
import type { Exchange, ResponseHead } from "../../../../agent/http/exchange.ts";
import type { InboundRequest } from "../../../../agent/http/inbound.ts";
import type { RequestDone } from "../../../../agent/http/server.ts";
import { retryLayer } from "../../../../agent/http/retry.ts";
import { httpRoute, inboundTracing, outboundTracing, spanName } from "../../../../agent/http/trace.ts";
import { RetryBudgets } from "../../../../agent/retry/budget.ts";
import type { MeshView, WorkloadInfo } from "../../../../agent/state/view.ts";
import { parseTraceparent } from "../../../../agent/telemetry/tracing/propagation.ts";
import { createMeshTracer } from "../../../../agent/telemetry/tracing/tracer.ts";
import { tracingSettingsFromEnv } from "../../../../agent/telemetry/tracing/settings.ts";
import { answer, destination, exchange } from "./resilience-fixture.ts";

const T = "4bf92f3577b34da6a3ce929d0e0e4736";
const S = "00f067aa0ba902b7";
const BACKEND = {
  name: "web-1",
  namespace: "default",
  spiffeId: "spiffe://cluster.local/ns/default/sa/web",
  address: "10.0.2.2",
  labels: {},
} as unknown as WorkloadInfo;

function setup(env: Record<string, string> = {}) {
  const exporter = new InMemorySpanExporter();
  const settings = tracingSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1", ...env });
  const tracer = createMeshTracer(settings, { nodeName: "n1", version: "1", exporter });
  const spans = async (): Promise<ReadableSpan[]> => {
    await tracer.flush();
    return exporter.getFinishedSpans();
  };
  return { tracer, spans };
}

/** Answers try i with statuses[i]; records the traceparent each try carried. */
function upstream(statuses: number[]) {
  const seen: string[] = [];
  const handler = async (ex: Exchange): Promise<ResponseHead> => {
    seen.push(String(ex.request.headers["traceparent"]));
    ex.endpoint = `10.0.2.2:8080#${seen.length}`;
    ex.destination = BACKEND;
    ex.upstreamHost = "10.0.2.2:15008";
    return answer(statuses[Math.min(seen.length - 1, statuses.length - 1)]!);
  };
  return { handler, seen };
}

function done(ex: Exchange, response: ResponseHead, over: Partial<RequestDone> = {}): RequestDone {
  return {
    exchange: ex,
    response,
    requestBytes: 0,
    responseBytes: 12,
    grpcStatus: undefined,
    aborted: false,
    ...over,
  };
}

describe("outbound tracing", () => {
  it("opens a CLIENT span under the caller's, injects it, and records each try as an event", async () => {
    const { tracer, spans } = setup();
    const t = outboundTracing(tracer);
    const up = upstream([503, 200]);
    const handler = compose(
      [t.layer, retryLayer({ budgets: new RetryBudgets(), random: () => 0 }), t.attempts],
      up.handler,
    );
    const ex = exchange(destination(["10.0.2.2:8080"]), {
      headers: { traceparent: `00-${T}-${S}-01`, "user-agent": "curl/8", b3: `${T}-${S}-1` },
    });
    ex.request.path = "/api/items?token=secret";
    ex.rule = { route: "default/web" } as Exchange["rule"];
    ex.pathMatch = { type: "PathPrefix", value: "/api" };
    const res = await handler(ex);
    expect(t.finish(done(ex, res))).toBe(T);
    const [c] = await spans();
    expect(c!.kind).toBe(2);
    expect(c!.name).toBe("GET /api/*");
    expect(c!.parentSpanContext?.spanId).toBe(S);
    // Every try carried the CLIENT span as parent, in W3C and (as the caller sent it) B3.
    expect(up.seen.map((v) => parseTraceparent(v)?.spanId)).toEqual([
      c!.spanContext().spanId,
      c!.spanContext().spanId,
    ]);
    expect(String(ex.request.headers["b3"])).toBe(`${T}-${c!.spanContext().spanId}-1-${S}`);
    expect(c!.attributes).toMatchObject({
      "http.request.method": "GET",
      "url.path": "/api/items",
      "url.full": "http://web/api/items",
      "server.address": "web",
      "http.route": "/api/*",
      "http.response.status_code": 200,
      "http.request.resend_count": 1,
      "network.peer.address": "10.0.2.2",
      "network.peer.port": 15008,
      "user_agent.original": "curl/8",
      "nodemesh.source.workload": "client",
      "nodemesh.destination.workload": "web-1",
      "nodemesh.destination.principal": "spiffe://cluster.local/ns/default/sa/web",
      "nodemesh.route_name": "default/web",
      "nodemesh.response_flags": "-",
    });
    expect(JSON.stringify(c!.attributes)).not.toContain("secret");
    expect(
      c!.events.map((e) => [
        e.name,
        e.attributes?.["nodemesh.attempt"],
        e.attributes?.["http.response.status_code"],
      ]),
    ).toEqual([
      ["attempt", 1, 503],
      ["attempt", 2, 200],
    ]);
    expect(c!.status.code).toBe(0);
  });

  it("starts a trace when the request has none and marks a mesh answer as an error", async () => {
    const { tracer, spans } = setup();
    const t = outboundTracing(tracer);
    const handler = compose([t.layer, t.attempts], async () =>
      answer(503, { flag: "NoHealthyUpstream", reason: "none" }),
    );
    const ex = exchange(destination([]));
    const res = await handler(ex);
    t.finish(done(ex, res));
    const [c] = await spans();
    expect(c!.parentSpanContext).toBeUndefined();
    expect(parseTraceparent(String(ex.request.headers["traceparent"]))?.traceId).toBe(
      c!.spanContext().traceId,
    );
    expect(ex.request.headers["b3"]).toBeUndefined();
    expect(c!.status.code).toBe(2);
    expect(c!.attributes["error.type"]).toBe("NoHealthyUpstream");
  });

  it("marks a client that went away, and a 4xx, as errors on the CLIENT span", async () => {
    const { tracer, spans } = setup();
    const t = outboundTracing(tracer);
    const h = compose([t.layer], async () => answer(404));
    const gone = exchange(destination([]));
    t.finish(done(gone, await h(gone), { aborted: true, responseBytes: 0 }));
    const missing = exchange(destination([]));
    t.finish(done(missing, await h(missing)));
    const [a, b] = await spans();
    expect(a!.attributes["error.type"]).toBe("DownstreamConnectionTermination");
    expect(a!.attributes["http.response.status_code"]).toBeUndefined();
    expect(b!.attributes["error.type"]).toBe("404");
  });

  it("computes nothing for an unsampled request, but still propagates it", async () => {
    const { tracer, spans } = setup({ OTEL_TRACES_SAMPLER: "always_off" });
    const t = outboundTracing(tracer);
    const h = compose([t.layer, t.attempts], async () => answer(200));
    const ex = exchange(destination([]));
    expect(t.finish(done(ex, await h(ex)))).toBeUndefined();
    expect(String(ex.request.headers["traceparent"])).toMatch(/-00$/);
    expect(await spans()).toHaveLength(0);
  });
});

describe("inbound tracing", () => {
  it("opens the SERVER span as the CLIENT span's child, for the application to continue", async () => {
    const { tracer, spans } = setup();
    const t = inboundTracing(tracer);
    const clientSpan = "b7ad6b7169203331";
    const headers = {
      ":method": "POST",
      ":path": "/orders?id=1",
      ":authority": "web.default:80",
      traceparent: `00-${T}-${clientSpan}-01`,
      "x-b3-traceid": T,
      "x-b3-spanid": clientSpan,
      "x-b3-sampled": "1",
      "user-agent": "app/1",
    };
    const span = t.start(headers, "10.0.1.1");
    const app: Record<string, string> = {};
    span.inject(app);
    const client = {
      name: "client",
      namespace: "default",
      spiffeId: "spiffe://td/ns/default/sa/client",
    } as WorkloadInfo;
    const view = {
      workloadByAddress: (a: string) => (a === "10.0.1.1" ? client : undefined),
    } as unknown as MeshView;
    const rec = {
      span,
      status: 502,
      flag: "-",
      principal: client.spiffeId,
      sourceAddress: "10.0.1.1",
      workload: BACKEND,
      requestBytes: 3,
      responseBytes: 0,
    } as unknown as InboundRequest;
    t.finish(rec, view);
    const [s] = await spans();
    expect(s!.kind).toBe(1);
    expect(s!.parentSpanContext?.spanId).toBe(clientSpan);
    expect(parseTraceparent(app["traceparent"])?.spanId).toBe(s!.spanContext().spanId);
    expect(app["x-b3-spanid"]).toBe(s!.spanContext().spanId);
    expect(app["x-b3-parentspanid"]).toBe(clientSpan);
    expect(s!.attributes).toMatchObject({
      "http.request.method": "POST",
      "url.path": "/orders",
      "server.address": "web.default",
      "server.port": 80,
      "client.address": "10.0.1.1",
      "network.peer.address": "10.0.1.1",
      "user_agent.original": "app/1",
      "http.response.status_code": 502,
      "nodemesh.source.workload": "client",
      "nodemesh.source.principal": client.spiffeId,
      "nodemesh.destination.workload": "web-1",
      "error.type": "502",
    });
    expect(s!.status.code).toBe(2);
  });

  it("leaves a 4xx unmarked on the SERVER span (the caller's error)", async () => {
    const { tracer, spans } = setup();
    const t = inboundTracing(tracer);
    const span = t.start({ ":method": "GET", ":path": "/admin", ":authority": "web" }, "10.0.1.9");
    const view = { workloadByAddress: () => undefined } as unknown as MeshView;
    t.finish(
      {
        span,
        status: 403,
        flag: "AuthorizationPolicyDenied",
        policy: "default/deny",
        sourceAddress: "10.0.1.9",
        requestBytes: 0,
        responseBytes: 0,
      } as unknown as InboundRequest,
      view,
    );
    const [s] = await spans();
    expect(s!.status.code).toBe(0);
    expect(s!.attributes).toMatchObject({
      "nodemesh.response_flags": "AuthorizationPolicyDenied",
      "nodemesh.policy": "default/deny",
    });
  });
});

describe("names and routes", () => {
  it("bounds span names and route templates", () => {
    expect(spanName("GET", undefined)).toBe("GET");
    expect(spanName("PURGE", "/x")).toBe("HTTP /x");
    const rule = { route: "default/web" } as Exchange["rule"];
    expect(httpRoute({ rule, pathMatch: { type: "Exact", value: "/login" } })).toBe("/login");
    expect(httpRoute({ rule, pathMatch: { type: "PathPrefix", value: "/" } })).toBe("/*");
    expect(httpRoute({ rule, pathMatch: { type: "PathPrefix", value: "/api/" } })).toBe("/api/*");
    expect(httpRoute({ rule, pathMatch: { type: "RegularExpression", value: "/u/[0-9]+" } })).toBe(
      "/u/[0-9]+",
    );
    expect(
      httpRoute({ rule: { route: "" } as Exchange["rule"], pathMatch: { type: "Exact", value: "/x" } }),
    ).toBeUndefined();
    expect(httpRoute({})).toBeUndefined();
  });
});

// The mesh tracer over the real SDK (in-memory exporter): parent links from either format, a new trace
// when the request has none, the sampler honoured (and B3's decisions), context injected for the next
// hop, and the agent's resource on every span.
import { describe, expect, it } from "vitest";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { createMeshTracer } from "../../../../../agent/telemetry/tracing/tracer.ts";
import { parseTraceparent } from "../../../../../agent/telemetry/tracing/propagation.ts";
import { tracingSettingsFromEnv } from "../../../../../agent/telemetry/tracing/settings.ts";

const T = "4bf92f3577b34da6a3ce929d0e0e4736";
const S = "00f067aa0ba902b7";

function setup(env: Record<string, string> = {}) {
  const exporter = new InMemorySpanExporter();
  const settings = tracingSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1", ...env });
  const tracer = createMeshTracer(settings, { nodeName: "n1", version: "9.9.9", exporter });
  const flush = async () => {
    await tracer.flush();
    return exporter.getFinishedSpans();
  };
  return { tracer, flush };
}

describe("createMeshTracer", () => {
  it("makes a CLIENT span the child of an incoming traceparent, and the SERVER span its child", async () => {
    const { tracer, flush } = setup({
      OTEL_SERVICE_NAME: "mesh",
      OTEL_RESOURCE_ATTRIBUTES: "k8s.cluster.name=c1",
    });
    const incoming = { traceparent: `00-${T}-${S}-01`, tracestate: "vendor=x" };
    const client = tracer.start("client", "GET", incoming);
    const hop: Record<string, string> = {};
    client.inject(hop);
    const server = tracer.start("server", "GET", hop);
    const app: Record<string, string> = {};
    server.inject(app);
    server.end();
    client.end();
    const [s, c] = await flush();
    expect(c!.kind).toBe(2); // CLIENT
    expect(s!.kind).toBe(1); // SERVER
    expect(c!.spanContext().traceId).toBe(T);
    expect(c!.parentSpanContext?.spanId).toBe(S);
    expect(s!.parentSpanContext?.spanId).toBe(c!.spanContext().spanId);
    expect(parseTraceparent(app["traceparent"])?.spanId).toBe(s!.spanContext().spanId);
    expect(app["tracestate"]).toBe("vendor=x");
    expect(c!.resource.attributes).toMatchObject({
      "service.name": "mesh",
      "service.version": "9.9.9",
      "k8s.node.name": "n1",
      "k8s.cluster.name": "c1",
    });
  });

  it("starts a new sampled trace when the request has none", async () => {
    const { tracer, flush } = setup();
    const span = tracer.start("client", "GET", {});
    const h: Record<string, string> = {};
    span.inject(h);
    span.end();
    const [c] = await flush();
    expect(c!.parentSpanContext).toBeUndefined();
    expect(h["traceparent"]).toBe(`00-${c!.spanContext().traceId}-${c!.spanContext().spanId}-01`);
    expect(h["b3"]).toBeUndefined();
  });

  it("follows an unsampled parent, and still propagates so the next hop agrees", async () => {
    const { tracer, flush } = setup();
    const span = tracer.start("client", "GET", { traceparent: `00-${T}-${S}-00` });
    expect(span.recording).toBe(false);
    const h: Record<string, string> = {};
    span.inject(h);
    span.setAttributes({ ignored: true });
    span.end();
    expect(h["traceparent"]).toMatch(new RegExp(`^00-${T}-[0-9a-f]{16}-00$`));
    expect(await flush()).toHaveLength(0);
  });

  it("samples no new trace with always_off or a zero ratio, but propagates the unsampled context", async () => {
    const envs: Record<string, string>[] = [
      { OTEL_TRACES_SAMPLER: "parentbased_always_off" },
      { OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0" },
    ];
    for (const env of envs) {
      const { tracer, flush } = setup(env);
      const span = tracer.start("client", "GET", {});
      const h: Record<string, string> = {};
      span.inject(h);
      span.end();
      expect(h["traceparent"]).toMatch(/-00$/);
      // ...while a sampled caller is still followed (parent-based).
      tracer.start("client", "GET", { traceparent: `00-${T}-${S}-01` }).end();
      const spans = await flush();
      expect(spans.map((s) => s.spanContext().traceId)).toEqual([T]);
    }
  });

  it("honours B3: debug forces sampling, `b3: 0` forbids it, a deferred decision uses the root sampler", async () => {
    const { tracer, flush } = setup({ OTEL_TRACES_SAMPLER: "parentbased_always_off" });
    const debug = tracer.start("client", "GET", { b3: `${T}-${S}-d` });
    const dh: Record<string, string> = {};
    debug.inject(dh);
    debug.end();
    expect(dh["b3"]).toBe(`${T}-${dh["traceparent"]!.slice(36, 52)}-d-${S}`);
    const denied = tracer.start("client", "GET", { b3: "0" });
    const nh: Record<string, string> = {};
    denied.inject(nh);
    denied.end();
    expect(denied.recording).toBe(false);
    expect(nh["b3"]).toMatch(/^[0-9a-f]{32}-[0-9a-f]{16}-0$/);
    const deferred = tracer.start("client", "GET", { "x-b3-traceid": T, "x-b3-spanid": S });
    expect(deferred.recording).toBe(false); // the root sampler (always_off) decided
    deferred.end();
    const spans = await flush();
    expect(spans).toHaveLength(1);
    expect(spans[0]!.parentSpanContext?.spanId).toBe(S);
  });

  it("with a sampler that is not parent-based, decides itself whatever the caller said", async () => {
    const { tracer, flush } = setup({ OTEL_TRACES_SAMPLER: "always_on" });
    const span = tracer.start("server", "GET", { traceparent: `00-${T}-${S}-00` });
    const h: Record<string, string> = {};
    span.inject(h);
    span.end();
    expect(h["traceparent"]).toMatch(new RegExp(`^00-${T}-[0-9a-f]{16}-01$`));
    const [s] = await flush();
    expect(s!.parentSpanContext?.spanId).toBe(S);
  });

  it("marks errors with error.type and keeps attributes and events", async () => {
    const { tracer, flush } = setup();
    const span = tracer.start("client", "GET", {});
    span.setAttributes({ "http.response.status_code": 503 });
    span.addEvent("attempt", { "nodemesh.attempt": 1 });
    span.updateName("GET /api/*");
    span.fail("NoHealthyUpstream");
    span.end();
    const [c] = await flush();
    expect(c!.name).toBe("GET /api/*");
    expect(c!.status.code).toBe(2); // ERROR
    expect(c!.attributes).toMatchObject({
      "error.type": "NoHealthyUpstream",
      "http.response.status_code": 503,
    });
    expect(c!.events.map((e) => e.name)).toEqual(["attempt"]);
  });
});

// The tracer's real export path, without a lab: the OTLP/gRPC exporter sends to a TraceService built
// from the official protocol definitions (test/helpers/otlp-receiver.ts), which decodes what arrived;
// then the collector goes away, spans are dropped and counted, and starting and ending spans stays as
// fast as before.
import { afterEach, describe, expect, it } from "vitest";
import { createMeshTracer } from "../../../agent/telemetry/tracing/tracer.ts";
import { tracingSettingsFromEnv } from "../../../agent/telemetry/tracing/settings.ts";
import { startOtlpReceiver, type OtlpReceiver } from "../../helpers/otlp-receiver.ts";

let receiver: OtlpReceiver | undefined;
afterEach(async () => {
  await receiver?.close();
  receiver = undefined;
});

function tracerFor(port: number) {
  const settings = tracingSettingsFromEnv({
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${port}`,
    OTEL_BSP_SCHEDULE_DELAY: "50",
    OTEL_BSP_EXPORT_TIMEOUT: "2000",
    OTEL_EXPORTER_OTLP_TIMEOUT: "1000",
    OTEL_BSP_MAX_QUEUE_SIZE: "50",
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "10",
    OTEL_SERVICE_NAME: "mesh-test",
  });
  return createMeshTracer(settings, { nodeName: "n1", version: "1.2.3" });
}

describe("OTLP/gRPC export", () => {
  it("delivers spans with their ids, parent, attributes, events and resource", async () => {
    receiver = await startOtlpReceiver();
    const tracer = tracerFor(receiver.port);
    const parent = "00f067aa0ba902b7";
    const trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    const span = tracer.start("client", "GET", {
      traceparent: `00-${trace}-${parent}-01`,
      tracestate: "v=1",
    });
    span.setAttributes({
      "http.request.method": "GET",
      "http.response.status_code": 503,
      "nodemesh.ok": false,
    });
    span.addEvent("attempt", { "nodemesh.attempt": 1 });
    span.fail("503");
    span.end();
    const [got] = await receiver.waitFor((s) => s.length === 1);
    expect(got).toMatchObject({
      traceId: trace,
      parentSpanId: parent,
      traceState: "v=1",
      name: "GET",
      kind: "SPAN_KIND_CLIENT",
      status: "STATUS_CODE_ERROR",
      scope: "nodemesh",
      attributes: {
        "http.request.method": "GET",
        "http.response.status_code": 503,
        "error.type": "503",
        "nodemesh.ok": false,
      },
      events: [{ name: "attempt", attributes: { "nodemesh.attempt": 1 } }],
      resource: { "service.name": "mesh-test", "service.version": "1.2.3", "k8s.node.name": "n1" },
    });
    expect(tracer.counts.exported).toBe(1);
    await tracer.shutdown();
  });

  it("drops and counts spans while the collector is down, without slowing the caller", async () => {
    receiver = await startOtlpReceiver();
    const port = receiver.port;
    await receiver.close();
    receiver = undefined;
    const tracer = tracerFor(port);
    const t0 = performance.now();
    for (let i = 0; i < 200; i++) {
      const s = tracer.start("server", "GET", {});
      s.setAttributes({ i });
      s.end();
    }
    const elapsed = performance.now() - t0;
    // 200 spans: one batch of 10 leaves at once, 50 wait in the queue, the other 140 are shed.
    expect(tracer.counts.dropped.queue_full).toBe(140);
    expect(elapsed).toBeLessThan(500);
    const deadline = Date.now() + 10_000;
    while (tracer.counts.dropped.export_failed === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(tracer.counts.dropped.export_failed).toBeGreaterThan(0);
    expect(tracer.counts.exported).toBe(0);
    await tracer.shutdown();
  });
});

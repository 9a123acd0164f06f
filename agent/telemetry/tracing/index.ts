// The tracing entry point of the agent: settings (always, they are validated at startup even when
// tracing is off), the tracer (loaded on demand: the OpenTelemetry SDK and the gRPC exporter are
// several MiB of code an agent without an endpoint never pays for), and its metrics on the agent's page.
import type * as PromClient from "prom-client";
import { registerCounter } from "../series.ts";
import type { DropReason } from "./processor.ts";
import type { MeshTracer, TracerOptions } from "./tracer.ts";
import type { TracingSettings } from "./settings.ts";

export type { MeshTracer, TraceSpan, HeaderMap } from "./tracer.ts";
export type { SpanCounts } from "./processor.ts";
export { tracingSettingsFromEnv, OTEL_ENV, type TracingSettings } from "./settings.ts";

export async function loadTracer(settings: TracingSettings, opts: TracerOptions): Promise<MeshTracer> {
  const { createMeshTracer } = await import("./tracer.ts");
  return createMeshTracer(settings, opts);
}

const REASONS: readonly DropReason[] = ["queue_full", "export_failed"];

/** nodemesh_trace_spans_{exported,dropped}_total, read from the processor's totals at scrape time. */
export function registerTracingMetrics(
  registry: PromClient.Registry,
  tracer: Pick<MeshTracer, "counts">,
): void {
  const c = tracer.counts;
  const dropped = REASONS.map((reason) => ({ labels: { reason }, reason }));
  registerCounter({
    registry,
    series: () => dropped,
    name: "nodemesh_trace_spans_dropped_total",
    help: "Sampled spans the agent did not deliver: queue_full (the bounded queue was full, the collector is slow or down) or export_failed (the collector refused the batch or did not answer in time).",
    value: (s) => c.dropped[s.reason],
  });
  const exported = [{ labels: {} }];
  registerCounter({
    registry,
    series: () => exported,
    name: "nodemesh_trace_spans_exported_total",
    help: "Sampled spans the collector accepted.",
    value: () => c.exported,
  });
}

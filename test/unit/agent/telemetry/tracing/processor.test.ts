// The bounded batch processor: a slow or dead collector costs dropped spans (counted by reason), never
// a blocked caller; batches leave on the schedule or when full, one export at a time.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
import { BoundedBatchProcessor } from "../../../../../agent/telemetry/tracing/processor.ts";

type Result = Parameters<SpanExporter["export"]>[1] extends (r: infer R) => void ? R : never;

function span(sampled = true): ReadableSpan {
  return { spanContext: () => ({ traceId: "t", spanId: "s", traceFlags: sampled ? 1 : 0 }) } as ReadableSpan;
}

/** An exporter whose calls the test answers by hand. */
function manualExporter() {
  const calls: { spans: ReadableSpan[]; done: (r: Result) => void }[] = [];
  const exporter: SpanExporter = {
    export: (spans, done) => void calls.push({ spans, done }),
    shutdown: vi.fn(async () => {}),
  };
  return { exporter, calls };
}

function processor(
  exporter: SpanExporter,
  over: Partial<ConstructorParameters<typeof BoundedBatchProcessor>[0]> = {},
) {
  return new BoundedBatchProcessor({
    exporter,
    maxQueueSize: 4,
    maxExportBatchSize: 2,
    scheduleDelayMs: 1000,
    exportTimeoutMs: 5000,
    ...over,
  });
}

beforeEach(() => void vi.useFakeTimers());
afterEach(() => void vi.useRealTimers());

describe("BoundedBatchProcessor", () => {
  it("exports on the schedule, or at once when a batch is full", async () => {
    const { exporter, calls } = manualExporter();
    const p = processor(exporter);
    p.onEnd(span());
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(1);
    calls[0]!.done({ code: 0 });
    await vi.advanceTimersByTimeAsync(0);
    p.onEnd(span());
    p.onEnd(span());
    expect(calls).toHaveLength(2); // a full batch does not wait for the timer
    expect(calls[1]!.spans).toHaveLength(2);
    calls[1]!.done({ code: 0 });
    await vi.advanceTimersByTimeAsync(0);
    expect(p.counts).toEqual({ exported: 3, dropped: { queue_full: 0, export_failed: 0 } });
  });

  it("ignores spans that are not sampled", async () => {
    const { exporter, calls } = manualExporter();
    const p = processor(exporter);
    p.onEnd(span(false));
    await vi.advanceTimersByTimeAsync(2000);
    expect(calls).toHaveLength(0);
  });

  it("drops and counts what exceeds the queue while the collector hangs, returning at once", async () => {
    const { exporter, calls } = manualExporter();
    const states: boolean[] = [];
    const p = processor(exporter, { onExportState: (failing) => states.push(failing) });
    for (let i = 0; i < 2; i++) p.onEnd(span()); // batch 1 leaves and hangs
    for (let i = 0; i < 6; i++) p.onEnd(span()); // 4 fit in the queue, 2 are dropped
    expect(calls).toHaveLength(1);
    expect(p.counts.dropped.queue_full).toBe(2);
    // The hung export is given up at its deadline: its spans count as failed, the next batch leaves.
    await vi.advanceTimersByTimeAsync(5000);
    expect(p.counts.dropped.export_failed).toBe(2);
    expect(calls).toHaveLength(2);
    expect(states).toEqual([true]);
    // A late answer to the abandoned export changes nothing.
    calls[0]!.done({ code: 0 });
    calls[1]!.done({ code: 0 });
    await vi.advanceTimersByTimeAsync(0);
    expect(states).toEqual([true, false]);
    expect(p.counts.exported).toBe(2);
    expect(calls).toHaveLength(3);
  });

  it("counts a refused batch and an exporter that throws as export_failed", async () => {
    const { exporter, calls } = manualExporter();
    const p = processor(exporter);
    p.onEnd(span());
    p.onEnd(span());
    calls[0]!.done({ code: 1, error: new Error("UNAVAILABLE") });
    await vi.advanceTimersByTimeAsync(0);
    expect(p.counts.dropped.export_failed).toBe(2);
    const throwing = processor({
      export: () => {
        throw new Error("boom");
      },
      shutdown: async () => {},
    });
    throwing.onEnd(span());
    await vi.advanceTimersByTimeAsync(1000);
    expect(throwing.counts.dropped.export_failed).toBe(1);
  });

  it("flushes what is queued on shutdown, then shuts the exporter and takes no more spans", async () => {
    const exported: number[] = [];
    const exporter: SpanExporter = {
      export: (spans, done) => {
        exported.push(spans.length);
        done({ code: 0 });
      },
      shutdown: vi.fn(async () => {}),
    };
    const p = processor(exporter, { maxQueueSize: 10, maxExportBatchSize: 2 });
    for (let i = 0; i < 3; i++) p.onEnd(span());
    await p.shutdown();
    expect(exported).toEqual([2, 1]);
    expect(exporter.shutdown).toHaveBeenCalledOnce();
    p.onEnd(span());
    expect(p.counts.exported).toBe(3);
  });
});

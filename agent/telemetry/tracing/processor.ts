// A batch span processor with a bounded queue that never makes a request wait: ended spans are
// appended to an array (or dropped and counted when it is full), and batches leave on a timer, one
// export in flight at a time, each bounded by a deadline. A collector that is down or slow so costs
// memory up to the bound and the spans past it, never latency. The SDK's BatchSpanProcessor behaves
// alike but drops silently; the mesh has to say how much it lost (nodemesh_trace_spans_dropped_total).
import type { Context } from "@opentelemetry/api";
import type { ReadableSpan, Span, SpanExporter, SpanProcessor } from "@opentelemetry/sdk-trace-base";

export type DropReason = "queue_full" | "export_failed";

/** Running totals, read by the metrics page (tracing/metrics.ts) at scrape time. */
export interface SpanCounts {
  exported: number;
  dropped: Record<DropReason, number>;
}

export interface BoundedBatchOptions {
  readonly exporter: SpanExporter;
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  readonly scheduleDelayMs: number;
  readonly exportTimeoutMs: number;
  /** Called when exports start failing (once per streak) and when they recover. */
  readonly onExportState?: (failing: boolean, error: Error | undefined) => void;
}

/** ExportResultCode.SUCCESS in @opentelemetry/core (a const enum there, 0 on the wire of the API). */
const EXPORT_SUCCESS = 0;

/**
 * Invariants: the queue never holds more than maxQueueSize spans; at most one export is in flight; every
 * sampled span that ended is counted exactly once, as exported or as dropped (with its reason); the
 * timer never keeps the process alive (unref).
 */
export class BoundedBatchProcessor implements SpanProcessor {
  readonly counts: SpanCounts = { exported: 0, dropped: { queue_full: 0, export_failed: 0 } };
  readonly #opts: BoundedBatchOptions;
  #queue: ReadableSpan[] = [];
  #timer: NodeJS.Timeout | undefined;
  #inflight: Promise<void> | undefined;
  #failing = false;
  #shutdown = false;

  constructor(opts: BoundedBatchOptions) {
    this.#opts = opts;
  }

  onStart(_span: Span, _parentContext: Context): void {}

  onEnd(span: ReadableSpan): void {
    if (this.#shutdown || (span.spanContext().traceFlags & 1) === 0) return;
    if (this.#queue.length >= this.#opts.maxQueueSize) {
      this.counts.dropped.queue_full++;
      return;
    }
    this.#queue.push(span);
    if (this.#queue.length >= this.#opts.maxExportBatchSize) this.#kick();
    else this.#arm();
  }

  /** Exports everything queued now (one batch after the other); resolves when done or failed. */
  async forceFlush(): Promise<void> {
    while (this.#queue.length > 0 || this.#inflight) {
      if (this.#inflight) await this.#inflight;
      else await this.#exportBatch();
    }
  }

  async shutdown(): Promise<void> {
    if (this.#shutdown) return;
    await this.forceFlush();
    this.#shutdown = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#opts.exporter.shutdown();
  }

  /** The queue has a full batch: export at once unless one is already leaving. */
  #kick(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#inflight) void this.#exportBatch();
  }

  #arm(): void {
    if (this.#timer || this.#inflight) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#exportBatch();
    }, this.#opts.scheduleDelayMs);
    this.#timer.unref();
  }

  #exportBatch(): Promise<void> {
    if (this.#inflight) return this.#inflight;
    const batch = this.#queue.splice(0, this.#opts.maxExportBatchSize);
    if (batch.length === 0) return Promise.resolve();
    this.#inflight = this.#send(batch).finally(() => {
      this.#inflight = undefined;
      if (this.#queue.length >= this.#opts.maxExportBatchSize) this.#kick();
      else if (this.#queue.length > 0) this.#arm();
    });
    return this.#inflight;
  }

  /** One export, settled by the exporter's callback or the deadline, whichever comes first. */
  #send(batch: ReadableSpan[]): Promise<void> {
    return new Promise((resolve) => {
      let settled = false;
      const settle = (ok: boolean, error: Error | undefined) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        if (ok) this.counts.exported += batch.length;
        else this.counts.dropped.export_failed += batch.length;
        if (this.#failing !== !ok) {
          this.#failing = !ok;
          this.#opts.onExportState?.(!ok, error);
        }
        resolve();
      };
      const deadline = setTimeout(
        () => settle(false, new Error(`export did not finish within ${this.#opts.exportTimeoutMs} ms`)),
        this.#opts.exportTimeoutMs,
      );
      deadline.unref();
      try {
        this.#opts.exporter.export(batch, (result) =>
          result.code === EXPORT_SUCCESS
            ? settle(true, undefined)
            : settle(false, result.error ?? new Error("the exporter reported a failure")),
        );
      } catch (err) {
        settle(false, err instanceof Error ? err : new Error(String(err)));
      }
    });
  }
}

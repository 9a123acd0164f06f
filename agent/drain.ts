// Graceful shutdown as one reusable piece (ztunnel `drain.rs`): stop taking new work, wait until the
// in-flight count reaches zero or the deadline passes, then force the rest closed.
import { setTimeout as sleep } from "node:timers/promises";

export interface DrainResult {
  readonly drained: boolean;
  readonly remaining: number;
  readonly waitedMs: number;
}

/**
 * `stopAccepting` runs first; then `inflight()` is polled every `pollMs` until 0 or `deadlineMs`;
 * `force` runs in every case (it closes whatever is left, a no-op when drained).
 */
export async function runWithDrain(opts: {
  stopAccepting: () => Promise<void> | void;
  inflight: () => number;
  force: () => Promise<void> | void;
  deadlineMs: number;
  pollMs?: number;
}): Promise<DrainResult> {
  const start = Date.now();
  await opts.stopAccepting();
  while (opts.inflight() > 0 && Date.now() - start < opts.deadlineMs) {
    await sleep(Math.min(opts.pollMs ?? 50, Math.max(1, opts.deadlineMs - (Date.now() - start))));
  }
  const remaining = opts.inflight();
  await opts.force();
  return { drained: remaining === 0, remaining, waitedMs: Date.now() - start };
}

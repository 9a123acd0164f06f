// The retry layer: retries a request whose try failed in a retryable way (HTTPRoute `retry` codes, else
// the TrafficPolicy's, default every 5xx; connect failures; resets; refused streams; per-try timeouts),
// each retry to another endpoint where one exists (`ex.triedEndpoints`), after exponential backoff with
// full jitter or the server's `Retry-After` (429/503) up to the backoff cap, within the destination's
// retry budget. POST and PATCH are retried only when the try provably never reached the application,
// unless the TrafficPolicy opts in. When retries run out the last answer is returned.
import type { Layer } from "../stack/compose.ts";
import { backoffDelayMs, retryAfterMs } from "../retry/backoff.ts";
import type { RetryBudgets } from "../retry/budget.ts";
import type { ResilienceMetrics } from "../telemetry/resilience.ts";
import type { Exchange, ResponseHead } from "./exchange.ts";
import { headerValue } from "./headers.ts";
import { ReplayBody } from "./replay-body.ts";
import { resilienceOf, type RetryPolicy } from "./resilience-policy.ts";
import { TIMEOUT_FLAG } from "./timeout.ts";

export const ATTEMPT_HEADER = "x-nodemesh-attempt";
export const RETRY_LIMIT_FLAG = "UpstreamRetryLimitExceeded";
/** RFC 9110 §9.2.2 idempotent methods; POST, PATCH and CONNECT are not. */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

export type RetryReason = "connect-failure" | "refused-stream" | "reset" | "per-try-timeout" | "status";

/** Why `res` may be retried, or undefined. `mayHaveReached` = the method may be replayed after it reached the app. */
export function retryReason(
  res: ResponseHead,
  codes: ReadonlySet<number>,
  mayReplayReached: boolean,
): RetryReason | undefined {
  if (res.unsent) return res.flag === "UpstreamConnectionTermination" ? "refused-stream" : "connect-failure";
  if (!mayReplayReached) return undefined;
  if (res.flag === TIMEOUT_FLAG) return "per-try-timeout";
  if (res.flag === "UpstreamConnectionTermination") return "reset";
  // This agent's own answers (no endpoint left, open breakers) are not an upstream's status to retry.
  if (res.reason !== undefined) return undefined;
  return codes.has(res.status) ? "status" : undefined;
}

/** The route's GEP-1731 `retry` over the destination's policy. */
export function effectiveRetry(ex: Exchange): RetryPolicy {
  const base = resilienceOf(ex.view, (ex.backend ?? ex.servicePort).service).retry;
  const r = ex.rule?.retry;
  if (!r) return base;
  const baseMs = r.backoffMs ?? base.backoff.baseMs;
  return {
    ...base,
    attempts: r.attempts ?? base.attempts,
    codes: r.codes.length > 0 ? new Set(r.codes) : base.codes,
    backoff: { baseMs, maxMs: Math.max(base.backoff.maxMs, baseMs) },
  };
}

export function retryLayer(deps: {
  readonly budgets: RetryBudgets;
  readonly metrics?: ResilienceMetrics;
  readonly random?: () => number;
}): Layer<Exchange, ResponseHead> {
  return (next) => async (ex) => {
    const policy = effectiveRetry(ex);
    if (policy.attempts === 0) {
      ex.request.headers[ATTEMPT_HEADER] = "1";
      return next(ex);
    }
    const sp = ex.backend ?? ex.servicePort;
    const cancel = ex.trySignal; // the whole-request deadline, which also ends backoff waits
    const budget = deps.budgets.get(sp.key, policy.budget);
    budget.deposit();
    const body = ex.body ? new ReplayBody(ex.body, policy.maxBodyBytes) : undefined;
    const mayReplayReached = IDEMPOTENT.has(ex.request.method) || policy.retryNonIdempotent;
    ex.triedEndpoints = new Set();
    for (let attempt = 1; ; attempt++) {
      ex.request.headers[ATTEMPT_HEADER] = String(attempt);
      if (body) ex.body = body.view();
      ex.requestBytes = 0;
      ex.trySignal = cancel;
      const res = await next(ex);
      ex.attempts = attempt;
      const reason = retryReason(res, policy.codes, mayReplayReached);
      if (!reason) return res;
      if (attempt > policy.attempts)
        return policy.attempts > 0 ? { ...res, flag: res.flag ?? RETRY_LIMIT_FLAG } : res;
      if ((body && !body.replayable) || ex.signal.aborted || cancel?.aborted) return res;
      if (!budget.tryWithdraw()) {
        deps.metrics?.budgetExhausted(sp.key);
        return res;
      }
      deps.metrics?.retry(sp.key, reason);
      res.body?.destroy();
      await sleep(waitMs(res, attempt, policy, deps.random), ex.signal, cancel);
      if (ex.signal.aborted || cancel?.aborted) return res;
    }
  };
}

function waitMs(res: ResponseHead, attempt: number, policy: RetryPolicy, random?: () => number): number {
  if (res.status === 429 || res.status === 503) {
    const asked = retryAfterMs(headerValue(res.headers, "retry-after") || undefined, policy.backoff.maxMs);
    if (asked !== undefined) return asked;
  }
  return backoffDelayMs(attempt, policy.backoff, random);
}

function sleep(ms: number, ...signals: (AbortSignal | undefined)[]): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      for (const s of signals) s?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    for (const s of signals) s?.addEventListener("abort", done, { once: true });
  });
}

// Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): the
// n-th retry waits a uniformly random time in [0, min(cap, base · 2^(n-1))]. Full jitter spreads the
// retries of many clients that failed together, so a recovering backend does not see them in lockstep.
// Generic: knows nothing of HTTP; `random` is injectable so tests are deterministic.

export interface BackoffSettings {
  /** The first retry's ceiling in milliseconds (the brief's 100 ms: ceilings 100/200/400 ms). */
  readonly baseMs: number;
  /** No wait exceeds this, however many retries came before. */
  readonly maxMs: number;
}

/** Ceiling of the wait before retry number `retry` (1 = the first retry). */
export function backoffCeilingMs(retry: number, s: BackoffSettings): number {
  if (!Number.isInteger(retry) || retry < 1)
    throw new RangeError(`retry must be an integer >= 1, got ${retry}`);
  if (s.baseMs < 0 || s.maxMs < 0) throw new RangeError("backoff baseMs and maxMs must not be negative");
  // 2^(retry-1) overflows to Infinity long after the cap; Math.min keeps it finite.
  return Math.min(s.maxMs, s.baseMs * 2 ** (retry - 1));
}

/** The wait before retry number `retry`, full jitter: uniform in [0, ceiling]. */
export function backoffDelayMs(
  retry: number,
  s: BackoffSettings,
  random: () => number = Math.random,
): number {
  return Math.floor(random() * backoffCeilingMs(retry, s));
}

/**
 * The wait a server asked for with `Retry-After` (delta-seconds or an HTTP date), capped at `maxMs`;
 * undefined when the value is absent or unparseable, so the caller falls back to its own backoff.
 */
export function retryAfterMs(
  value: string | undefined,
  maxMs: number,
  now: number = Date.now(),
): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  let ms: number;
  if (/^\d+$/.test(v)) ms = Number(v) * 1000;
  else {
    // An HTTP date always names its weekday and month; Date.parse alone would read "-1" as a year.
    const at = /[A-Za-z]/.test(v) ? Date.parse(v) : NaN;
    if (Number.isNaN(at)) return undefined;
    ms = Math.max(0, at - now);
  }
  return Math.min(ms, maxMs);
}

// Backoff ceilings double from the base up to the cap, full jitter stays within [0, ceiling], bad
// inputs are refused, and Retry-After parses both forms and is capped.
import { describe, expect, it } from "vitest";
import { backoffCeilingMs, backoffDelayMs, retryAfterMs } from "../../../../agent/retry/backoff.ts";

const s = { baseMs: 100, maxMs: 1000 };

describe("backoff", () => {
  it("doubles the ceiling per retry up to the cap", () => {
    expect([1, 2, 3, 4, 5, 60].map((n) => backoffCeilingMs(n, s))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });
  it("jitters uniformly within [0, ceiling]", () => {
    expect(backoffDelayMs(3, s, () => 0)).toBe(0);
    expect(backoffDelayMs(3, s, () => 0.5)).toBe(200);
    expect(backoffDelayMs(3, s, () => 0.999999)).toBe(399);
  });
  it("refuses a retry number below 1 and negative settings", () => {
    expect(() => backoffCeilingMs(0, s)).toThrow(/retry must be an integer >= 1/);
    expect(() => backoffCeilingMs(1.5, s)).toThrow(/retry must be an integer/);
    expect(() => backoffCeilingMs(1, { baseMs: -1, maxMs: 5 })).toThrow(/must not be negative/);
  });
});

describe("retryAfterMs", () => {
  it("reads delta-seconds and caps them", () => {
    expect(retryAfterMs("2", 5000)).toBe(2000);
    expect(retryAfterMs(" 120 ", 5000)).toBe(5000);
  });
  it("reads an HTTP date relative to now", () => {
    const now = Date.parse("Tue, 01 Dec 2026 10:00:00 GMT");
    expect(retryAfterMs("Tue, 01 Dec 2026 10:00:03 GMT", 5000, now)).toBe(3000);
    expect(retryAfterMs("Tue, 01 Dec 2026 09:00:00 GMT", 5000, now)).toBe(0);
  });
  it("gives undefined for absent or unparseable values", () => {
    expect(retryAfterMs(undefined, 5000)).toBeUndefined();
    expect(retryAfterMs("soon", 5000)).toBeUndefined();
    expect(retryAfterMs("-1", 5000)).toBeUndefined();
  });
});

// The retry budget: the floor alone, the ratio of recent requests, expiry after the TTL, and refusal
// of bad settings. Fake time throughout.
import { describe, expect, it } from "vitest";
import { RetryBudget } from "../../../../agent/retry/budget.ts";

function budget(ratio: number, floor: number, ttlMs = 10_000) {
  let t = 0;
  const b = new RetryBudget({ retryRatio: ratio, minRetriesPerSecond: floor, ttlMs }, () => t);
  return { b, advance: (ms: number) => (t += ms) };
}

const drain = (b: RetryBudget) => {
  let n = 0;
  while (b.tryWithdraw()) n++;
  return n;
};

describe("RetryBudget", () => {
  it("allows the floor (per second over the TTL) with no traffic", () => {
    const { b } = budget(0.2, 1, 10_000);
    expect(drain(b)).toBe(10);
    expect(b.tryWithdraw()).toBe(false);
  });
  it("earns retryRatio of a retry per request", () => {
    const { b } = budget(0.2, 0);
    for (let i = 0; i < 100; i++) b.deposit();
    expect(drain(b)).toBe(20);
  });
  it("forgets requests and retries older than the TTL", () => {
    const { b, advance } = budget(0.5, 0, 1000);
    for (let i = 0; i < 10; i++) b.deposit();
    expect(drain(b)).toBe(5);
    advance(500);
    expect(b.tryWithdraw()).toBe(false);
    advance(600); // the first deposits and retries are now outside the window
    expect(b.available()).toBe(0);
    for (let i = 0; i < 4; i++) b.deposit();
    expect(drain(b)).toBe(2);
  });
  it("keeps a retry storm at ratio × the request rate", () => {
    const { b, advance } = budget(0.2, 0, 10_000);
    let retries = 0;
    for (let i = 0; i < 1000; i++) {
      b.deposit();
      for (let r = 0; r < 3; r++) if (b.tryWithdraw()) retries++;
      advance(10);
    }
    expect(retries).toBeLessThanOrEqual(200);
    expect(retries).toBeGreaterThanOrEqual(190);
  });
  it("refuses bad settings, naming the field", () => {
    expect(() => new RetryBudget({ retryRatio: -1, minRetriesPerSecond: 0, ttlMs: 1000 })).toThrow(
      /retryRatio/,
    );
    expect(() => new RetryBudget({ retryRatio: 0, minRetriesPerSecond: NaN, ttlMs: 1000 })).toThrow(
      /minRetriesPerSecond/,
    );
    expect(() => new RetryBudget({ retryRatio: 0, minRetriesPerSecond: 0, ttlMs: 1 })).toThrow(/ttlMs/);
  });
});

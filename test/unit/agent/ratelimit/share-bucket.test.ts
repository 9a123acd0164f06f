// The share bucket with fake time: continuous refill at a fractional rate, capped at the burst; a new
// share keeps the tokens earned (no fresh burst per rebalance) and applies its rate from then on; exact
// retry-after; a zero share refuses with a bounded wait; bad shares are refused with the field named.
import { describe, expect, it } from "vitest";
import { ShareBucket } from "../../../../agent/ratelimit/share-bucket.ts";

function clock() {
  let t = 1000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const drain = (b: ShareBucket) => {
  let n = 0;
  while (b.tryTake()) n += 1;
  return n;
};

describe("ShareBucket", () => {
  it("starts full, then admits the rate over time (33.5 rps ≈ 335 in 10 s)", () => {
    const c = clock();
    const b = new ShareBucket(33.5, 5, c.now);
    expect(drain(b)).toBe(5);
    let admitted = 0;
    for (let i = 0; i < 1000; i++) {
      c.advance(10);
      admitted += drain(b);
    }
    expect(admitted).toBe(335);
  });

  it("never holds more than the burst after a long idle spell", () => {
    const c = clock();
    const b = new ShareBucket(100, 3, c.now);
    c.advance(60_000);
    expect(b.remaining).toBe(3);
  });

  it("keeps the tokens across a new share (clamped to the new burst), so a rebalance admits no extra burst", () => {
    const c = clock();
    const b = new ShareBucket(10, 10, c.now);
    drain(b);
    c.advance(300); // 3 tokens earned at 10 rps
    b.set(100, 50);
    expect(b.remaining).toBe(3);
    c.advance(100); // +10 at the new rate
    expect(b.remaining).toBe(13);
    b.set(1, 2);
    expect(b.remaining).toBe(2);
    expect([b.requestsPerSecond, b.burst]).toEqual([1, 2]);
  });

  it("says exactly when the next token arrives", () => {
    const c = clock();
    const b = new ShareBucket(4, 1, c.now);
    expect(b.retryAfterMs()).toBe(0);
    b.tryTake();
    expect(b.retryAfterMs()).toBe(250);
    c.advance(100);
    expect(b.retryAfterMs()).toBe(150);
  });

  it("refuses everything at a zero share, with a bounded wait", () => {
    const c = clock();
    const b = new ShareBucket(0, 1, c.now);
    expect(b.tryTake()).toBe(true);
    c.advance(10_000);
    expect(b.tryTake()).toBe(false);
    expect(b.retryAfterMs()).toBe(2000);
  });

  it("refuses a share that is negative, not finite, or with a burst under 1", () => {
    expect(() => new ShareBucket(-1, 1)).toThrow(/requestsPerSecond must be a finite number >= 0/);
    expect(() => new ShareBucket(Number.NaN, 1)).toThrow(/requestsPerSecond/);
    expect(() => new ShareBucket(1, 0.5)).toThrow(/burst must be a finite number >= 1/);
    expect(() => new ShareBucket(1, Infinity)).toThrow(/burst/);
  });
});

// The token bucket with fake time: starts full, refills in whole intervals up to the cap, says when the
// next token comes, refuses bad settings; TokenBuckets keys buckets and bounds their number.
import { describe, expect, it } from "vitest";
import { TokenBucket, TokenBuckets } from "../../../../agent/ratelimit/token-bucket.ts";

function bucket(maxTokens: number, tokensPerFill: number, fillIntervalMs: number) {
  let t = 1000;
  const b = new TokenBucket({ maxTokens, tokensPerFill, fillIntervalMs }, () => t);
  return { b, advance: (ms: number) => (t += ms) };
}

const takeAll = (b: TokenBucket) => {
  let n = 0;
  while (b.tryTake()) n++;
  return n;
};

describe("TokenBucket", () => {
  it("starts full and empties one token per request", () => {
    const { b } = bucket(5, 1, 1000);
    expect(takeAll(b)).toBe(5);
    expect(b.tryTake()).toBe(false);
  });
  it("refills tokensPerFill per whole interval, never above maxTokens", () => {
    const { b, advance } = bucket(10, 3, 1000);
    takeAll(b);
    advance(999);
    expect(b.remaining).toBe(0);
    advance(1);
    expect(b.remaining).toBe(3);
    advance(2500);
    expect(b.remaining).toBe(9);
    advance(10_000);
    expect(b.remaining).toBe(10);
  });
  it("keeps partial intervals: refills stay on the interval grid", () => {
    const { b, advance } = bucket(1, 1, 1000);
    b.tryTake();
    advance(1500);
    expect(b.tryTake()).toBe(true);
    advance(500); // 2000 ms after the start: the second interval ends now
    expect(b.tryTake()).toBe(true);
  });
  it("says how long until the next token", () => {
    const { b, advance } = bucket(1, 1, 1000);
    expect(b.retryAfterMs()).toBe(0);
    b.tryTake();
    advance(300);
    expect(b.retryAfterMs()).toBe(700);
  });
  it("admits the configured rate over a long run", () => {
    const { b, advance } = bucket(10, 10, 1000);
    let admitted = 0;
    for (let i = 0; i < 10_000; i++) {
      if (b.tryTake()) admitted++;
      advance(1); // 1000 requests per second offered, 10 per second allowed, for 10 s
    }
    expect(admitted).toBeGreaterThanOrEqual(100);
    expect(admitted).toBeLessThanOrEqual(110);
  });
  it("refuses bad settings, naming the field", () => {
    expect(() => bucket(0, 1, 1000)).toThrow(/maxTokens/);
    expect(() => bucket(1, 1.5, 1000)).toThrow(/tokensPerFill/);
    expect(() => bucket(1, 1, 0)).toThrow(/fillIntervalMs/);
  });
});

describe("TokenBuckets", () => {
  it("keeps one bucket per key and evicts the least recently used past maxKeys", () => {
    const set = new TokenBuckets(
      { maxTokens: 1, tokensPerFill: 1, fillIntervalMs: 1000 },
      { now: () => 0, maxKeys: 2 },
    );
    expect(set.get("a").tryTake()).toBe(true);
    expect(set.get("a").tryTake()).toBe(false);
    set.get("b");
    set.get("a"); // a is now the most recent
    set.get("c"); // evicts b
    expect(set.size).toBe(2);
    expect(set.get("a").tryTake()).toBe(false); // a kept its state
  });
  it("validates its settings up front", () => {
    expect(() => new TokenBuckets({ maxTokens: 1, tokensPerFill: 0, fillIntervalMs: 1 })).toThrow(
      /tokensPerFill/,
    );
  });
});

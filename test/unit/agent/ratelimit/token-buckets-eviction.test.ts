// TokenBuckets under a flood of keys (one bucket per caller identity): memory stays within maxKeys,
// full (idle) buckets go first and losslessly, a busy bucket is kept over full ones, and only when the
// oldest buckets all still count is the least recently used one evicted (and counted).
import { describe, expect, it } from "vitest";
import { TokenBuckets } from "../../../../agent/ratelimit/token-bucket.ts";

function buckets(maxKeys: number) {
  let t = 0;
  const set = new TokenBuckets(
    { maxTokens: 2, tokensPerFill: 2, fillIntervalMs: 1000 },
    { now: () => t, maxKeys },
  );
  return { set, advance: (ms: number) => (t += ms) };
}

describe("TokenBuckets eviction", () => {
  it("never holds more than maxKeys buckets, however many keys arrive", () => {
    const { set } = buckets(100);
    for (let i = 0; i < 10_000; i++) set.get(`spiffe://td/ns/x/sa/attacker-${i}`).tryTake();
    expect(set.size).toBe(100);
  });

  it("drops full buckets before a busy one, so a flood of idle keys cannot reset a limited caller", () => {
    const { set } = buckets(3);
    const victim = set.get("victim");
    victim.tryTake();
    victim.tryTake();
    expect(victim.tryTake()).toBe(false);
    // The victim is now the least recently used; newcomers are full (untouched) buckets.
    for (let i = 0; i < 20; i++) set.get(`idle-${i}`);
    expect(set.size).toBe(3);
    expect(set.get("victim").tryTake()).toBe(false); // still empty: its state survived the flood
    expect(set.evictions).toBe(0);
  });

  it("evicts the least recently used bucket when every old bucket still counts, and counts it", () => {
    const { set } = buckets(2);
    set.get("a").tryTake();
    set.get("b").tryTake();
    set.get("c").tryTake(); // a and b are both partly used: a, the older, goes
    expect(set.size).toBe(2);
    expect(set.evictions).toBe(1);
    expect(set.get("a").remaining).toBe(2); // a fresh bucket
    expect(set.evictions).toBe(2); // and making room for it evicted b
  });

  it("treats a bucket that refilled while idle as full again (dropping it loses nothing)", () => {
    const { set, advance } = buckets(1);
    set.get("a").tryTake();
    advance(1000);
    set.get("b");
    expect(set.evictions).toBe(0);
  });

  it("refuses a bound below 1", () => {
    expect(
      () => new TokenBuckets({ maxTokens: 1, tokensPerFill: 1, fillIntervalMs: 1 }, { maxKeys: 0 }),
    ).toThrow(/maxKeys/);
  });
});

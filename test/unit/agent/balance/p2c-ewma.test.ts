// PEAK_EWMA: the estimate's peak sensitivity and decay, the pending factor, and P2C behaviour over
// simulated traffic with a fake clock and a seeded random source.
import { describe, expect, it } from "vitest";
import { ActiveConnections, createBalancer } from "../../../../agent/balance/balancer.ts";
import { DEFAULT_RTT_MS, PeakEwma } from "../../../../agent/balance/p2c-ewma.ts";
import { FakeClock, seededRandom, tally } from "./fakes.ts";

function setup(seed = 1, defaultRttMs = DEFAULT_RTT_MS) {
  const clock = new FakeClock();
  const active = new ActiveConnections();
  const ewma = new PeakEwma(active, { now: clock.now, random: seededRandom(seed), defaultRttMs });
  return { clock, active, ewma };
}

/** Serves `n` sequential requests `stepMs` apart; each endpoint answers in its fixed latency. */
function serve(
  s: ReturnType<typeof setup>,
  keys: string[],
  latency: Record<string, number>,
  n: number,
  stepMs = 1,
) {
  return tally(n, () => {
    const k = s.ewma.pick(keys) as string;
    s.clock.advance(stepMs);
    s.ewma.observe(k, latency[k] ?? 0, false);
    return k;
  });
}

describe("peak-EWMA estimate", () => {
  it("starts unseen endpoints at the default RTT and multiplies by pending + 1", () => {
    const { active, ewma } = setup();
    expect(ewma.cost("a")).toBe(DEFAULT_RTT_MS);
    active.inc("a");
    active.inc("a");
    expect(ewma.cost("a")).toBe(DEFAULT_RTT_MS * 3);
  });

  it("jumps to a latency above the estimate at once (peak sensitivity)", () => {
    const { ewma } = setup();
    ewma.observe("a", 400, false);
    expect(ewma.estimateMs("a")).toBe(400);
  });

  it("blends a lower latency in with exp(-elapsed/decay) and decays while idle", () => {
    const { clock, ewma } = setup();
    ewma.observe("a", 100, false);
    clock.advance(10_000); // one time constant
    ewma.observe("a", 10, false);
    const d = Math.exp(-1);
    expect(ewma.estimateMs("a")).toBeCloseTo(100 * d + 10 * (1 - d), 9);
    const before = ewma.estimateMs("a");
    clock.advance(5_000);
    expect(ewma.estimateMs("a")).toBeCloseTo(before * Math.exp(-0.5), 9);
  });

  it("counts a failure as at least the failure penalty, so fast failures do not attract traffic", () => {
    const { ewma } = setup();
    ewma.observe("a", 2, true);
    expect(ewma.estimateMs("a")).toBe(1000);
  });

  it("forgets endpoints idle for six time constants (they start over as unseen)", () => {
    const { clock, ewma } = setup();
    ewma.observe("gone", 500, false);
    clock.advance(60_000);
    ewma.observe("b", 5, false); // triggers the sweep
    expect(ewma.estimateMs("gone")).toBe(DEFAULT_RTT_MS);
  });

  it("rejects bad latencies and options, naming the field", () => {
    const { ewma } = setup();
    expect(() => ewma.observe("a", Number.NaN, false)).toThrow(
      /latencyMs must be a finite number ≥ 0, got NaN/,
    );
    expect(() => ewma.observe("a", -1, false)).toThrow(/latencyMs/);
    const active = new ActiveConnections();
    expect(() => new PeakEwma(active, { decayMs: 0 })).toThrow(/decayMs must be a finite number > 0, got 0/);
    expect(() => new PeakEwma(active, { defaultRttMs: -5 })).toThrow(/defaultRttMs/);
    expect(() => new PeakEwma(active, { failurePenaltyMs: Infinity })).toThrow(/failurePenaltyMs/);
  });
});

describe("P2C over peak-EWMA", () => {
  it("sends most requests to the fast endpoint", () => {
    const s = setup(7);
    const counts = serve(s, ["fast", "slow1", "slow2"], { fast: 5, slow1: 50, slow2: 50 }, 3000);
    // P2C's ceiling: the cheapest of 3 wins whenever it is one of the two drawn, 2/3 of picks (random: 1/3).
    expect(counts.get("fast")).toBeGreaterThan(1800);
  });

  it("moves away from an endpoint that turns slow, and back when it recovers", () => {
    const s = setup(11);
    const keys = ["a", "b", "c"];
    serve(s, keys, { a: 5, b: 20, c: 20 }, 500);
    const slow = serve(s, keys, { a: 800, b: 20, c: 20 }, 1000);
    expect(slow.get("a") ?? 0).toBeLessThan(100);
    // Healthy again: its 800 ms peak decays (below b and c's 20 ms after τ·ln 40 ≈ 37 s) while b and
    // c keep answering, then it wins its share back.
    serve(s, keys, { a: 5, b: 20, c: 20 }, 2000, 20);
    const healed = serve(s, keys, { a: 5, b: 20, c: 20 }, 1000, 20);
    expect(healed.get("a")).toBeGreaterThan(550); // of a ceiling of 2/3 ≈ 667
  });

  it("weighs pending requests: a busy fast endpoint loses to an idle slower one", () => {
    // A 1 ms default RTT so that the first observations are peaks and set the estimates exactly.
    const { active, ewma } = setup(1, 1);
    ewma.observe("fast", 10, false);
    ewma.observe("idle", 25, false);
    for (let i = 0; i < 5; i++) active.inc("fast"); // cost 10 × 6 = 60 > 25 × 1
    expect(ewma.pick(["fast", "idle"])).toBe("idle");
    for (let i = 0; i < 4; i++) active.dec("fast"); // cost 10 × 2 = 20 < 25
    expect(ewma.pick(["fast", "idle"])).toBe("fast");
  });

  it("is what the factory builds for PEAK_EWMA, and handles empty and single candidate sets", () => {
    const b = createBalancer("PEAK_EWMA", new ActiveConnections());
    expect(b.kind).toBe("PEAK_EWMA");
    expect(b.pick([])).toBeUndefined();
    expect(b.pick(["only"])).toBe("only");
    expect(typeof b.observe).toBe("function");
  });
});

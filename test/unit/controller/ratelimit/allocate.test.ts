// The global rate split as a pure function: shares proportional to demand above a per-node floor, the sum
// never above R (rounding included), silent nodes reserved what they may be enforcing (their last share,
// else R / N), equal split without demand, bursts split like the rate.
import { describe, expect, it } from "vitest";
import { allocate, type AllocationInput } from "../../../../controller/ratelimit/allocate.ts";

const input = (over: Partial<AllocationInput>): AllocationInput => ({
  requestsPerSecond: 100,
  burst: 100,
  nodes: ["a", "b"],
  demand: new Map(),
  granted: new Map(),
  floorRatio: 0.1,
  ...over,
});
const rates = (m: Map<string, { requestsPerSecond: number }>) =>
  Object.fromEntries([...m].map(([n, s]) => [n, s.requestsPerSecond]));
const total = (m: Map<string, { requestsPerSecond: number }>) =>
  [...m.values()].reduce((s, x) => s + x.requestsPerSecond, 0);

describe("allocate", () => {
  it("splits R in proportion to demand above a floor of 10 % of the fair share", () => {
    const out = allocate(
      input({
        demand: new Map([
          ["a", 150],
          ["b", 50],
        ]),
      }),
    );
    // floor 5 each, the other 90 split 3:1.
    expect(rates(out).a).toBeCloseTo(72.5, 9);
    expect(rates(out).b).toBeCloseTo(27.5, 9);
    expect(total(out)).toBeLessThanOrEqual(100);
  });

  it("keeps the floor for a node with no demand, so its rising demand is admitted in part at once", () => {
    const out = allocate(
      input({
        demand: new Map([
          ["a", 500],
          ["b", 0],
        ]),
      }),
    );
    expect(rates(out).b).toBeCloseTo(5, 9);
    expect(rates(out).a).toBeCloseTo(95, 9);
  });

  it("splits equally when nobody offered anything", () => {
    const out = allocate(
      input({
        nodes: ["a", "b", "c", "d"],
        demand: new Map([
          ["a", 0],
          ["b", 0],
          ["c", 0],
          ["d", 0],
        ]),
      }),
    );
    expect(Object.values(rates(out))).toEqual([25, 25, 25, 25]);
  });

  it("reserves R / N for a serving node that never reported (what it enforces on its own)", () => {
    const out = allocate(
      input({
        nodes: ["a", "b", "c", "d"],
        demand: new Map([
          ["a", 30],
          ["b", 10],
        ]),
      }),
    );
    expect(rates(out).c).toBe(25);
    expect(rates(out).d).toBe(25);
    // 50 left for a and b: floor 2.5 each, 45 split 3:1.
    expect(rates(out).a).toBeCloseTo(36.25, 9);
    expect(rates(out).b).toBeCloseTo(13.75, 9);
    expect(total(out)).toBeLessThanOrEqual(100);
  });

  it("reserves a silent node its last share, since it keeps enforcing it", () => {
    const out = allocate(input({ demand: new Map([["a", 10]]), granted: new Map([["b", 80]]) }));
    expect(rates(out).b).toBe(80);
    expect(rates(out).a).toBeCloseTo(20, 9);
  });

  it("never sums above R, for many nodes and awkward numbers", () => {
    for (let n = 1; n <= 50; n++) {
      const nodes = Array.from({ length: n }, (_, i) => `n${i}`);
      const demand = new Map(nodes.filter((_, i) => i % 3 !== 0).map((x, i) => [x, (i * 7.3) % 11]));
      const granted = new Map(nodes.map((x, i) => [x, (i * 13.1) % 17]));
      const out = allocate(
        input({ requestsPerSecond: 7, burst: 3, nodes, demand, granted, floorRatio: 0.37 }),
      );
      expect(out.size).toBe(n);
      expect(total(out)).toBeLessThanOrEqual(7);
      for (const s of out.values()) {
        expect(s.requestsPerSecond).toBeGreaterThanOrEqual(0);
        expect(s.burst).toBeGreaterThanOrEqual(1);
      }
    }
  });

  it("scales silent reservations down when they alone exceed R", () => {
    const out = allocate(
      input({
        nodes: ["a", "b", "c"],
        demand: new Map([["c", 40]]),
        granted: new Map([
          ["a", 90],
          ["b", 90],
        ]),
      }),
    );
    expect(total(out)).toBeLessThanOrEqual(100);
    expect(rates(out).a).toBeCloseTo(50, 6);
    expect(rates(out).c).toBeCloseTo(0, 6);
  });

  it("splits the burst like the rate, at least 1 per node", () => {
    const out = allocate(
      input({
        burst: 10,
        demand: new Map([
          ["a", 99],
          ["b", 1],
        ]),
        floorRatio: 0,
      }),
    );
    expect(out.get("a")!.burst).toBeCloseTo(9.9, 9);
    expect(out.get("b")!.burst).toBe(1);
  });

  it("gives nothing when no node serves the Service, and all of R to a lone node", () => {
    expect(allocate(input({ nodes: [] })).size).toBe(0);
    expect(rates(allocate(input({ nodes: ["a"], demand: new Map([["a", 3]]) })))).toEqual({ a: 100 });
  });
});

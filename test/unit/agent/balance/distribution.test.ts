// RANDOM, LEAST_REQUEST (exact scan and P2C) and the factory: how picks distribute, with a seeded
// random source so the bounds are deterministic.
import { describe, expect, it } from "vitest";
import {
  ActiveConnections,
  createBalancer,
  LOAD_BALANCER_KINDS,
} from "../../../../agent/balance/balancer.ts";
import { EXACT_SCAN_MAX, LeastRequest } from "../../../../agent/balance/least-request.ts";
import { pickTwo, RandomBalancer, randomIndex } from "../../../../agent/balance/random.ts";
import { seededRandom, tally } from "./fakes.ts";

const keys = (n: number) => Array.from({ length: n }, (_, i) => `10.0.0.${i + 1}:80`);

describe("RANDOM", () => {
  it("spreads picks uniformly (each of 4 within ±5 % of its share over 40,000 picks)", () => {
    const b = new RandomBalancer(seededRandom(3));
    const eps = keys(4);
    const counts = tally(40_000, () => b.pick(eps));
    expect([...counts.keys()].sort()).toEqual([...eps].sort());
    for (const n of counts.values()) expect(Math.abs(n - 10_000)).toBeLessThan(500);
  });

  it("returns undefined for no candidates and clamps a source that returns 1", () => {
    expect(new RandomBalancer().pick([])).toBeUndefined();
    expect(randomIndex(() => 1, 3)).toBe(2);
    expect(new RandomBalancer(() => 0.999999).pick(["a", "b"])).toBe("b");
  });
});

describe("power of two choices", () => {
  it("always draws two distinct candidates, and keeps the cheaper", () => {
    const random = seededRandom(5);
    for (let i = 0; i < 1000; i++) expect(pickTwo(["x", "y"], random, (k) => (k === "x" ? 2 : 1))).toBe("y");
  });

  it("gives the k-th cheapest of n a share of 2(n-1-k)/(n(n-1)): the most loaded never wins", () => {
    const n = 10;
    const eps = keys(n);
    const cost = (k: string) => eps.indexOf(k);
    const random = seededRandom(9);
    const counts = tally(45_000, () => pickTwo(eps, random, cost));
    eps.forEach((k, rank) => {
      const expected = (45_000 * 2 * (n - 1 - rank)) / (n * (n - 1));
      expect(Math.abs((counts.get(k) ?? 0) - expected)).toBeLessThan(450);
    });
    expect(counts.get(eps[n - 1] as string)).toBeUndefined();
  });
});

describe("LEAST_REQUEST", () => {
  it(`scans exactly up to ${EXACT_SCAN_MAX} candidates: the least loaded always wins`, () => {
    const active = new ActiveConnections();
    const eps = keys(EXACT_SCAN_MAX);
    for (const k of eps) for (let j = 0; j < 3; j++) active.inc(k);
    active.dec(eps[7] as string); // the only one with 2: P2C would miss it in most picks
    const lr = new LeastRequest(active, seededRandom(1));
    for (let i = 0; i < 50; i++) expect(lr.pick(eps)).toBe(eps[7]);
  });

  it("uses P2C above that, which keeps concurrent load even across 40 endpoints", () => {
    const active = new ActiveConnections();
    const eps = keys(40);
    const lr = new LeastRequest(active, seededRandom(2));
    const random = seededRandom(4);
    const inFlight: string[] = [];
    // Steady state of ~400 in flight: every step starts one request and, once full, ends a random one.
    for (let i = 0; i < 20_000; i++) {
      const k = lr.pick(eps) as string;
      active.inc(k);
      inFlight.push(k);
      if (inFlight.length > 400) {
        const [done] = inFlight.splice(randomIndex(random, inFlight.length), 1);
        active.dec(done as string);
      }
    }
    const loads = eps.map((k) => active.get(k));
    // P2C leaves a max-min spread of 5 here; RANDOM with the same seeds leaves 15.
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(7);
  });
});

describe("createBalancer", () => {
  it("builds every kind, keeps ROUND_ROBIN's order, and rejects an unknown kind", () => {
    const active = new ActiveConnections();
    for (const kind of LOAD_BALANCER_KINDS) expect(createBalancer(kind, active).kind).toBe(kind);
    const rr = createBalancer("ROUND_ROBIN", active);
    expect(["a", "b", "c", "a"].map(() => rr.pick(["a", "b", "c"]))).toEqual(["a", "b", "c", "a"]);
    expect(() => createBalancer("LEAST_CONN" as never, active)).toThrow(
      /unknown load balancer kind "LEAST_CONN"; expected one of ROUND_ROBIN, LEAST_REQUEST, RANDOM, PEAK_EWMA, RING_HASH, MAGLEV/,
    );
  });

  it("passes the hash options through (and their validation)", () => {
    const active = new ActiveConnections();
    expect(() => createBalancer("MAGLEV", active, { maglev: { tableSize: 1000 } })).toThrow(
      /tableSize must be a prime/,
    );
    expect(() => createBalancer("RING_HASH", active, { ringHash: { minimumRingSize: 0 } })).toThrow(
      /minimumRingSize/,
    );
  });
});

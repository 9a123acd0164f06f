// RING_HASH and MAGLEV, table-driven over both: stickiness, balance, minimal remapping when an
// endpoint leaves or joins, skipping of unusable endpoints without a rebuild, and the random fallback.
import { describe, expect, it } from "vitest";
import type { PickContext } from "../../../../agent/balance/balancer.ts";
import type { ConsistentHashBalancer } from "../../../../agent/balance/consistent.ts";
import { hash32 } from "../../../../agent/balance/hash.ts";
import { isPrime, Maglev } from "../../../../agent/balance/maglev.ts";
import { RingHash } from "../../../../agent/balance/ring-hash.ts";
import { seededRandom, tally } from "./fakes.ts";

const endpoints = (n: number) => Array.from({ length: n }, (_, i) => `10.1.0.${i + 10}:8080`);
const requestHashes = Array.from({ length: 10_000 }, (_, i) => hash32(`user-${i}`));

function assign(b: ConsistentHashBalancer, candidates: readonly string[], all?: readonly string[]): string[] {
  return requestHashes.map((hash) => {
    const ctx: PickContext = all ? { hash, endpoints: all } : { hash };
    return b.pick(candidates, ctx) as string;
  });
}

function moved(before: string[], after: string[]): number[] {
  return before.flatMap((k, i) => (k === after[i] ? [] : [i]));
}

const algorithms: [string, () => ConsistentHashBalancer, { share: [number, number]; stray: number }][] = [
  // Ring hash (1024 points per endpoint) balances to a few percent and only the removed or added
  // endpoint's arcs move (stray 0). Maglev's table is balanced exactly (see below), a few other slots
  // shift on a change; the share bounds leave room for sampling noise over 10,000 keys (σ ≈ 0.3 %).
  ["RING_HASH", () => new RingHash({ random: seededRandom(1) }), { share: [0.085, 0.115], stray: 0 }],
  ["MAGLEV", () => new Maglev({ random: seededRandom(1) }), { share: [0.09, 0.11], stray: 0.02 }],
];

describe.each(algorithms)("%s", (kind, make, bounds) => {
  it("is sticky and deterministic: same hash → same endpoint, across instances and endpoint order", () => {
    const eps = endpoints(10);
    const a = assign(make(), eps);
    expect(assign(make(), eps)).toEqual(a);
    expect(assign(make(), [...eps].reverse())).toEqual(a);
    expect(make().kind).toBe(kind);
  });

  it("balances keys over the endpoints", () => {
    const picks = assign(make(), endpoints(10));
    const counts = tally(picks.length, (i) => picks[i]);
    expect(counts.size).toBe(10);
    for (const n of counts.values()) {
      expect(n / requestHashes.length).toBeGreaterThan(bounds.share[0]);
      expect(n / requestHashes.length).toBeLessThan(bounds.share[1]);
    }
  });

  it("remaps only about 1/10 of the keys when one of 10 endpoints leaves", () => {
    const eps = endpoints(10);
    const gone = eps[3] as string;
    const before = assign(make(), eps);
    const after = assign(
      make(),
      eps.filter((k) => k !== gone),
    );
    const changed = moved(before, after);
    const owned = before.filter((k) => k === gone).length;
    expect(changed.length / requestHashes.length).toBeLessThan(0.1 + bounds.stray + 0.04);
    // Every key of the endpoint that left moves; of the others at most `stray` do.
    expect(changed.filter((i) => before[i] === gone).length).toBe(owned);
    expect((changed.length - owned) / requestHashes.length).toBeLessThanOrEqual(bounds.stray);
  });

  it("remaps only about 1/11 of the keys when an 11th endpoint joins, mostly onto it", () => {
    const eps = endpoints(11);
    const before = assign(make(), eps.slice(0, 10));
    const after = assign(make(), eps);
    const changed = moved(before, after);
    expect(changed.length / requestHashes.length).toBeLessThan(1 / 11 + bounds.stray + 0.04);
    const ontoNew = changed.filter((i) => after[i] === eps[10]).length;
    expect((changed.length - ontoNew) / requestHashes.length).toBeLessThanOrEqual(bounds.stray);
  });

  it("skips unusable candidates by walking on: only their keys move, spread over the others, no rebuild", () => {
    const eps = endpoints(10);
    const b = make();
    const before = assign(b, eps, eps);
    const ejected = eps[5] as string;
    const after = assign(
      b,
      eps.filter((k) => k !== ejected),
      eps,
    );
    for (const i of moved(before, after)) expect(before[i]).toBe(ejected);
    expect(after).not.toContain(ejected);
    const heirs = new Set(after.filter((_, i) => before[i] === ejected));
    expect(heirs.size).toBeGreaterThanOrEqual(5);
    expect(b.builds).toBe(1);
    // Back in: the same keys return, still on the same table.
    expect(assign(b, eps, eps)).toEqual(before);
    expect(b.builds).toBe(1);
  });

  it("rebuilds only when the endpoint set changes, not for a new array with the same keys", () => {
    const b = make();
    const eps = endpoints(5);
    b.pick(eps, { hash: 1, endpoints: eps });
    b.pick(eps, { hash: 2, endpoints: [...eps].reverse() });
    expect(b.builds).toBe(1);
    b.pick(eps.slice(1), { hash: 3, endpoints: eps.slice(1) });
    expect(b.builds).toBe(2);
  });

  it("falls back to random without a hash, and when no candidate is in the endpoint set", () => {
    const b = make();
    const eps = endpoints(4);
    expect(tally(400, () => b.pick(eps)).size).toBe(4);
    expect(["x:1", "y:1"]).toContain(b.pick(["x:1", "y:1"], { hash: 7, endpoints: eps }));
    expect(b.pick([], { hash: 7 })).toBeUndefined();
  });

  it("walks the whole table when all but one endpoint are unusable", () => {
    const b = make();
    const eps = endpoints(10);
    const only = eps[9] as string;
    expect(new Set(assign(b, [only], eps))).toEqual(new Set([only]));
  });
});

describe("Maglev table", () => {
  it("gives every endpoint ⌊M/n⌋ or ⌈M/n⌉ of the M slots", () => {
    const m = 65_537;
    const eps = endpoints(10);
    const b = new Maglev();
    const counts = tally(m, (slot) => b.pick(eps, { hash: slot, endpoints: eps }));
    for (const n of counts.values()) expect([6553, 6554]).toContain(n);
  });
});

describe("table options", () => {
  it("accepts a tiny ring and a small prime table", () => {
    const eps = endpoints(3);
    const ring = new RingHash({ minimumRingSize: 1 });
    const maglev = new Maglev({ tableSize: 7 });
    for (const b of [ring, maglev]) expect(eps).toContain(b.pick(eps, { hash: 12345 }));
    expect(new Set(assign(maglev, eps))).toEqual(new Set(eps));
  });

  it("rejects out-of-range sizes and non-prime Maglev tables, naming the option", () => {
    expect(() => new RingHash({ minimumRingSize: 0 })).toThrow(
      "ring hash: minimumRingSize must be an integer in 1..131072, got 0",
    );
    expect(() => new RingHash({ minimumRingSize: 1.5 })).toThrow(/minimumRingSize/);
    expect(() => new Maglev({ tableSize: 65_536 })).toThrow(
      "maglev: tableSize must be a prime in 2..5000011, got 65536",
    );
    expect(() => new Maglev({ tableSize: 5_000_087 })).toThrow(/tableSize/);
    expect([2, 3, 65_537, 5_000_011].every(isPrime)).toBe(true);
    expect([0, 1, 4, 65_535, 65_536, 4.5].some(isPrime)).toBe(false);
  });
});

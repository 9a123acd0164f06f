// Deterministic stand-ins for the balancers' injectable random source and clock.

/** mulberry32: a tiny seeded PRNG with good enough uniformity for distribution tests. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A manual clock in milliseconds. */
export class FakeClock {
  ms = 0;
  readonly now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** How often each key was picked over `n` picks. */
export function tally(n: number, pick: (i: number) => string | undefined): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const k = pick(i);
    if (k === undefined) throw new Error(`pick ${i} returned undefined`);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

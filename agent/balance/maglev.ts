// MAGLEV: Google's Maglev consistent hashing (Eisenbud et al., NSDI 2016), as in Envoy. Every endpoint
// has a pseudo-random permutation of the M table slots (offset + j·skip mod M, M prime so every skip
// is a generator); endpoints take turns claiming their next free preferred slot until the table is
// full, so each owns ⌊M/n⌋ or ⌈M/n⌉ slots. A lookup is one array read, and when an endpoint leaves
// mostly only its own slots change owner. Unusable endpoints are skipped by reading the next slots,
// whose owners are spread evenly, so an ejected endpoint's keys spread over all the others.
import type { RandomSource } from "./balancer.ts";
import { ConsistentHashBalancer, type HashTable } from "./consistent.ts";
import { hash32 } from "./hash.ts";

/** Envoy's default (a prime ≥ 100 × a typical endpoint count, for < 1 % imbalance) and upper bound. */
export const DEFAULT_TABLE_SIZE = 65_537;
export const MAXIMUM_TABLE_SIZE = 5_000_011;
/** Two independent hashes of an endpoint key: one for the offset, one for the skip. */
const OFFSET_SEED = 0x9e3779b9;
const SKIP_SEED = 0x85ebca6b;

export interface MaglevOptions {
  readonly tableSize?: number;
  readonly random?: RandomSource;
}

export class Maglev extends ConsistentHashBalancer {
  readonly kind = "MAGLEV" as const;
  readonly #tableSize: number;

  constructor(opts: MaglevOptions = {}) {
    super(opts.random ?? Math.random);
    const size = opts.tableSize ?? DEFAULT_TABLE_SIZE;
    if (!Number.isInteger(size) || size < 2 || size > MAXIMUM_TABLE_SIZE || !isPrime(size)) {
      throw new RangeError(`maglev: tableSize must be a prime in 2..${MAXIMUM_TABLE_SIZE}, got ${size}`);
    }
    this.#tableSize = size;
  }

  protected build(keys: readonly string[]): HashTable {
    const m = this.#tableSize;
    const table = populate(keys, m);
    return { keys, slots: m, slotAt: (hash) => hash % m, owner: (slot) => table[slot] as number };
  }
}

/**
 * The Maglev population loop. With more endpoints than slots the table fills before every endpoint
 * had a turn and the rest get no slot (the schema bounds tableSize; pick a prime far above n).
 */
function populate(keys: readonly string[], m: number): Int32Array {
  const n = keys.length;
  const table = new Int32Array(m).fill(-1);
  if (n === 0) return table;
  const offset = new Uint32Array(n);
  const skip = new Uint32Array(n);
  const next = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const key = keys[i] as string;
    offset[i] = hash32(key, OFFSET_SEED) % m;
    skip[i] = (hash32(key, SKIP_SEED) % (m - 1)) + 1;
  }
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      // Walk endpoint i's permutation from where it stopped to its next free slot.
      const step = skip[i] as number;
      let slot = ((offset[i] as number) + (next[i] as number) * step) % m;
      let taken = next[i] as number;
      while (table[slot] !== -1) {
        slot = (slot + step) % m;
        taken++;
      }
      table[slot] = i;
      next[i] = taken + 1;
      if (++filled === m) return table;
    }
  }
}

export function isPrime(n: number): boolean {
  if (n < 2 || !Number.isInteger(n)) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

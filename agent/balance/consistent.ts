// The part RING_HASH and MAGLEV share: a lookup table built over one endpoint set and cached until
// the set changes, the walk that skips unusable endpoints, and the random fallback for requests
// without a hash. A table is built over the destination's whole endpoint set (`ctx.endpoints`), not
// over the usable candidates, so that an ejection or a retry (both shrink `candidates`) neither
// rebuilds the table nor moves any key that did not belong to the skipped endpoint.
import type { Balancer, LoadBalancerKind, PickContext, RandomSource } from "./balancer.ts";
import { randomIndex } from "./random.ts";

/** A built table: `slotAt(hash)` is the first slot for a hash, `slots` their count, `owner(i)` an index into `keys`. */
export interface HashTable {
  readonly keys: readonly string[];
  readonly slots: number;
  slotAt(hash: number): number;
  owner(slot: number): number;
}

/**
 * Invariants: `#table` was built from exactly the keys of `#source` (compared as sets, order
 * ignored); a pick returns a member of `candidates` or undefined only when `candidates` is empty.
 */
export abstract class ConsistentHashBalancer implements Balancer {
  abstract readonly kind: LoadBalancerKind;
  readonly #random: RandomSource;
  #source: readonly string[] | undefined;
  #table: HashTable | undefined;
  #index = new Map<string, number>();
  #builds = 0;

  constructor(random: RandomSource) {
    this.#random = random;
  }

  /** Builds the table for `keys` (sorted, distinct); called only when the endpoint set changed. */
  protected abstract build(keys: readonly string[]): HashTable;

  /** How many times a table was built: lets tests and the admin page see that caching works. */
  get builds(): number {
    return this.#builds;
  }

  pick(candidates: readonly string[], ctx?: PickContext): string | undefined {
    if (candidates.length === 0) return undefined;
    const hash = ctx?.hash;
    if (hash === undefined) return this.#anyOf(candidates);
    const endpoints = ctx?.endpoints ?? candidates;
    const table = this.#tableFor(endpoints);
    const start = table.slotAt(hash >>> 0);
    // The common case, every endpoint usable: candidates equal the endpoints element by element
    // (callers filter the endpoint list, which keeps its order), so no membership test is needed.
    if (candidates === endpoints || sameList(candidates, endpoints)) return table.keys[table.owner(start)];
    const usable = this.#usable(table, candidates);
    // No candidate is in the table (the caller passed endpoints that do not cover them): still
    // answer, as the caller only ever offers endpoints it is willing to use.
    if (usable === undefined) return this.#anyOf(candidates);
    for (let step = 0; step < table.slots; step++) {
      const owner = table.owner((start + step) % table.slots);
      if (usable[owner] === 1) return table.keys[owner];
    }
    return this.#anyOf(candidates);
  }

  #anyOf(candidates: readonly string[]): string | undefined {
    return candidates[randomIndex(this.#random, candidates.length)];
  }

  #tableFor(endpoints: readonly string[]): HashTable {
    if (this.#table && (endpoints === this.#source || sameSet(endpoints, this.#table.keys))) {
      this.#source = endpoints;
      return this.#table;
    }
    const keys = [...new Set(endpoints)].sort();
    const table = this.build(keys);
    this.#table = table;
    this.#source = endpoints;
    this.#index = new Map(keys.map((k, i) => [k, i]));
    this.#builds++;
    return table;
  }

  /** A flag per table key (1 = a candidate); undefined when no candidate is in the table. */
  #usable(table: HashTable, candidates: readonly string[]): Uint8Array | undefined {
    const flags = new Uint8Array(table.keys.length);
    let marked = 0;
    for (const key of candidates) {
      const i = this.#index.get(key);
      if (i !== undefined) {
        flags[i] = 1;
        marked++;
      }
    }
    return marked === 0 ? undefined : flags;
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Set equality of `list` against `sorted` (sorted, distinct), cheap when `list` is already in the same order. */
function sameSet(list: readonly string[], sorted: readonly string[]): boolean {
  if (list.length === sorted.length && list.every((k, i) => k === sorted[i])) return true;
  const distinct = [...new Set(list)].sort();
  return distinct.length === sorted.length && distinct.every((k, i) => k === sorted[i]);
}

// The split of one global rate limit between the nodes that serve its Service. Pure: the balancer
// (balancer.ts) passes in who serves, what each fresh report says and what was last granted; this
// decides the shares.
//
// Rules, in order (docs/http.md "Global rate limits"):
// - A serving node without a fresh report is *reserved* what it may be enforcing on its own: its last
//   share if it was given one (an agent keeps its last share when the controller goes away), else
//   R / N (what an agent enforces before its first share). Reserving keeps the sum of what nodes can
//   admit within R even while some of them are silent.
// - Every reporting node gets a floor (`floorRatio` of its fair share R / N) so that a node whose demand
//   rises from nothing still admits some of it and its next report shows the rise.
// - The rest of R is split between the reporting nodes in proportion to the demand they offered (equally
//   when none offered any).
// - The shares never add up to more than R (rounding included).
// - Each node's bucket size is the global burst split the same way, at least 1.

export interface NodeShare {
  readonly requestsPerSecond: number;
  readonly burst: number;
}

export interface AllocationInput {
  /** The global rate R. */
  readonly requestsPerSecond: number;
  /** The mesh-wide bucket size. */
  readonly burst: number;
  /** Serving nodes (each gets a share; nodes not listed get nothing). */
  readonly nodes: readonly string[];
  /** Offered requests per second, from fresh reports only. */
  readonly demand: ReadonlyMap<string, number>;
  /** The share last granted to each node (for silent nodes). */
  readonly granted: ReadonlyMap<string, number>;
  /** Part of the fair share R / N every reporting node keeps, in [0, 1]. */
  readonly floorRatio: number;
}

export const DEFAULT_FLOOR_RATIO = 0.1;

/** The shares of `input.nodes`; their sum is at most `requestsPerSecond`. */
export function allocate(input: AllocationInput): Map<string, NodeShare> {
  const { requestsPerSecond: rate, nodes } = input;
  const rates = new Map<string, number>();
  if (nodes.length === 0) return new Map();
  const fair = rate / nodes.length;
  const reporting = nodes.filter((n) => input.demand.has(n));
  let reserved = 0;
  for (const n of nodes) {
    if (input.demand.has(n)) continue;
    const r = Math.min(input.granted.get(n) ?? fair, rate);
    rates.set(n, r);
    reserved += r;
  }
  if (reserved > rate) scale(rates, rate / reserved);
  const left = Math.max(0, rate - Math.min(reserved, rate));
  splitByDemand(rates, reporting, input, left, fair);
  const total = sum(rates);
  if (total > rate) scale(rates, rate / total);
  const out = new Map<string, NodeShare>();
  for (const [n, r] of rates) out.set(n, { requestsPerSecond: r, burst: burstOf(input, r) });
  return out;
}

/** Floors first, then what is left in proportion to demand; `left` is all the reporting nodes may take. */
function splitByDemand(
  rates: Map<string, number>,
  reporting: readonly string[],
  input: AllocationInput,
  left: number,
  fair: number,
): void {
  if (reporting.length === 0) return;
  const floor = Math.min(fair * clamp01(input.floorRatio), left / reporting.length);
  const rest = left - floor * reporting.length;
  let offered = 0;
  for (const n of reporting) offered += positive(input.demand.get(n));
  for (const n of reporting) {
    const part = offered > 0 ? positive(input.demand.get(n)) / offered : 1 / reporting.length;
    rates.set(n, floor + rest * part);
  }
}

function burstOf(input: AllocationInput, share: number): number {
  if (input.requestsPerSecond <= 0) return 1;
  return Math.max(1, (input.burst * share) / input.requestsPerSecond);
}

function scale(rates: Map<string, number>, by: number): void {
  // Scaling down by a ratio can round up by an ulp; nudging the factor keeps the sum at or under R.
  const f = by * (1 - 1e-12);
  for (const [n, r] of rates) rates.set(n, r * f);
}

function sum(rates: ReadonlyMap<string, number>): number {
  let s = 0;
  for (const r of rates.values()) s += r;
  return s;
}

function positive(x: number | undefined): number {
  return x !== undefined && Number.isFinite(x) && x > 0 ? x : 0;
}

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}

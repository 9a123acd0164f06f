// The controller's side of the global rate limit: keeps the latest demand report of each agent, and every
// `intervalMs` (default 2 s) splits each global limit of the current configuration between its serving
// nodes (allocate.ts) and hands each node its shares to send on its stream. No central rate-limit service:
// the agents enforce, the controller only moves budget between them.
//
// Invariants: one report per node (a new one replaces it, so a node holds at most MAX_REPORTED_LIMITS
// entries here); a report older than `staleAfterMs` counts as none; `#granted` holds only limits and nodes
// of the last split (a limit or node that left the configuration is forgotten).
import {
  DEFAULT_DEMAND_REPORT_MS,
  type DemandReport,
  type GlobalLimit,
  type RateLimitShares,
  type ShareEntry,
} from "../api/index.ts";
import { allocate, DEFAULT_FLOOR_RATIO } from "./allocate.ts";

/** Rebalance period: a few report intervals, so each split sees fresh demand, and slow enough to be cheap. */
export const DEFAULT_REBALANCE_MS = 2000;

export interface BalancerOptions {
  intervalMs?: number;
  /** A report older than this is ignored (default: 3 rebalances or 3 reports, whichever is longer). */
  staleAfterMs?: number;
  floorRatio?: number;
  now?: () => number;
}

export interface BalancerDeps {
  /** The global limits of the configuration being served (re-read at every split). */
  limits: () => readonly GlobalLimit[];
  /** Writes shares to every stream of `node`; a node that is not connected simply misses them. */
  send: (node: string, message: RateLimitShares) => void;
  /** Counts a split. */
  rebalanced?: () => void;
}

interface Report {
  readonly at: number;
  readonly offered: ReadonlyMap<string, number>;
}

export class GlobalRateLimitBalancer {
  readonly intervalMs: number;
  readonly #staleAfterMs: number;
  readonly #floorRatio: number;
  readonly #now: () => number;
  readonly #reports = new Map<string, Report>();
  /** limit id → node → the share last granted. */
  #granted = new Map<string, Map<string, number>>();
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: BalancerOptions = {}) {
    this.intervalMs = opts.intervalMs ?? DEFAULT_REBALANCE_MS;
    if (!Number.isInteger(this.intervalMs) || this.intervalMs < 100)
      throw new RangeError(
        `global rate limit rebalance interval must be an integer of at least 100 ms, got ${opts.intervalMs}`,
      );
    this.#staleAfterMs = opts.staleAfterMs ?? 3 * Math.max(this.intervalMs, DEFAULT_DEMAND_REPORT_MS);
    if (!(this.#staleAfterMs > 0)) throw new RangeError("global rate limit staleAfterMs must be > 0");
    this.#floorRatio = opts.floorRatio ?? DEFAULT_FLOOR_RATIO;
    if (!(this.#floorRatio >= 0 && this.#floorRatio <= 1))
      throw new RangeError(`global rate limit floorRatio must be in [0, 1], got ${opts.floorRatio}`);
    this.#now = opts.now ?? (() => performance.now());
  }

  /** Records `node`'s latest demand (the authenticated session says which node it is). */
  report(node: string, r: DemandReport): void {
    const offered = new Map<string, number>();
    for (const e of r.limits) offered.set(e.id, e.offeredPerSecond);
    this.#reports.set(node, { at: this.#now(), offered });
  }

  /** Nodes with a report on hand, fresh or not (diagnostics, tests). */
  get reporting(): number {
    return this.#reports.size;
  }

  /** One split of every limit: node → its shares (only serving nodes appear). */
  rebalance(limits: readonly GlobalLimit[]): Map<string, ShareEntry[]> {
    const now = this.#now();
    for (const [node, r] of this.#reports) if (now - r.at > this.#staleAfterMs) this.#reports.delete(node);
    const byNode = new Map<string, ShareEntry[]>();
    const granted = new Map<string, Map<string, number>>();
    for (const limit of limits) {
      const demand = new Map<string, number>();
      for (const n of limit.nodes) {
        const d = this.#reports.get(n)?.offered.get(limit.id);
        if (d !== undefined) demand.set(n, d);
      }
      const shares = allocate({
        requestsPerSecond: limit.requestsPerSecond,
        burst: limit.burst,
        nodes: limit.nodes,
        demand,
        granted: this.#granted.get(limit.id) ?? new Map(),
        floorRatio: this.#floorRatio,
      });
      const g = new Map<string, number>();
      for (const [node, s] of shares) {
        g.set(node, s.requestsPerSecond);
        let list = byNode.get(node);
        if (!list) byNode.set(node, (list = []));
        list.push({ id: limit.id, requestsPerSecond: s.requestsPerSecond, burst: s.burst });
      }
      granted.set(limit.id, g);
    }
    this.#granted = granted;
    return byNode;
  }

  /** Splits now and sends each node its shares. */
  tick(deps: BalancerDeps): void {
    const limits = deps.limits();
    if (limits.length === 0 && this.#granted.size === 0) return;
    for (const [node, shares] of this.rebalance(limits))
      deps.send(node, { type: "shares", intervalMs: this.intervalMs, shares });
    deps.rebalanced?.();
  }

  start(deps: BalancerDeps): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.tick(deps), this.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

// This node's part of the mesh-wide (global) rate limits: one ShareBucket per global limit whose Service
// has a workload here, the counts that become the demand report, and the shares the controller sends.
// Before the first share a node enforces R / (serving nodes); a share replaces that; when the controller
// goes away the last share stays (fail closed: the limit is never lifted, only perhaps split unevenly).
// Which limits apply comes from the configuration (controller/api/global-ratelimit.ts), so the agent and
// the controller agree on the ids and on who serves. Time is injected.
//
// Invariants: `#entries` holds exactly the limits of the last sync for this node; counts since the last
// report are per entry and reset by report(); an entry keeps its bucket (and its tokens) across syncs.
import {
  MAX_REPORTED_LIMITS,
  type DemandEntry,
  type DemandReport,
  type GlobalLimit,
  type RateLimitShares,
} from "../../controller/api/index.ts";
import { ShareBucket } from "../ratelimit/share-bucket.ts";

export type ShareSource = "initial" | "controller";

export interface GlobalLimitEntry {
  readonly limit: GlobalLimit;
  readonly bucket: ShareBucket;
  source: ShareSource;
  /** Since the last report. */
  windowAdmitted: number;
  windowRefused: number;
  /** Since the entry was created (the metrics' counters). */
  admitted: number;
  refused: number;
  /** What the last report said was offered per second. */
  reportedPerSecond: number;
}

/** One limit as the config dump shows it. */
export interface GlobalShareDump {
  readonly id: string;
  readonly policy: string;
  readonly service: string;
  readonly globalRequestsPerSecond: number;
  readonly servingNodes: readonly string[];
  readonly shareRequestsPerSecond: number;
  readonly burst: number;
  readonly source: ShareSource;
  readonly admitted: number;
  readonly refused: number;
  readonly reportedPerSecond: number;
}

const NONE: readonly GlobalLimitEntry[] = Object.freeze([]);

export class GlobalLimiter {
  readonly #now: () => number;
  #entries = new Map<string, GlobalLimitEntry>();
  #byHost = new Map<string, GlobalLimitEntry[]>();
  #windowStart: number;
  #sharesReceived = 0;

  constructor(opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? (() => performance.now());
    this.#windowStart = this.#now();
  }

  /** The limits this node serves now (limits whose `nodes` include it); others are dropped. */
  sync(limits: readonly GlobalLimit[]): void {
    const entries = new Map<string, GlobalLimitEntry>();
    const byHost = new Map<string, GlobalLimitEntry[]>();
    for (const limit of limits) {
      const e = this.#carry(limit);
      entries.set(limit.id, e);
      const list = byHost.get(limit.host);
      if (list) list.push(e);
      else byHost.set(limit.host, [e]);
    }
    this.#entries = entries;
    this.#byHost = byHost;
  }

  /** The global limits on requests to `host` ("name.namespace") at this node. */
  forHost(host: string): readonly GlobalLimitEntry[] {
    return this.#byHost.get(host) ?? NONE;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Share messages applied so far (0: every limit is still at its initial split). */
  get sharesReceived(): number {
    return this.#sharesReceived;
  }

  /** Counts a request that reached the limit (admitted or refused by it). */
  count(e: GlobalLimitEntry, admitted: boolean): void {
    if (admitted) {
      e.windowAdmitted += 1;
      e.admitted += 1;
    } else {
      e.windowRefused += 1;
      e.refused += 1;
    }
  }

  /** The controller's split: known ids take their share; ids this node does not serve are ignored. */
  applyShares(message: RateLimitShares): void {
    this.#sharesReceived += 1;
    for (const s of message.shares) {
      const e = this.#entries.get(s.id);
      if (!e) continue;
      e.bucket.set(s.requestsPerSecond, s.burst);
      e.source = "controller";
    }
  }

  /** Demand since the last report (and starts a new window); undefined when this node serves no limit. */
  report(): DemandReport | undefined {
    const now = this.#now();
    const windowMs = Math.max(1, Math.round(now - this.#windowStart));
    this.#windowStart = now;
    if (this.#entries.size === 0) return undefined;
    const limits: DemandEntry[] = [];
    for (const e of this.#entries.values()) {
      const offered = e.windowAdmitted + e.windowRefused;
      e.reportedPerSecond = (offered * 1000) / windowMs;
      limits.push({
        id: e.limit.id,
        offeredPerSecond: e.reportedPerSecond,
        admitted: e.windowAdmitted,
        refused: e.windowRefused,
      });
      e.windowAdmitted = 0;
      e.windowRefused = 0;
    }
    // Past the bound, the busiest limits are the ones whose split matters; the rest keep their shares.
    if (limits.length > MAX_REPORTED_LIMITS) {
      limits.sort((a, b) => b.offeredPerSecond - a.offeredPerSecond);
      limits.length = MAX_REPORTED_LIMITS;
    }
    return { type: "demand", windowMs, limits };
  }

  dump(): GlobalShareDump[] {
    return [...this.#entries.values()].map((e) => ({
      id: e.limit.id,
      policy: e.limit.policy,
      service: e.limit.host,
      globalRequestsPerSecond: e.limit.requestsPerSecond,
      servingNodes: e.limit.nodes,
      shareRequestsPerSecond: e.bucket.requestsPerSecond,
      burst: e.bucket.burst,
      source: e.source,
      admitted: e.admitted,
      refused: e.refused,
      reportedPerSecond: e.reportedPerSecond,
    }));
  }

  /**
   * The entry for `limit`, keeping the old one's bucket, counts and share. A node still on its initial
   * split follows R / N as the serving set changes; a controller share is scaled when R itself changes
   * (so a lowered limit applies at once, not at the next split).
   */
  #carry(limit: GlobalLimit): GlobalLimitEntry {
    const old = this.#entries.get(limit.id);
    const initial = initialShare(limit);
    if (!old) {
      return {
        limit,
        bucket: new ShareBucket(initial.requestsPerSecond, initial.burst, this.#now),
        source: "initial",
        windowAdmitted: 0,
        windowRefused: 0,
        admitted: 0,
        refused: 0,
        reportedPerSecond: 0,
      };
    }
    if (old.source === "initial") old.bucket.set(initial.requestsPerSecond, initial.burst);
    else if (old.limit.requestsPerSecond !== limit.requestsPerSecond) {
      const f = limit.requestsPerSecond / old.limit.requestsPerSecond;
      old.bucket.set(old.bucket.requestsPerSecond * f, Math.max(1, old.bucket.burst * f));
    }
    return { ...old, limit };
  }
}

/** R / N and the burst split the same way: what a node enforces before the controller's first share. */
export function initialShare(limit: GlobalLimit): { requestsPerSecond: number; burst: number } {
  const n = Math.max(1, limit.nodes.length);
  return { requestsPerSecond: limit.requestsPerSecond / n, burst: Math.max(1, limit.burst / n) };
}

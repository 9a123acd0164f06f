// Rate limiting at the destination (Envoy's local_ratelimit, per pod as Istio configures it): the token
// buckets of the limits that apply to a request (ratelimit-policy.ts: the service's TrafficPolicy
// `rateLimit`, RateLimitPolicies on the service or on the route rule the caller's agent marked) are
// checked by the destination workload's agent after authorization. Every applicable bucket must hold a
// token, and only then is one taken from each, so a refusal by one limit costs the others nothing. A
// refused request gets 429 (gRPC RESOURCE_EXHAUSTED), `retry-after`, flag RateLimited, and never reaches
// the application. A 429 carries the IETF RateLimit-* fields (draft-ietf-httpapi-ratelimit-headers-07) of
// the limit that refused; admitted responses carry those of the limit closest to exhaustion among the ones
// configured with `rateLimitHeaders: Always` (off by default, as Envoy's enable_x_ratelimit_headers). Buckets are per (limit, workload), and per
// caller SPIFFE ID with `perSource`, bounded by `maxSources` (agent/ratelimit/token-bucket.ts evicts).
// Global limits (a RateLimitPolicy's `global`) are checked after the local ones, against this node's share
// (global-limiter.ts, one bucket per limit for all local workloads of the Service); a
// request a local bucket refused never reached them and is not counted in their demand.
import type { OutgoingHttpHeaders } from "node:http";
import { TokenBuckets, type TokenBucket, type TokenBucketSettings } from "../ratelimit/token-bucket.ts";
import { GlobalLimiter, type GlobalLimitEntry } from "./global-limiter.ts";
import type { MeshView } from "../state/view.ts";
import { rateLimitIndex, type LimitSpec, type RateLimitIndex } from "./ratelimit-policy.ts";

export type Admission =
  | { readonly ok: true; readonly headers: OutgoingHttpHeaders | undefined }
  | {
      readonly ok: false;
      readonly retryAfterMs: number;
      /** What the 429's body says about the limit. */
      readonly limit: string;
      /** "Kind/namespace/name" of the limiting policy. */
      readonly policy: string;
      readonly headers: OutgoingHttpHeaders;
    };

export interface AdmitRequest {
  /** The destination workload. */
  readonly uid: string;
  /** "name.namespace" of the service the caller addressed (the `forwarded` host). */
  readonly serviceHost: string | undefined;
  /** The caller's proven SPIFFE ID (the peer certificate). */
  readonly principal: string;
  /** The calling agent's route-rule mark (ratelimit-policy.ts RULE_HEADER), if any. */
  readonly rule: string | undefined;
}

/** Where refusals are counted (ResilienceMetrics implements it). */
export interface RateLimitSink {
  rateLimited(destination: string, policy: string, sourcePrincipal: string): void;
}

const ADMITTED: Admission = Object.freeze({ ok: true, headers: undefined });

interface BucketSet {
  readonly specId: string;
  readonly uid: string;
  readonly buckets: TokenBuckets;
}

export class LocalRateLimiter {
  readonly #sets = new Map<string, BucketSet>();
  readonly #now: () => number;
  readonly #metrics: RateLimitSink | undefined;
  readonly #node: string | undefined;
  /** This node's shares of the global limits. */
  readonly global: GlobalLimiter;
  #view: MeshView | undefined;

  /** Without `node`, global limits are not enforced (the node's share cannot be known). */
  constructor(opts: { now?: () => number; metrics?: RateLimitSink; node?: string } = {}) {
    this.#now = opts.now ?? (() => performance.now());
    this.#metrics = opts.metrics;
    this.#node = opts.node;
    this.global = new GlobalLimiter({ now: this.#now });
  }

  /** Bucket sets held (tests, the config dump). */
  get size(): number {
    return this.#sets.size;
  }

  /** Brings the buckets (and this node's global limits) up to `view`, as a request of that view would. */
  observe(view: MeshView): void {
    if (view === this.#view) return;
    const index = rateLimitIndex(view);
    this.#prune(view, index.ids, index.global);
  }

  admit(view: MeshView, req: AdmitRequest): Admission {
    const index = rateLimitIndex(view);
    if (view !== this.#view) this.#prune(view, index.ids, index.global);
    const host = req.serviceHost === undefined ? [] : index.forHost(req.serviceHost);
    const rule = req.rule === undefined ? [] : index.forRule(req.rule);
    const global = req.serviceHost === undefined ? [] : this.global.forHost(req.serviceHost);
    if (host.length === 0 && rule.length === 0 && global.length === 0) return ADMITTED;
    const specs = rule.length === 0 ? host : host.length === 0 ? rule : [...host, ...rule];
    const buckets = specs.map((s) => this.#setFor(s, req.uid).get(s.perSource ? req.principal : ""));
    const empty = buckets.findIndex((b) => b.remaining < 1);
    if (empty >= 0) {
      const s = specs[empty]!;
      const b = buckets[empty]!;
      this.#metrics?.rateLimited(req.serviceHost ?? "unknown", s.policy, req.principal);
      const retryAfterMs = b.retryAfterMs();
      return {
        ok: false,
        retryAfterMs,
        limit: describe(s),
        policy: s.policy,
        headers: rateLimitHeaders(s.bucket, 0, retryAfterMs),
      };
    }
    const refusedBy = global.find((g) => g.bucket.remaining < 1);
    for (const g of global) this.global.count(g, refusedBy === undefined);
    if (refusedBy) return this.#refuseGlobal(refusedBy, req);
    for (const g of global) g.bucket.tryTake();
    // Only limits with `rateLimitHeaders: Always` speak on an admitted response, the one closest to
    // exhaustion among them; a local one before a global one, as on refusals.
    let closest = -1;
    for (let i = 0; i < buckets.length; i++) {
      buckets[i]!.tryTake();
      if (specs[i]!.alwaysHeaders && (closest < 0 || buckets[i]!.remaining < buckets[closest]!.remaining))
        closest = i;
    }
    if (closest >= 0) {
      const b = buckets[closest]!;
      return { ok: true, headers: rateLimitHeaders(specs[closest]!.bucket, b.remaining, resetMs(b)) };
    }
    const speaking = global.find((g) => g.limit.alwaysHeaders);
    return speaking ? { ok: true, headers: globalHeaders(speaking) } : ADMITTED;
  }

  #refuseGlobal(g: GlobalLimitEntry, req: AdmitRequest): Admission {
    this.#metrics?.rateLimited(req.serviceHost ?? "unknown", g.limit.policy, req.principal);
    return {
      ok: false,
      retryAfterMs: g.bucket.retryAfterMs(),
      limit: `global rate limit exceeded (${g.limit.policy}: ${g.limit.requestsPerSecond} per second mesh-wide)`,
      policy: g.limit.policy,
      headers: globalHeaders(g),
    };
  }

  #setFor(s: LimitSpec, uid: string): TokenBuckets {
    const key = `${s.id}|${uid}`;
    let set = this.#sets.get(key);
    if (!set) {
      set = {
        specId: s.id,
        uid,
        buckets: new TokenBuckets(s.bucket, { now: this.#now, maxKeys: s.maxKeys }),
      };
      this.#sets.set(key, set);
    }
    return set.buckets;
  }

  /** A new snapshot: buckets of limits that left it, or of workloads that left this node, go. */
  #prune(view: MeshView, ids: ReadonlySet<string>, global: RateLimitIndex["global"]): void {
    this.#view = view;
    const node = this.#node;
    this.global.sync(node === undefined ? [] : global.filter((l) => l.nodes.includes(node)));
    for (const [key, set] of this.#sets)
      if (!ids.has(set.specId) || !view.localWorkload(set.uid)) this.#sets.delete(key);
  }
}

/** Full: nothing to wait for; otherwise the next fill, when `remaining` goes up again. */
function resetMs(b: TokenBucket): number {
  return b.full ? 0 : b.nextFillMs();
}

function describe(s: LimitSpec): string {
  const what = `${s.bucket.maxTokens} per ${s.bucket.fillIntervalMs} ms${s.perSource ? " per source" : ""}`;
  return s.policy.startsWith("TrafficPolicy/")
    ? `local rate limit exceeded (${what})`
    : `rate limit exceeded (${s.policy}: ${what})`;
}

/**
 * The draft's fields: the quota (the bucket's size), what is left, seconds until more (rounded up, as
 * `retry-after`), and the policy as quota per window: `tokensPerFill` per `fillInterval` scaled to whole
 * seconds (the draft's `w` is in seconds), with the bucket size as `burst` when it differs.
 */
export function rateLimitHeaders(
  b: TokenBucketSettings,
  remaining: number,
  resetAfterMs: number,
): OutgoingHttpHeaders {
  const w = Math.max(1, Math.ceil(b.fillIntervalMs / 1000));
  const q = Math.max(1, Math.floor((b.tokensPerFill * w * 1000) / b.fillIntervalMs));
  return {
    "ratelimit-limit": String(b.maxTokens),
    "ratelimit-remaining": String(Math.max(0, Math.floor(remaining))),
    "ratelimit-reset": String(Math.ceil(resetAfterMs / 1000)),
    "ratelimit-policy": q === b.maxTokens ? `${q};w=${w}` : `${q};w=${w};burst=${b.maxTokens}`,
  };
}

/**
 * The draft's fields for a global limit: this node's bucket (its share's burst) and what is left, and the
 * mesh-wide rate as the policy (`R;w=1`): callers see the limit they are under, not how it is split.
 */
function globalHeaders(g: GlobalLimitEntry): OutgoingHttpHeaders {
  const wait = g.bucket.retryAfterMs();
  return {
    "ratelimit-limit": String(Math.max(1, Math.floor(g.bucket.burst))),
    "ratelimit-remaining": String(g.bucket.remaining),
    "ratelimit-reset": String(Math.ceil(wait / 1000)),
    "ratelimit-policy": `${g.limit.requestsPerSecond};w=1`,
  };
}

// Which token buckets apply to a request, resolved once per config snapshot: a Service's TrafficPolicy
// `rateLimit` and the RateLimitPolicies that target the Service (by its host "name.namespace") or one
// named rule of an HTTPRoute/GRPCRoute. Routes are matched by the calling agent, so a request matched by a
// targeted rule is marked by it (`ruleMarkLayer`, header `nodemesh-route-rule`); the destination's agent
// reads the mark and the peer's proven identity, and enforces (local-ratelimit.ts). The mark is an agent
// header: clients cannot send it (the source strips every `nodemesh-` header), applications never see it.
// A policy's `global` limit is indexed separately (`global`), with the nodes that serve its Service.
import {
  DEFAULT_MAX_SOURCES,
  durationMs,
  globalLimitsOf,
  type GlobalLimit,
  type RateLimitHeaders,
  type RateLimitSettings,
} from "../../controller/api/index.ts";
import type { TokenBucketSettings } from "../ratelimit/token-bucket.ts";
import type { Layer } from "../stack/compose.ts";
import type { CompiledRule } from "../state/routes.ts";
import type { MeshView } from "../state/view.ts";
import type { Exchange, ResponseHead } from "./exchange.ts";
import { resilienceOf, trafficPolicyOf } from "./resilience-policy.ts";

export const RULE_HEADER = "nodemesh-route-rule";

/** One token-bucket limit; its buckets are kept per destination workload (and per caller if perSource). */
export interface LimitSpec {
  /** Identity of the bucket set: policy, target and settings (a changed limit starts fresh buckets). */
  readonly id: string;
  /** "Kind/namespace/name" of the policy: the metric label and the access log's `policy`. */
  readonly policy: string;
  readonly bucket: TokenBucketSettings;
  readonly perSource: boolean;
  /** Buckets per workload when perSource (1 otherwise). */
  readonly maxKeys: number;
  /** RateLimit-* fields on admitted responses too (`rateLimitHeaders: Always`), not only on 429s. */
  readonly alwaysHeaders: boolean;
}

export interface RateLimitIndex {
  forHost(host: string): readonly LimitSpec[];
  forRule(rule: string): readonly LimitSpec[];
  /** Rules some RateLimitPolicy targets: only their requests carry the mark. */
  readonly targetedRules: ReadonlySet<string>;
  /** Every LimitSpec id of the snapshot (buckets of other ids are dropped). */
  readonly ids: ReadonlySet<string>;
  /** The snapshot's global limits, with their serving nodes (global-limiter.ts). */
  readonly global: readonly GlobalLimit[];
}

const NONE: readonly LimitSpec[] = Object.freeze([]);
const indexes = new WeakMap<MeshView, RateLimitIndex>();

/** "HTTPRoute/namespace/name/rule": how a route rule is named in the mark and in targetRefs. */
export function ruleId(rule: Pick<CompiledRule, "kind" | "route" | "name">): string | undefined {
  return rule.name === undefined ? undefined : `${rule.kind}/${rule.route}/${rule.name}`;
}

function bucketOf(r: RateLimitSettings): TokenBucketSettings {
  return Object.freeze({
    maxTokens: r.maxTokens,
    tokensPerFill: r.tokensPerFill ?? r.maxTokens,
    fillIntervalMs: durationMs(r.fillInterval),
  });
}

function spec(
  policy: string,
  target: string,
  bucket: TokenBucketSettings,
  perSource: boolean,
  maxKeys: number,
  headers: RateLimitHeaders,
): LimitSpec {
  // Where the fields go is not part of the id: changing it keeps the buckets.
  const s = `${bucket.maxTokens}/${bucket.tokensPerFill}/${bucket.fillIntervalMs}/${perSource}/${maxKeys}`;
  const alwaysHeaders = headers === "Always";
  return Object.freeze({ id: `${policy}|${target}|${s}`, policy, bucket, perSource, maxKeys, alwaysHeaders });
}

function push(m: Map<string, LimitSpec[]>, key: string, s: LimitSpec): void {
  const list = m.get(key);
  if (list) list.push(s);
  else m.set(key, [s]);
}

function build(view: MeshView): RateLimitIndex {
  const byHost = new Map<string, LimitSpec[]>();
  const byRule = new Map<string, LimitSpec[]>();
  for (const service of view.services()) {
    const limit = resilienceOf(view, service).rateLimit;
    const tp = limit && trafficPolicyOf(view, service);
    if (limit && tp) {
      const policy = `TrafficPolicy/${tp.metadata.namespace}/${tp.metadata.name}`;
      push(
        byHost,
        service.host,
        spec(policy, service.host, bucketOf(limit), false, 1, limit.rateLimitHeaders),
      );
    }
  }
  for (const p of view.config.rateLimitPolicies ?? []) {
    const ns = p.metadata.namespace;
    const policy = `RateLimitPolicy/${ns}/${p.metadata.name}`;
    if (p.spec.tokenBucket === undefined) continue; // global only: see `global` below
    const bucket = bucketOf(p.spec.tokenBucket);
    const maxKeys = p.spec.perSource ? (p.spec.maxSources ?? DEFAULT_MAX_SOURCES) : 1;
    for (const t of p.spec.targetRefs) {
      if (t.kind === "Service") {
        const host = `${t.name}.${ns}`;
        push(byHost, host, spec(policy, host, bucket, p.spec.perSource, maxKeys, p.spec.rateLimitHeaders));
      } else {
        const rule = `${t.kind}/${ns}/${t.name}/${t.sectionName ?? ""}`;
        push(byRule, rule, spec(policy, rule, bucket, p.spec.perSource, maxKeys, p.spec.rateLimitHeaders));
      }
    }
  }
  const ids = new Set<string>();
  for (const m of [byHost, byRule]) for (const list of m.values()) for (const s of list) ids.add(s.id);
  return Object.freeze({
    forHost: (host: string) => byHost.get(host) ?? NONE,
    forRule: (rule: string) => byRule.get(rule) ?? NONE,
    targetedRules: new Set(byRule.keys()),
    ids,
    global: Object.freeze(globalLimitsOf(view.config)),
  });
}

/** The limits of `view` (built on first use, once per snapshot). */
export function rateLimitIndex(view: MeshView): RateLimitIndex {
  let i = indexes.get(view);
  if (!i) {
    i = build(view);
    indexes.set(view, i);
  }
  return i;
}

/** The calling agent's half: marks requests matched by a rule that a RateLimitPolicy targets. */
export function ruleMarkLayer(): Layer<Exchange, ResponseHead> {
  return (next) => (ex) => {
    const targeted = rateLimitIndex(ex.view).targetedRules;
    if (targeted.size === 0 || !ex.rule) return next(ex);
    const id = ruleId(ex.rule);
    if (id !== undefined && targeted.has(id)) ex.request.headers[RULE_HEADER] = id;
    return next(ex);
  };
}

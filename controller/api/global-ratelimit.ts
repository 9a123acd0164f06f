// The mesh-wide (global) rate limit on the wire, shared by the agent and the controller: which global
// limits a configuration holds and which nodes serve each (so both sides agree on the split and on the
// agent's fallback of R / serving nodes), the demand an agent reports on its config stream, and the shares
// the controller answers with. Pure: no I/O.
//
// Wire (lines of the existing POST /v1/stream, controller/api/stream.ts):
//   agent → controller  {"type":"demand", windowMs, limits:[{id, offeredPerSecond, admitted, refused}]}
//   controller → agent  {"type":"shares", intervalMs, shares:[{id, requestsPerSecond, burst}]}
// The controller sends shares only on a stream whose agent has reported demand at least once, so an agent
// that predates the message never receives one; a controller that predates it ignores demand lines
// ("invalid message from agent, ignored") and the agent keeps its fallback split.
import { z } from "zod";
import type { RateLimitPolicy, Service, WorkloadEntry } from "./resources.ts";
import { serviceSelects } from "./selectors.ts";

/** At most this many limits in one report: bounds what one agent can make the controller hold, and keeps a
 * report under the session's 64 KiB line limit (64 × ~780 bytes). */
export const MAX_REPORTED_LIMITS = 64;
/** A global limit id ("RateLimitPolicy/ns/name|service.ns") is at most this long. */
export const MAX_LIMIT_ID = 700;
/** How often an agent reports by default: twice per default rebalance, so every split sees fresh demand. */
export const DEFAULT_DEMAND_REPORT_MS = 1000;
/** Requests per second an agent may claim for one limit: far above any node, and finite. */
const MAX_REPORTED_RATE = 1e9;

const LimitId = z
  .string()
  .min(1)
  .max(MAX_LIMIT_ID, { error: `id must be at most ${MAX_LIMIT_ID} characters` });
const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const DemandEntry = z
  .object({
    id: LimitId,
    /** Requests that reached the global limit per second over the window (admitted + refused). */
    offeredPerSecond: z.number().finite().min(0).max(MAX_REPORTED_RATE),
    admitted: Count,
    refused: Count,
  })
  .strict();

export const DemandReport = z
  .object({
    type: z.literal("demand"),
    windowMs: z.number().int().min(1).max(600_000),
    limits: z.array(DemandEntry).max(MAX_REPORTED_LIMITS, {
      error: `a demand report holds at most ${MAX_REPORTED_LIMITS} limits`,
    }),
  })
  .strict();

export const ShareEntry = z
  .object({
    id: LimitId,
    /** This node's part of the global rate. */
    requestsPerSecond: z.number().finite().min(0),
    /** This node's bucket size (at least 1: one request can always pass eventually). */
    burst: z.number().finite().min(1),
  })
  .strict();

export const RateLimitShares = z
  .object({
    type: z.literal("shares"),
    /** The controller's rebalance interval (diagnostics: when the next split is due). */
    intervalMs: z.number().int().min(1),
    shares: z.array(ShareEntry),
  })
  .strict();

export type DemandEntry = z.infer<typeof DemandEntry>;
export type DemandReport = z.infer<typeof DemandReport>;
export type ShareEntry = z.infer<typeof ShareEntry>;
export type RateLimitShares = z.infer<typeof RateLimitShares>;

/** One global limit of a configuration: a (RateLimitPolicy, target Service) pair. */
export interface GlobalLimit {
  /** "RateLimitPolicy/namespace/name|service.namespace": the key of reports, shares and metrics. */
  readonly id: string;
  /** "RateLimitPolicy/namespace/name". */
  readonly policy: string;
  /** "name.namespace" of the target Service. */
  readonly host: string;
  readonly requestsPerSecond: number;
  /** Mesh-wide bucket size (default: one second of the rate). */
  readonly burst: number;
  /** Nodes with a ready workload the Service selects, sorted: the nodes that enforce the limit. */
  readonly nodes: readonly string[];
  /** RateLimit-* fields on admitted responses too (the policy's `rateLimitHeaders: Always`). */
  readonly alwaysHeaders: boolean;
}

export interface GlobalLimitSource {
  readonly services: readonly Service[];
  readonly workloads: readonly WorkloadEntry[];
  readonly rateLimitPolicies?: readonly RateLimitPolicy[] | undefined;
}

export function globalLimitId(policy: string, host: string): string {
  return `${policy}|${host}`;
}

/** Every global limit of `src`, with its serving nodes. A target Service that does not exist serves nowhere. */
export function globalLimitsOf(src: GlobalLimitSource): GlobalLimit[] {
  const out: GlobalLimit[] = [];
  const policies = (src.rateLimitPolicies ?? []).filter((p) => p.spec.global !== undefined);
  if (policies.length === 0) return out;
  const services = new Map(src.services.map((s) => [`${s.metadata.name}.${s.metadata.namespace}`, s]));
  for (const p of policies) {
    const g = p.spec.global!;
    const policy = `RateLimitPolicy/${p.metadata.namespace}/${p.metadata.name}`;
    for (const t of p.spec.targetRefs) {
      if (t.kind !== "Service") continue;
      const host = `${t.name}.${p.metadata.namespace}`;
      const service = services.get(host);
      out.push(
        Object.freeze({
          id: globalLimitId(policy, host),
          policy,
          host,
          requestsPerSecond: g.requestsPerSecond,
          burst: g.burst ?? g.requestsPerSecond,
          nodes: Object.freeze(service ? servingNodes(service, src.workloads) : []),
          alwaysHeaders: p.spec.rateLimitHeaders === "Always",
        }),
      );
    }
  }
  return out;
}

function servingNodes(service: Service, workloads: readonly WorkloadEntry[]): string[] {
  const nodes = new Set<string>();
  for (const w of workloads) if (w.spec.ready !== false && serviceSelects(service, w)) nodes.add(w.spec.node);
  return [...nodes].sort();
}

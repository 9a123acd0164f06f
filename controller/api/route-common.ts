// What HTTPRoute and GRPCRoute share (routes.ts, grpc-route.ts): the resource header, parentRefs
// with the CRD's rules for a parent referenced twice, hostnames, backend weights, the route-level
// rules on rule names and on the total number of matches, and GEP-2257 durations in milliseconds.
import { z } from "zod";
import { GATEWAY_API_VERSION, GatewayDuration, Hostname, RouteMetadata, ParentRef } from "./route-parts.ts";

/** Milliseconds of a GEP-2257 Duration ("1h30m" → 5400000); throws on anything else. */
export function gatewayDurationMs(d: string): number {
  if (!GatewayDuration.safeParse(d).success) throw new RangeError(`invalid Gateway API duration "${d}"`);
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  let total = 0;
  for (const m of d.matchAll(/(\d+)(ms|h|m|s)/g)) total += Number(m[1]) * (unit[m[2] ?? "ms"] ?? 1);
  return total;
}

export const routeHeader = <K extends string>(kind: K) => ({
  apiVersion: z.literal(GATEWAY_API_VERSION, { error: `apiVersion must be "${GATEWAY_API_VERSION}"` }),
  kind: z.literal(kind),
  metadata: RouteMetadata,
});

/** The CRD's two rules for a parent referenced more than once: same fields set, distinct values. */
export const ParentRefs = z
  .array(ParentRef)
  .min(1, { error: "a route needs at least one parentRef (a Service or a Gateway)" })
  .max(32, { error: "at most 32 parentRefs" })
  .superRefine((refs, ctx) => {
    const byParent = new Map<string, string[]>();
    for (const r of refs) {
      const parent = `${r.group}/${r.kind}/${r.name}/${r.namespace ?? ""}`;
      const section = `${r.sectionName === undefined ? "-" : `s:${r.sectionName}`}|${r.port === undefined ? "-" : `p:${r.port}`}`;
      byParent.set(parent, [...(byParent.get(parent) ?? []), section]);
    }
    for (const sections of byParent.values()) {
      if (sections.length < 2) continue;
      const shape = (s: string) => s.replace(/s:[^|]*/, "s").replace(/p:.*/, "p");
      if (new Set(sections.map(shape)).size > 1)
        ctx.addIssue({
          code: "custom",
          message:
            "sectionName or port must be specified when parentRefs includes 2 or more references to the same parent",
        });
      else if (new Set(sections).size < sections.length)
        ctx.addIssue({
          code: "custom",
          message:
            "sectionName or port must be unique when parentRefs includes 2 or more references to the same parent",
        });
    }
  });

export const Hostnames = z.array(Hostname).max(16, { error: "at most 16 hostnames" }).optional();

export const Weight = z
  .number({ error: "weight must be a number" })
  .int({ error: "weight must be an integer" })
  .min(0, { error: "weight must be between 0 and 1000000" })
  .max(1_000_000, { error: "weight must be between 0 and 1000000" })
  .default(1);

export function uniqueRuleNames(rules: readonly { name?: string | undefined }[], ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  rules.forEach((r, i) => {
    if (r.name === undefined) return;
    if (seen.has(r.name))
      ctx.addIssue({
        code: "custom",
        message: "Rule name must be unique within the route",
        path: [i, "name"],
      });
    seen.add(r.name);
  });
}

export function totalMatches(
  rules: readonly { matches?: readonly unknown[] | undefined }[],
  ctx: z.RefinementCtx,
): void {
  const total = rules.reduce((n, r) => n + (r.matches?.length ?? 0), 0);
  if (total > 128)
    ctx.addIssue({
      code: "custom",
      message: `While 16 rules and 64 matches per rule are allowed, the total number of matches across all rules in a route must be less than 128 (found ${total})`,
    });
}

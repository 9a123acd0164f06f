// Gateway API HTTPRoute (`gateway.networking.k8s.io/v1`) for the mesh (GAMMA): routes attach to
// Services through parentRefs and send requests to Service backendRefs. Schemas + inferred types;
// the limits, defaults and CEL rules are the CRD's (gateway-api apis/v1/httproute_types.go);
// docs/resources.md lists every field and our few departures. `timeouts` and `retry` are validated
// and carried. GRPCRoute lives in grpc-route.ts; both are exported from here.
// Invariant: the output of every schema is valid input to it (the wire is parsed twice).
import { z } from "zod";
import { HttpRouteFilters } from "./route-filters.ts";
import type { HttpRouteFilter } from "./route-filters.ts";
import {
  BackendObjectRef,
  GatewayDuration,
  HeaderMatch,
  QueryParamMatch,
  SectionName,
  pathIssues,
  servicePortSet,
  uniqueNames,
} from "./route-parts.ts";
import {
  Hostnames,
  ParentRefs,
  Weight,
  gatewayDurationMs,
  routeHeader,
  totalMatches,
  uniqueRuleNames,
} from "./route-common.ts";

export const HttpPathMatch = z
  .object({
    type: z
      .enum(["Exact", "PathPrefix", "RegularExpression"], {
        error: "type must be one of ['Exact', 'PathPrefix', 'RegularExpression']",
      })
      .default("PathPrefix"),
    value: z.string().max(1024, { error: "value must be at most 1024 characters" }).default("/"),
  })
  .strict()
  .superRefine((p, ctx) => {
    const why = pathIssues(p.type, p.value);
    if (why !== undefined) ctx.addIssue({ code: "custom", message: why, path: ["value"] });
  });

export const HttpRouteMatch = z
  .object({
    path: HttpPathMatch.default({ type: "PathPrefix", value: "/" }),
    headers: z.array(HeaderMatch).max(16, { error: "at most 16 header matches" }).optional(),
    queryParams: z.array(QueryParamMatch).max(16, { error: "at most 16 query parameter matches" }).optional(),
    method: z
      .enum(["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"], {
        error: "method must be one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH",
      })
      .optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    uniqueNames(m.headers, ctx, ["headers"], "header");
    uniqueNames(m.queryParams, ctx, ["queryParams"], "query parameter");
  });

export const HttpBackendRef = z
  .object({ ...BackendObjectRef.shape, weight: Weight, filters: HttpRouteFilters.optional() })
  .strict()
  .refine(servicePortSet, { error: "port is required for a Service reference", path: ["port"] });

export const HttpRouteTimeouts = z
  .object({ request: GatewayDuration.optional(), backendRequest: GatewayDuration.optional() })
  .strict()
  .refine(
    (t) =>
      t.request === undefined ||
      t.backendRequest === undefined ||
      gatewayDurationMs(t.request) === 0 ||
      gatewayDurationMs(t.backendRequest) <= gatewayDurationMs(t.request),
    { error: "backendRequest timeout cannot be longer than request timeout", path: ["backendRequest"] },
  );

/** GEP-1731 (experimental): `attempts` counts retries, not tries. */
export const HttpRouteRetry = z
  .object({
    codes: z
      .array(
        z
          .number()
          .int({ error: "retry codes must be integers" })
          .min(400, { error: "retry codes must be HTTP status codes between 400 and 599" })
          .max(599, { error: "retry codes must be HTTP status codes between 400 and 599" }),
      )
      .optional(),
    attempts: z
      .number()
      .int({ error: "attempts must be an integer" })
      .min(1, { error: "attempts must be at least 1" })
      .optional(),
    backoff: GatewayDuration.optional(),
  })
  .strict();

/** True when a ReplacePrefixMatch path modifier appears in these filters. */
function replacesPrefix(filters: readonly HttpRouteFilter[] | undefined): boolean {
  return (filters ?? []).some((f) =>
    [f.requestRedirect?.path, f.urlRewrite?.path].some((p) => p?.type === "ReplacePrefixMatch"),
  );
}

export const HttpRouteRule = z
  .object({
    name: SectionName.optional(),
    matches: z
      .array(HttpRouteMatch)
      .max(64, { error: "at most 64 matches per rule" })
      .default([{ path: { type: "PathPrefix", value: "/" } }]),
    filters: HttpRouteFilters.optional(),
    backendRefs: z.array(HttpBackendRef).max(16, { error: "at most 16 backendRefs" }).optional(),
    timeouts: HttpRouteTimeouts.optional(),
    retry: HttpRouteRetry.optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    const backends = r.backendRefs ?? [];
    if (backends.length > 0 && (r.filters ?? []).some((f) => f.type === "RequestRedirect"))
      ctx.addIssue({
        code: "custom",
        message: "RequestRedirect filter must not be used together with backendRefs",
        path: ["filters"],
      });
    const onePrefix = r.matches.length === 1 && r.matches[0]?.path.type === "PathPrefix";
    if (onePrefix) return;
    if (replacesPrefix(r.filters))
      ctx.addIssue({
        code: "custom",
        message:
          "When using a RequestRedirect or URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified",
        path: ["matches"],
      });
    backends.forEach((b, i) => {
      if (replacesPrefix(b.filters))
        ctx.addIssue({
          code: "custom",
          message: `Within backendRefs, when using a RequestRedirect or URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified (backendRefs[${i}])`,
          path: ["matches"],
        });
    });
  });

export const HttpRouteSpec = z
  .object({
    parentRefs: ParentRefs,
    hostnames: Hostnames,
    rules: z
      .array(HttpRouteRule)
      .min(1, { error: "rules needs at least one rule (omit it for the default catch-all)" })
      .max(16, { error: "at most 16 rules" })
      .default([{ matches: [{ path: { type: "PathPrefix", value: "/" } }] }])
      .superRefine((rules, ctx) => {
        uniqueRuleNames(rules, ctx);
        totalMatches(rules, ctx);
      }),
  })
  .strict();

export const HTTPRoute = z.object({ ...routeHeader("HTTPRoute"), spec: HttpRouteSpec }).strict();

export type HttpPathMatch = z.infer<typeof HttpPathMatch>;
export type HttpRouteMatch = z.infer<typeof HttpRouteMatch>;
export type HttpBackendRef = z.infer<typeof HttpBackendRef>;
export type HttpRouteTimeouts = z.infer<typeof HttpRouteTimeouts>;
export type HttpRouteRetry = z.infer<typeof HttpRouteRetry>;
export type HttpRouteRule = z.infer<typeof HttpRouteRule>;
export type HTTPRoute = z.infer<typeof HTTPRoute>;
export { gatewayDurationMs } from "./route-common.ts";
export * from "./grpc-route.ts";
export * from "./route-parts.ts";
export * from "./route-filters.ts";

// Gateway API GRPCRoute (`gateway.networking.k8s.io/v1`) for the mesh: service/method matches
// (a gRPC call is POST /<service>/<method>), header matches, the three gRPC filters and backendRefs.
// Limits and messages are the CRD's (gateway-api apis/v1/grpcroute_types.go).
// Invariant: the output of every schema is valid input to it (the wire is parsed twice).
import { z } from "zod";
import { GrpcRouteFilters } from "./route-filters.ts";
import {
  BackendObjectRef,
  HeaderMatch,
  SectionName,
  compiles,
  servicePortSet,
  uniqueNames,
} from "./route-parts.ts";
import { Hostnames, ParentRefs, Weight, routeHeader, totalMatches, uniqueRuleNames } from "./route-common.ts";

const GRPC_SERVICE = /^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$/i;
const GRPC_METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;

export const GrpcMethodMatch = z
  .object({
    type: z
      .enum(["Exact", "RegularExpression"], { error: "type must be Exact or RegularExpression" })
      .default("Exact"),
    service: z.string().max(1024, { error: "service must be at most 1024 characters" }).optional(),
    method: z.string().max(1024, { error: "method must be at most 1024 characters" }).optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.service === undefined && m.method === undefined)
      ctx.addIssue({ code: "custom", message: "One or both of 'service' or 'method' must be specified" });
    for (const [field, value, re, shape] of [
      ["service", m.service, GRPC_SERVICE, "^(?i)\\.?[a-z_][a-z_0-9]*(\\.[a-z_][a-z_0-9]*)*$"],
      ["method", m.method, GRPC_METHOD, "^[A-Za-z_][A-Za-z_0-9]*$"],
    ] as const) {
      if (value === undefined) continue;
      const why = m.type === "RegularExpression" ? compiles(value) : undefined;
      if (m.type === "Exact" && !re.test(value))
        ctx.addIssue({
          code: "custom",
          message: `${field} must only contain valid characters (matching ${shape})`,
          path: [field],
        });
      if (why !== undefined)
        ctx.addIssue({
          code: "custom",
          message: `must be a valid regular expression: ${why}`,
          path: [field],
        });
    }
  });

export const GrpcRouteMatch = z
  .object({
    method: GrpcMethodMatch.optional(),
    headers: z.array(HeaderMatch).max(16, { error: "at most 16 header matches" }).optional(),
  })
  .strict()
  .superRefine((m, ctx) => uniqueNames(m.headers, ctx, ["headers"], "header"));

export const GrpcBackendRef = z
  .object({ ...BackendObjectRef.shape, weight: Weight, filters: GrpcRouteFilters.optional() })
  .strict()
  .refine(servicePortSet, { error: "port is required for a Service reference", path: ["port"] });

export const GrpcRouteRule = z
  .object({
    name: SectionName.optional(),
    /** Empty or absent: every gRPC request matches. */
    matches: z.array(GrpcRouteMatch).max(64, { error: "at most 64 matches per rule" }).optional(),
    filters: GrpcRouteFilters.optional(),
    backendRefs: z.array(GrpcBackendRef).max(16, { error: "at most 16 backendRefs" }).optional(),
  })
  .strict();

export const GrpcRouteSpec = z
  .object({
    parentRefs: ParentRefs,
    hostnames: Hostnames,
    rules: z
      .array(GrpcRouteRule)
      .max(16, { error: "at most 16 rules" })
      .default([])
      .superRefine((rules, ctx) => {
        uniqueRuleNames(rules, ctx);
        totalMatches(rules, ctx);
      }),
  })
  .strict();

export const GRPCRoute = z.object({ ...routeHeader("GRPCRoute"), spec: GrpcRouteSpec }).strict();

export type GrpcMethodMatch = z.infer<typeof GrpcMethodMatch>;
export type GrpcRouteMatch = z.infer<typeof GrpcRouteMatch>;
export type GrpcBackendRef = z.infer<typeof GrpcBackendRef>;
export type GrpcRouteRule = z.infer<typeof GrpcRouteRule>;
export type GRPCRoute = z.infer<typeof GRPCRoute>;

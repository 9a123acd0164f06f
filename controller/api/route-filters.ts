// Gateway API route filters (HTTPRouteFilter, GRPCRouteFilter) as zod schemas, with the CRD's CEL
// rules: a filter carries exactly the field its `type` names, list-level rules forbid repeating a
// filter or combining RequestRedirect with URLRewrite, and a header filter names each header once.
// Supported types are the five the mesh implements plus ExtensionRef to a nodemesh.io FaultInjection
// (at most one per list); CORS, ExternalAuth and ExtensionRefs to any other kind are rejected by name
// (the spec forbids skipping a filter an implementation cannot apply).
import { z } from "zod";
import {
  BackendObjectRef,
  Fraction,
  GatewayPort,
  HeaderName,
  ObjectName,
  PreciseHostname,
} from "./route-parts.ts";

const HeaderValue = z
  .string()
  .min(1, { error: "value must not be empty" })
  .max(4096, { error: "value must be at most 4096 characters" });

const HttpHeader = z.object({ name: HeaderName, value: HeaderValue }).strict();

/** set/add/remove; one action per header name, compared case-insensitively (as the spec says). */
export const HeaderFilter = z
  .object({
    set: z.array(HttpHeader).max(16, { error: "at most 16 headers to set" }).optional(),
    add: z.array(HttpHeader).max(16, { error: "at most 16 headers to add" }).optional(),
    remove: z.array(HeaderName).max(16, { error: "at most 16 headers to remove" }).optional(),
  })
  .strict()
  .superRefine((f, ctx) => {
    const seen = new Map<string, string>();
    const claim = (name: string, path: (string | number)[], action: string) => {
      const lc = name.toLowerCase();
      const prev = seen.get(lc);
      if (prev !== undefined)
        ctx.addIssue({
          code: "custom",
          message: `header "${name}" already has an action (${prev}); only one action per header name is permitted`,
          path,
        });
      else seen.set(lc, action);
    };
    f.set?.forEach((h, i) => claim(h.name, ["set", i, "name"], "set"));
    f.add?.forEach((h, i) => claim(h.name, ["add", i, "name"], "add"));
    f.remove?.forEach((n, i) => claim(n, ["remove", i], "remove"));
  });

export const PathModifier = z
  .object({
    type: z.enum(["ReplaceFullPath", "ReplacePrefixMatch"], {
      error: "type must be ReplaceFullPath or ReplacePrefixMatch",
    }),
    replaceFullPath: z
      .string()
      .max(1024, { error: "must be at most 1024 characters" })
      .regex(/^\//, { error: "must be an absolute path starting with '/'" })
      .optional(),
    /** "" and "/" both strip the matched prefix. */
    replacePrefixMatch: z
      .string()
      .max(1024, { error: "must be at most 1024 characters" })
      .regex(/^$|^\//, { error: "must be empty or an absolute path starting with '/'" })
      .optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    const full = p.replaceFullPath !== undefined;
    const prefix = p.replacePrefixMatch !== undefined;
    const issue = (message: string, field: string) =>
      ctx.addIssue({ code: "custom", message, path: [field] });
    if (p.type === "ReplaceFullPath" && !full)
      issue("replaceFullPath must be specified when type is set to 'ReplaceFullPath'", "replaceFullPath");
    if (full && p.type !== "ReplaceFullPath")
      issue("type must be 'ReplaceFullPath' when replaceFullPath is set", "type");
    if (p.type === "ReplacePrefixMatch" && !prefix)
      issue(
        "replacePrefixMatch must be specified when type is set to 'ReplacePrefixMatch'",
        "replacePrefixMatch",
      );
    if (prefix && p.type !== "ReplacePrefixMatch")
      issue("type must be 'ReplacePrefixMatch' when replacePrefixMatch is set", "type");
  });

export const RequestRedirect = z
  .object({
    scheme: z.enum(["http", "https"], { error: "scheme must be http or https" }).optional(),
    hostname: PreciseHostname.optional(),
    path: PathModifier.optional(),
    port: GatewayPort.optional(),
    statusCode: z
      .union([z.literal(301), z.literal(302), z.literal(303), z.literal(307), z.literal(308)], {
        error: "statusCode must be 301, 302, 303, 307 or 308",
      })
      .default(302),
  })
  .strict();

export const UrlRewrite = z
  .object({ hostname: PreciseHostname.optional(), path: PathModifier.optional() })
  .strict();

/** Neither percent nor fraction: every request is mirrored. */
export const RequestMirror = z
  .object({
    backendRef: BackendObjectRef,
    percent: z
      .number()
      .int({ error: "percent must be an integer" })
      .min(0, { error: "percent must be between 0 and 100" })
      .max(100, { error: "percent must be between 0 and 100" })
      .optional(),
    fraction: Fraction.optional(),
  })
  .strict()
  .refine((m) => !(m.percent !== undefined && m.fraction !== undefined), {
    error: "Only one of percent or fraction may be specified in HTTPRequestMirrorFilter",
    path: ["fraction"],
  });

/** Gateway API LocalObjectReference, narrowed to the one extension the mesh implements. */
export const ExtensionRef = z
  .object({
    group: z.literal("nodemesh.io", {
      error: (iss) =>
        `group must be "nodemesh.io"` +
        (typeof iss.input === "string"
          ? ` (extension group "${iss.input}" is not supported by nodemesh)`
          : ""),
    }),
    kind: z.literal("FaultInjection", {
      error: (iss) =>
        `kind must be "FaultInjection"` +
        (typeof iss.input === "string"
          ? ` (extension kind "${iss.input}" is not supported by nodemesh)`
          : ""),
    }),
    name: ObjectName,
  })
  .strict();

const FIELD = {
  RequestHeaderModifier: "requestHeaderModifier",
  ResponseHeaderModifier: "responseHeaderModifier",
  RequestRedirect: "requestRedirect",
  URLRewrite: "urlRewrite",
  RequestMirror: "requestMirror",
  ExtensionRef: "extensionRef",
} as const;
type FilterType = keyof typeof FIELD;

function unsupported(types: readonly string[]) {
  return (iss: { input?: unknown }) =>
    `type must be one of ${types.join(", ")}` +
    (typeof iss.input === "string" ? ` ("${iss.input}" is not supported by nodemesh)` : "");
}

/** The CRD's "filter.<field> must be nil / must be specified" rules for the types in `types`. */
function fieldMatchesType(types: readonly FilterType[]) {
  return (f: Record<string, unknown> & { type: string }, ctx: z.RefinementCtx) => {
    for (const t of types) {
      const field = FIELD[t];
      if (f[field] !== undefined && f.type !== t)
        ctx.addIssue({
          code: "custom",
          message: `filter.${field} must be nil if the filter.type is not ${t}`,
          path: [field],
        });
      if (f[field] === undefined && f.type === t)
        ctx.addIssue({
          code: "custom",
          message: `filter.${field} must be specified for ${t} filter.type`,
          path: [field],
        });
    }
  };
}

const HTTP_TYPES = [
  "RequestHeaderModifier",
  "ResponseHeaderModifier",
  "RequestMirror",
  "RequestRedirect",
  "URLRewrite",
  "ExtensionRef",
] as const;
const GRPC_TYPES = [
  "RequestHeaderModifier",
  "ResponseHeaderModifier",
  "RequestMirror",
  "ExtensionRef",
] as const;

export const HttpRouteFilter = z
  .object({
    type: z.enum(HTTP_TYPES, { error: unsupported(HTTP_TYPES) }),
    requestHeaderModifier: HeaderFilter.optional(),
    responseHeaderModifier: HeaderFilter.optional(),
    requestRedirect: RequestRedirect.optional(),
    urlRewrite: UrlRewrite.optional(),
    requestMirror: RequestMirror.optional(),
    extensionRef: ExtensionRef.optional(),
  })
  .strict()
  .superRefine(fieldMatchesType(HTTP_TYPES));

export const GrpcRouteFilter = z
  .object({
    type: z.enum(GRPC_TYPES, { error: unsupported(GRPC_TYPES) }),
    requestHeaderModifier: HeaderFilter.optional(),
    responseHeaderModifier: HeaderFilter.optional(),
    requestMirror: RequestMirror.optional(),
    extensionRef: ExtensionRef.optional(),
  })
  .strict()
  .superRefine(fieldMatchesType(GRPC_TYPES));

/**
 * List rules: at most 16, no repeats of the single-use types, not Redirect and URLRewrite together.
 * ExtensionRef may repeat in the spec, but two FaultInjections on one rule would be ambiguous.
 */
function filterList<T extends z.ZodType<{ type: string }>>(item: T, once: readonly FilterType[]) {
  return z
    .array(item)
    .max(16, { error: "at most 16 filters" })
    .superRefine((list, ctx) => {
      for (const t of once)
        if (list.filter((f) => f.type === t).length > 1)
          ctx.addIssue({ code: "custom", message: `${t} filter cannot be repeated` });
      if (list.filter((f) => f.type === "ExtensionRef").length > 1)
        ctx.addIssue({
          code: "custom",
          message: "at most one ExtensionRef filter (FaultInjection) per rule or backendRef",
        });
      if (list.some((f) => f.type === "RequestRedirect") && list.some((f) => f.type === "URLRewrite"))
        ctx.addIssue({
          code: "custom",
          message:
            "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both",
        });
    });
}

export const HttpRouteFilters = filterList(HttpRouteFilter, [
  "RequestHeaderModifier",
  "ResponseHeaderModifier",
  "RequestRedirect",
  "URLRewrite",
]);
export const GrpcRouteFilters = filterList(GrpcRouteFilter, [
  "RequestHeaderModifier",
  "ResponseHeaderModifier",
]);

export type HeaderFilter = z.infer<typeof HeaderFilter>;
export type PathModifier = z.infer<typeof PathModifier>;
export type RequestRedirect = z.infer<typeof RequestRedirect>;
export type UrlRewrite = z.infer<typeof UrlRewrite>;
export type RequestMirror = z.infer<typeof RequestMirror>;
export type ExtensionRef = z.infer<typeof ExtensionRef>;
export type HttpRouteFilter = z.infer<typeof HttpRouteFilter>;
export type GrpcRouteFilter = z.infer<typeof GrpcRouteFilter>;

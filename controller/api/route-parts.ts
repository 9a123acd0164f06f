// Gateway API building blocks shared by HTTPRoute and GRPCRoute (routes.ts): names, parent and
// backend references, header/query/path matches and the filters. Patterns, limits and messages are
// the CRD's (gateway-api apis/v1 httproute_types.go, shared_types.go, object_reference_types.go);
// each CEL rule of the CRD is a refinement here, with the CRD's message where it names the field.
// Self-contained on purpose: resources.ts imports the route kinds, so this file must not import it
// (an ES module cycle would reach these schemas before they exist).
// Invariant: every schema's output is valid input to it (the wire is parsed twice).
import { z } from "zod";

export const GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const HOSTNAME = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** RFC 7230 token characters: the CRD's HeaderName pattern. */
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
/** GEP-2257 Duration, exactly as the CRD: no fractions, at most four parts. */
const GATEWAY_DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
/** Characters allowed in Exact/PathPrefix values (RFC 3986 pchar and "/"). */
const PATH_CHARS = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$/;

export const ObjectName = z
  .string()
  .min(1, { error: "must not be empty" })
  .max(253, { error: "must be at most 253 characters" })
  .regex(DNS_SUBDOMAIN, {
    error: "must be a lowercase DNS name ([a-z0-9-.], starting and ending alphanumeric)",
  });
export const RouteNamespace = z
  .string()
  .max(63, { error: "must be at most 63 characters" })
  .regex(DNS_LABEL, { error: "must be a lowercase DNS label ([a-z0-9-], at most 63 characters)" });
export const SectionName = ObjectName;
export const GatewayPort = z
  .number({ error: "must be a port number" })
  .int({ error: "must be an integer port" })
  .min(1, { error: "must be a port between 1 and 65535" })
  .max(65535, { error: "must be a port between 1 and 65535" });
export const HeaderName = z
  .string()
  .min(1, { error: "header name must not be empty" })
  .max(256, { error: "header name must be at most 256 characters" })
  .regex(HEADER_NAME, {
    error: "must be a valid HTTP header name (RFC 7230 token characters, no spaces or ':')",
  });
export const GatewayDuration = z.string().regex(GATEWAY_DURATION, {
  error:
    'must be a Gateway API duration such as "500ms", "10s" or "1h30m" (GEP-2257: whole numbers, h/m/s/ms)',
});
export const PreciseHostname = z
  .string()
  .min(1)
  .max(253, { error: "must be at most 253 characters" })
  .regex(DNS_SUBDOMAIN, { error: "must be a lowercase DNS hostname without wildcard (e.g. example.org)" });
export const Hostname = z
  .string()
  .min(1)
  .max(253, { error: "must be at most 253 characters" })
  .regex(HOSTNAME, { error: "must be a lowercase DNS hostname, optionally starting with *." });

/** Kubernetes object metadata; `creationTimestamp` orders tied routes (oldest wins). */
export const RouteMetadata = z
  .object({
    name: ObjectName,
    namespace: RouteNamespace.default("default"),
    labels: z
      .record(z.string().min(1, { error: "label keys must not be empty" }), z.string().max(63))
      .optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    creationTimestamp: z.iso
      .datetime({ offset: true, error: 'must be an RFC 3339 time such as "2024-05-01T12:00:00Z"' })
      .optional(),
  })
  .strict();

/** A regular expression that compiles here (the agent compiles it again, once per snapshot). */
export function compiles(pattern: string): string | undefined {
  try {
    new RegExp(pattern);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

// ---- references ----------------------------------------------------------------------------------

export const GATEWAY_GROUP = "gateway.networking.k8s.io";

/**
 * A route's parent: a Service frontend (GAMMA: `group: ""`, `kind: Service`, name + VIP, optionally one
 * port of it) or a Gateway (docs/ingress.md). As in the CRD, an omitted group and kind mean a Gateway.
 */
export const ParentRef = z
  .object({
    group: z.string().max(253, { error: "group must be at most 253 characters" }).default(GATEWAY_GROUP),
    kind: z.string().max(63, { error: "kind must be at most 63 characters" }).default("Gateway"),
    name: ObjectName,
    /** Default: the route's namespace (a producer route); another namespace makes a consumer route. */
    namespace: RouteNamespace.optional(),
    /** The Service port's name, or the Gateway listener's name. */
    sectionName: SectionName.optional(),
    /** A Service port, or a Gateway listener port. */
    port: GatewayPort.optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (isServiceParent(p) || isGatewayParent(p)) return;
    ctx.addIssue({
      code: "custom",
      path: ["kind"],
      message: `parentRef ${p.group === "" ? "core" : p.group}/${p.kind} is not supported: a route attaches to a Service (group "", kind Service) or to a Gateway (group ${GATEWAY_GROUP}, kind Gateway; the defaults)`,
    });
  });
/** The name routes used before Gateways: every parentRef schema is this one. */
export const ServiceParentRef = ParentRef;

export function isServiceParent(p: { group: string; kind: string }): boolean {
  return (p.group === "" || p.group === "core") && p.kind === "Service";
}

export function isGatewayParent(p: { group: string; kind: string }): boolean {
  return p.group === GATEWAY_GROUP && p.kind === "Gateway";
}

/** BackendObjectReference: any group/kind is accepted (an unknown kind answers 500, as the spec says). */
export const BackendObjectRef = z
  .object({
    group: z
      .string()
      .max(253)
      .regex(/^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, {
        error: 'must be "" (the core group) or a DNS subdomain',
      })
      .default(""),
    kind: z
      .string()
      .min(1)
      .max(63)
      .regex(/^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/, { error: "must be a Kubernetes kind such as Service" })
      .default("Service"),
    name: ObjectName,
    namespace: RouteNamespace.optional(),
    port: GatewayPort.optional(),
  })
  .strict()
  .refine(servicePortSet, { error: "port is required for a Service reference", path: ["port"] });

/** The CRD's "Must have port for Service reference" (also for the backendRef shapes built on it). */
export function servicePortSet(b: { group: string; kind: string; port?: number | undefined }): boolean {
  return !(isCoreService(b) && b.port === undefined);
}

export function isCoreService(b: { group: string; kind: string }): boolean {
  return (b.group === "" || b.group === "core") && b.kind === "Service";
}

export const Fraction = z
  .object({
    numerator: z.number().int().min(0, { error: "numerator must be at least 0" }),
    denominator: z.number().int().min(1, { error: "denominator must be at least 1" }).default(100),
  })
  .strict()
  .refine((f) => f.numerator <= f.denominator, {
    error: "numerator must be less than or equal to denominator",
    path: ["numerator"],
  });

// ---- matches -------------------------------------------------------------------------------------

export const HeaderMatch = z
  .object({
    type: z
      .enum(["Exact", "RegularExpression"], { error: "type must be Exact or RegularExpression" })
      .default("Exact"),
    name: HeaderName,
    value: z
      .string()
      .min(1, { error: "value must not be empty" })
      .max(4096, { error: "value must be at most 4096 characters" }),
  })
  .strict()
  .superRefine((m, ctx) => regexIssue(m.type, m.value, ctx, ["value"]));

export const QueryParamMatch = z
  .object({
    type: z
      .enum(["Exact", "RegularExpression"], { error: "type must be Exact or RegularExpression" })
      .default("Exact"),
    name: HeaderName,
    value: z
      .string()
      .min(1, { error: "value must not be empty" })
      .max(1024, { error: "value must be at most 1024 characters" }),
  })
  .strict()
  .superRefine((m, ctx) => regexIssue(m.type, m.value, ctx, ["value"]));

function regexIssue(type: string, value: string, ctx: z.RefinementCtx, path: (string | number)[]): void {
  if (type !== "RegularExpression") return;
  const why = compiles(value);
  if (why !== undefined)
    ctx.addIssue({ code: "custom", message: `must be a valid regular expression: ${why}`, path });
}

/** The CRD's listType=map: a name appears once (exact spelling). */
export function uniqueNames(
  list: readonly { name: string }[] | undefined,
  ctx: z.RefinementCtx,
  path: (string | number)[],
  what: string,
): void {
  const seen = new Set<string>();
  (list ?? []).forEach((h, i) => {
    if (seen.has(h.name))
      ctx.addIssue({
        code: "custom",
        message: `duplicate ${what} name "${h.name}"`,
        path: [...path, i, "name"],
      });
    seen.add(h.name);
  });
}

/** The CRD's HTTPPathMatch CEL rules, in its order and with its messages. */
export function pathIssues(type: string, value: string): string | undefined {
  if (type === "RegularExpression") {
    const why = compiles(value);
    return why === undefined ? undefined : `must be a valid regular expression: ${why}`;
  }
  const on = "when type one of ['Exact', 'PathPrefix']";
  if (!value.startsWith("/")) return `value must be an absolute path and start with '/' ${on}`;
  for (const bad of ["//", "/./", "/../", "%2f", "%2F", "#"])
    if (value.includes(bad)) return `must not contain '${bad}' ${on}`;
  for (const bad of ["/..", "/."]) if (value.endsWith(bad)) return `must not end with '${bad}' ${on}`;
  if (!PATH_CHARS.test(value)) return `must only contain valid path characters (RFC 3986 pchar or %XX) ${on}`;
  return undefined;
}

export type RouteMetadata = z.infer<typeof RouteMetadata>;
export type ParentRef = z.infer<typeof ParentRef>;
export type ServiceParentRef = ParentRef;
export type BackendObjectRef = z.infer<typeof BackendObjectRef>;
export type Fraction = z.infer<typeof Fraction>;
export type HeaderMatch = z.infer<typeof HeaderMatch>;
export type QueryParamMatch = z.infer<typeof QueryParamMatch>;

// The compiled route tables' shapes: what agent/state/routes.ts produces from a snapshot's HTTPRoutes
// and GRPCRoutes and what the HTTP data path (agent/http/route.ts, filters.ts) consumes. Everything
// here is plain frozen data; names of headers are lowercase, durations are milliseconds, Service
// references are resolved against the snapshot ("namespace/name", undefined = unresolvable).
import type { FaultInjectionSettings } from "../../controller/api/index.ts";

export interface RouteRequest {
  readonly method: string;
  /** Path only, percent-encoded as received, no query. */
  readonly path: string;
  /** Raw query without "?", "" when none. */
  readonly query: string;
  /** Lowercase names (node's IncomingHttpHeaders). */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** A header filter with lowercase names; the schema guarantees one action per name. */
export interface HeaderModifier {
  readonly set: readonly { readonly name: string; readonly value: string }[];
  readonly add: readonly { readonly name: string; readonly value: string }[];
  readonly remove: readonly string[];
}

export interface PathModifier {
  readonly type: "ReplaceFullPath" | "ReplacePrefixMatch";
  readonly value: string;
}

export type RedirectStatus = 301 | 302 | 303 | 307 | 308;

export type HttpFilter =
  | { readonly type: "RequestHeaderModifier"; readonly headers: HeaderModifier }
  | { readonly type: "ResponseHeaderModifier"; readonly headers: HeaderModifier }
  | {
      readonly type: "RequestRedirect";
      readonly scheme: "http" | "https" | undefined;
      readonly hostname: string | undefined;
      readonly port: number | undefined;
      readonly path: PathModifier | undefined;
      readonly statusCode: RedirectStatus;
    }
  | {
      readonly type: "URLRewrite";
      readonly hostname: string | undefined;
      readonly path: PathModifier | undefined;
    }
  | {
      /** Responses are ignored; a mirror to an unresolvable backend is dropped at compile time. */
      readonly type: "RequestMirror";
      /** "namespace/name" of the Service, and its port. */
      readonly service: string;
      readonly port: number;
      /** Mirror numerator/denominator of requests (100/100 when the route sets neither). */
      readonly numerator: number;
      readonly denominator: number;
    };

/** An ExtensionRef filter to a FaultInjection, resolved against the snapshot. */
export interface RuleFault {
  /** "namespace/name" of the FaultInjection (the route's namespace: a LocalObjectReference). */
  readonly ref: string;
  /** undefined = not in the snapshot: matched requests get the spec's 500 for an unresolved filter. */
  readonly settings: FaultInjectionSettings | undefined;
}

export interface RouteBackend {
  /** "namespace/name" of a Service in the snapshot; undefined = unresolvable (answer 500). */
  readonly service: string | undefined;
  /** Service port. */
  readonly port: number;
  readonly weight: number;
  readonly filters: readonly HttpFilter[];
  /** The backendRef's own FaultInjection; it replaces the rule's for requests sent to this backend. */
  readonly fault?: RuleFault;
}

/** GEP-1731 values; `attempts` counts retries (1 + attempts tries at most). */
export interface RouteRetry {
  readonly codes: readonly number[];
  readonly attempts: number | undefined;
  readonly backoffMs: number | undefined;
}

export interface CompiledRule {
  /** "namespace/name" of the HTTPRoute/GRPCRoute (the route_name metric label). */
  readonly route: string;
  readonly kind: "HTTPRoute" | "GRPCRoute";
  /** Rule index within the route. */
  readonly index: number;
  readonly name: string | undefined;
  readonly filters: readonly HttpFilter[];
  /** Empty = no backendRefs: the spec's 500 unless a redirect filter answers. */
  readonly backends: readonly RouteBackend[];
  /** 0 = disabled explicitly ("0s"); absent = not set. */
  readonly timeouts: { readonly requestMs?: number; readonly backendRequestMs?: number };
  readonly retry: RouteRetry | undefined;
  /** The rule's FaultInjection (ExtensionRef filter); it replaces the TrafficPolicy `fault`. */
  readonly fault?: RuleFault;
}

export interface RouteMatchResult {
  readonly rule: CompiledRule;
  /** The path match that selected the rule (ReplacePrefixMatch replaces this prefix). */
  readonly pathMatch: { type: "Exact" | "PathPrefix" | "RegularExpression"; value: string };
}

export interface RouteTable {
  /**
   * The rule for a request from a client in `sourceNamespace`. undefined = the service is routed
   * for this client but no rule matches → the caller answers 404. When no route applies to this
   * client at all (only consumer routes of other namespaces are attached), the answer is a
   * pass-through rule (route "", see PASSTHROUGH_ROUTE) that sends the request to the service
   * port itself, exactly as if no route were attached.
   */
  match(req: RouteRequest, sourceNamespace: string): RouteMatchResult | undefined;
  /** Whether any route applies to clients of this namespace (false → match() passes through). */
  appliesTo(sourceNamespace: string): boolean;
}

/** `CompiledRule.route` of the pass-through answer (no route applies to the client). */
export const PASSTHROUGH_ROUTE = "";

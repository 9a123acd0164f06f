// Compiles a snapshot's HTTPRoutes and GRPCRoutes into one route table per service port
// ("namespace/name:port", as ServicePortInfo.key), once per snapshot. GAMMA semantics (GEP-1294):
// - a parentRef attaches to the Service's ports (all, or the one its `port`/`sectionName` names);
//   a parentRef to a Service that is not in the snapshot attaches to nothing;
// - a route in the Service's namespace is a producer route (every client); a route elsewhere is a
//   consumer route: it applies only to clients in its own namespace, and for them it replaces the
//   producer routes (they use the merged consumer routes of their namespace, or the producer ones);
// - within one audience, when both kinds attach to a port, GRPCRoute wins and the HTTPRoutes are
//   ignored (GEP-1294 route-type specificity; the spec calls the losers Conflicted);
// - backendRefs resolve to "namespace/name" when the Service and its port exist; otherwise
//   `service` is undefined and the data path answers 500 for that share, as the spec says;
// - an ExtensionRef filter names a FaultInjection in the route's namespace; it is carried as the
//   rule's (or backendRef's) `fault`, with `settings` undefined when it dangles (500, as for backends).
import { gatewayDurationMs, isCoreService, isServiceParent } from "../../controller/api/index.ts";
import type {
  BackendObjectRef,
  FaultInjection,
  GRPCRoute,
  GrpcRouteFilter,
  HTTPRoute,
  HeaderFilter,
  HttpRouteFilter,
  MeshConfig,
  PathModifier as SchemaPathModifier,
  Service,
} from "../../controller/api/index.ts";
import { ServicePortRoutes, byPrecedence, grpcEntry, httpEntry } from "./route-match.ts";
import type { MatchEntry } from "./route-match.ts";
import type {
  CompiledRule,
  HeaderModifier,
  HttpFilter,
  PathModifier,
  RouteBackend,
  RouteTable,
  RuleFault,
} from "./route-types.ts";
import { PASSTHROUGH_ROUTE } from "./route-types.ts";

export * from "./route-types.ts";
export { prefixMatches } from "./route-match.ts";

type AnyRoute = HTTPRoute | GRPCRoute;
const PRODUCER = "";

/** Resolves a route's references against one snapshot (shared with the gateway role, agent/gateway/). */
export class Resolver {
  readonly #services = new Map<string, Service>();
  readonly #faults = new Map<string, FaultInjection>();
  constructor(services: readonly Service[], faults: readonly FaultInjection[]) {
    for (const s of services) this.#services.set(`${s.metadata.namespace}/${s.metadata.name}`, s);
    for (const f of faults) this.#faults.set(`${f.metadata.namespace}/${f.metadata.name}`, f);
  }
  /** The list's FaultInjection ExtensionRef (the schema allows at most one), resolved or dangling. */
  fault(
    list: readonly (HttpRouteFilter | GrpcRouteFilter)[] | undefined,
    routeNs: string,
  ): RuleFault | undefined {
    const ext = list?.find((f) => f.type === "ExtensionRef")?.extensionRef;
    if (!ext) return undefined;
    const ref = `${routeNs}/${ext.name}`;
    return Object.freeze({ ref, settings: this.#faults.get(ref)?.spec });
  }
  service(namespace: string, name: string): Service | undefined {
    return this.#services.get(`${namespace}/${name}`);
  }
  /** "namespace/name" when the reference is a core Service with that port in the snapshot. */
  backend(ref: BackendObjectRef, routeNs: string): string | undefined {
    if (!isCoreService(ref) || ref.port === undefined) return undefined;
    const ns = ref.namespace ?? routeNs;
    const s = this.service(ns, ref.name);
    return s && s.spec.ports.some((p) => p.port === ref.port) ? `${ns}/${ref.name}` : undefined;
  }
}

/** `{ [key]: value }` when value is set, else `{}` (exactOptionalPropertyTypes forbids an explicit undefined). */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]?: V });
}

/** Oldest creationTimestamp first (routes without one after those with one), then "namespace/name". */
export function byAge(a: AnyRoute, b: AnyRoute): number {
  const ta = a.metadata.creationTimestamp ? Date.parse(a.metadata.creationTimestamp) : Infinity;
  const tb = b.metadata.creationTimestamp ? Date.parse(b.metadata.creationTimestamp) : Infinity;
  if (ta !== tb) return ta < tb ? -1 : 1;
  const na = `${a.metadata.namespace}/${a.metadata.name}`;
  const nb = `${b.metadata.namespace}/${b.metadata.name}`;
  return na < nb ? -1 : na > nb ? 1 : 0;
}

function headerModifier(f: HeaderFilter): HeaderModifier {
  const lower = (h: { name: string; value: string }) =>
    Object.freeze({ name: h.name.toLowerCase(), value: h.value });
  return Object.freeze({
    set: Object.freeze((f.set ?? []).map(lower)),
    add: Object.freeze((f.add ?? []).map(lower)),
    remove: Object.freeze((f.remove ?? []).map((n) => n.toLowerCase())),
  });
}

function pathModifier(p: SchemaPathModifier | undefined): PathModifier | undefined {
  if (!p) return undefined;
  const value = p.type === "ReplaceFullPath" ? p.replaceFullPath : p.replacePrefixMatch;
  return Object.freeze({ type: p.type, value: value ?? "" });
}

function compileFilter(
  f: HttpRouteFilter | GrpcRouteFilter,
  routeNs: string,
  r: Resolver,
): HttpFilter | undefined {
  if (f.type === "RequestHeaderModifier" && f.requestHeaderModifier)
    return { type: f.type, headers: headerModifier(f.requestHeaderModifier) };
  if (f.type === "ResponseHeaderModifier" && f.responseHeaderModifier)
    return { type: f.type, headers: headerModifier(f.responseHeaderModifier) };
  if (f.type === "RequestMirror" && f.requestMirror) {
    const m = f.requestMirror;
    const service = r.backend(m.backendRef, routeNs);
    // The spec: a mirror whose backend cannot be resolved is not configured (the controller warned).
    if (service === undefined || m.backendRef.port === undefined) return undefined;
    const [numerator, denominator] =
      m.fraction !== undefined ? [m.fraction.numerator, m.fraction.denominator] : [m.percent ?? 100, 100];
    return { type: f.type, service, port: m.backendRef.port, numerator, denominator };
  }
  if ("requestRedirect" in f && f.type === "RequestRedirect" && f.requestRedirect) {
    const d = f.requestRedirect;
    return {
      type: f.type,
      scheme: d.scheme,
      hostname: d.hostname,
      port: d.port,
      path: pathModifier(d.path),
      statusCode: d.statusCode,
    };
  }
  if ("urlRewrite" in f && f.type === "URLRewrite" && f.urlRewrite)
    return { type: f.type, hostname: f.urlRewrite.hostname, path: pathModifier(f.urlRewrite.path) };
  return undefined;
}

function compileFilters(
  list: readonly (HttpRouteFilter | GrpcRouteFilter)[] | undefined,
  routeNs: string,
  r: Resolver,
): readonly HttpFilter[] {
  const out: HttpFilter[] = [];
  for (const f of list ?? []) {
    const c = compileFilter(f, routeNs, r);
    if (c) out.push(Object.freeze(c));
  }
  return Object.freeze(out);
}

/** Every match of every rule of one route, compiled once (shared by all ports it attaches to). */
export function routeEntries(route: AnyRoute, order: number, r: Resolver): MatchEntry[] {
  const ns = route.metadata.namespace;
  const id = `${ns}/${route.metadata.name}`;
  const entries: MatchEntry[] = [];
  route.spec.rules.forEach((rule, index) => {
    const backends: RouteBackend[] = (rule.backendRefs ?? []).map((b) =>
      Object.freeze({
        service: r.backend(b, ns),
        port: b.port ?? 0,
        weight: b.weight,
        filters: compileFilters(b.filters, ns, r),
        ...optional("fault", r.fault(b.filters, ns)),
      }),
    );
    const t = "timeouts" in rule ? rule.timeouts : undefined;
    const retry = "retry" in rule ? rule.retry : undefined;
    const compiled: CompiledRule = Object.freeze({
      route: id,
      kind: route.kind,
      index,
      name: rule.name,
      filters: compileFilters(rule.filters, ns, r),
      backends: Object.freeze(backends),
      timeouts: Object.freeze({
        ...(t?.request !== undefined ? { requestMs: gatewayDurationMs(t.request) } : {}),
        ...(t?.backendRequest !== undefined ? { backendRequestMs: gatewayDurationMs(t.backendRequest) } : {}),
      }),
      retry: retry
        ? Object.freeze({
            codes: Object.freeze([...(retry.codes ?? [])]),
            attempts: retry.attempts,
            backoffMs: retry.backoff === undefined ? undefined : gatewayDurationMs(retry.backoff),
          })
        : undefined,
      ...optional("fault", r.fault(rule.filters, ns)),
    });
    if (route.kind === "HTTPRoute") {
      const matches = (rule as HTTPRoute["spec"]["rules"][number]).matches;
      const list = matches.length > 0 ? matches : [{ path: { type: "PathPrefix" as const, value: "/" } }];
      list.forEach((m, i) => entries.push(httpEntry(compiled, m, order, i)));
    } else {
      const matches = (rule as GRPCRoute["spec"]["rules"][number]).matches ?? [];
      const list = matches.length > 0 ? matches : [{}];
      list.forEach((m, i) => entries.push(grpcEntry(compiled, m, order, i)));
    }
  });
  return entries;
}

/** port key → audience ("" = producer, else the consumer namespace) → routes attached. */
function attachments(routes: readonly AnyRoute[], r: Resolver): Map<string, Map<string, Set<AnyRoute>>> {
  const out = new Map<string, Map<string, Set<AnyRoute>>>();
  for (const route of routes) {
    const ns = route.metadata.namespace;
    for (const p of route.spec.parentRefs) {
      if (!isServiceParent(p)) continue; // a Gateway parent: agent/gateway/ compiles those
      const svcNs = p.namespace ?? ns;
      const svc = r.service(svcNs, p.name);
      if (!svc) continue;
      const audience = svcNs === ns ? PRODUCER : ns;
      for (const sp of svc.spec.ports) {
        if (p.port !== undefined && sp.port !== p.port) continue;
        if (p.sectionName !== undefined && sp.name !== p.sectionName) continue;
        const key = `${svcNs}/${p.name}:${sp.port}`;
        let byAudience = out.get(key);
        if (!byAudience) out.set(key, (byAudience = new Map()));
        let set = byAudience.get(audience);
        if (!set) byAudience.set(audience, (set = new Set()));
        set.add(route);
      }
    }
  }
  return out;
}

function passthrough(key: string): CompiledRule {
  const i = key.lastIndexOf(":");
  const backend = Object.freeze({
    service: key.slice(0, i),
    port: Number(key.slice(i + 1)),
    weight: 1,
    filters: [],
  });
  return Object.freeze({
    route: PASSTHROUGH_ROUTE,
    kind: "HTTPRoute",
    index: 0,
    name: undefined,
    filters: Object.freeze([]),
    backends: Object.freeze([backend]),
    timeouts: Object.freeze({}),
    retry: undefined,
  });
}

/** Key: "namespace/name:port". A service port with no route attached has no entry. */
export function compileRoutes(config: MeshConfig): ReadonlyMap<string, RouteTable> {
  const r = new Resolver(config.services, config.faultInjections ?? []);
  const routes: AnyRoute[] = [...(config.httpRoutes ?? []), ...(config.grpcRoutes ?? [])].sort(byAge);
  const entries = new Map<AnyRoute, MatchEntry[]>();
  routes.forEach((route, order) => entries.set(route, routeEntries(route, order, r)));
  const tables = new Map<string, RouteTable>();
  for (const [key, byAudience] of attachments(routes, r)) {
    const lists = new Map<string, readonly MatchEntry[]>();
    for (const [audience, set] of byAudience) {
      const grpcWins = [...set].some((x) => x.kind === "GRPCRoute");
      const list = [...set]
        .filter((x) => !grpcWins || x.kind === "GRPCRoute")
        .flatMap((x) => entries.get(x) ?? [])
        .sort(byPrecedence);
      lists.set(audience, Object.freeze(list));
    }
    const producer = lists.get(PRODUCER);
    lists.delete(PRODUCER);
    const pass = Object.freeze({
      rule: passthrough(key),
      pathMatch: Object.freeze({ type: "PathPrefix" as const, value: "/" }),
    });
    tables.set(key, new ServicePortRoutes(producer, lists, pass));
  }
  return tables;
}

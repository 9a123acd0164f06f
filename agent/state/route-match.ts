// Route matches compiled into predicates with a precedence key, and the per-service-port table that
// picks the first matching entry. Regular expressions are compiled once here (per snapshot), and
// anchored: a RegularExpression value must match the whole path, header or parameter value, as Envoy
// and Istio do. Precedence (Gateway API HTTPRouteRule.matches / GRPCRouteRule.matches docs):
//   HTTPRoute: Exact path, then PathPrefix by length, then RegularExpression; then a method match;
//              then more header matches; then more query matches; then route age/name; rule; match.
//   GRPCRoute: longer exact service, then longer exact method, then more header matches; then route
//              age/name; rule; match.
import type {
  GrpcRouteMatch,
  HeaderMatch,
  HttpRouteMatch,
  QueryParamMatch,
} from "../../controller/api/index.ts";
import type { CompiledRule, RouteMatchResult, RouteRequest, RouteTable } from "./route-types.ts";

/** Per-request lazily parsed state shared by the predicates of one lookup. */
interface Lookup {
  params: URLSearchParams | undefined;
}

type Predicate = (req: RouteRequest, l: Lookup) => boolean;

export interface MatchEntry {
  readonly result: RouteMatchResult;
  readonly test: Predicate;
  /** Compared element by element, smaller first. */
  readonly key: readonly number[];
}

const anchored = (pattern: string) => new RegExp(`^(?:${pattern})$`);
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function headerValue(req: RouteRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(",") : v;
}

/** First duplicate wins for names that differ only in case (the spec's rule for headers). */
function headerPredicates(headers: readonly HeaderMatch[] | undefined): Predicate[] {
  const seen = new Set<string>();
  const out: Predicate[] = [];
  for (const h of headers ?? []) {
    const name = h.name.toLowerCase();
    if (seen.has(name)) continue;
    seen.add(name);
    if (h.type === "Exact") out.push((req) => headerValue(req, name) === h.value);
    else {
      const re = anchored(h.value);
      out.push((req) => {
        const v = headerValue(req, name);
        return v !== undefined && re.test(v);
      });
    }
  }
  return out;
}

/** Names are case-sensitive; a repeated parameter is matched on its first value (the spec's advice). */
function queryPredicates(params: readonly QueryParamMatch[] | undefined): Predicate[] {
  return (params ?? []).map((q) => {
    const re = q.type === "RegularExpression" ? anchored(q.value) : undefined;
    return (req: RouteRequest, l: Lookup) => {
      l.params ??= new URLSearchParams(req.query);
      const v = l.params.get(q.name);
      return v !== null && (re ? re.test(v) : v === q.value);
    };
  });
}

/** Segment-wise prefix; a trailing "/" in the match value is ignored ("/abc" matches "/abc/def", not "/abcd"). */
export function prefixMatches(prefix: string, path: string): boolean {
  const p = prefix.endsWith("/") ? prefix.replace(/\/+$/, "") : prefix;
  if (p === "") return true;
  return path === p || (path.startsWith(p) && path.charCodeAt(p.length) === 47); /* "/" */
}

function all(preds: readonly Predicate[]): Predicate {
  if (preds.length === 0) return () => true;
  return (req, l) => {
    for (const p of preds) if (!p(req, l)) return false;
    return true;
  };
}

export function httpEntry(
  rule: CompiledRule,
  m: HttpRouteMatch,
  routeOrder: number,
  matchIndex: number,
): MatchEntry {
  const path = m.path;
  const preds: Predicate[] = [];
  if (m.method !== undefined) preds.push((req) => req.method === m.method);
  if (path.type === "Exact") preds.push((req) => req.path === path.value);
  else if (path.type === "PathPrefix") {
    // "/" (the default match) matches every path: no predicate to run.
    if (path.value.replace(/\/+$/, "") !== "") preds.push((req) => prefixMatches(path.value, req.path));
  } else {
    const re = anchored(path.value);
    preds.push((req) => re.test(req.path));
  }
  preds.push(...headerPredicates(m.headers), ...queryPredicates(m.queryParams));
  const rank = path.type === "Exact" ? 0 : path.type === "PathPrefix" ? 1 : 2;
  const length = path.type === "PathPrefix" ? path.value.replace(/\/+$/, "").length : path.value.length;
  const distinctHeaders = new Set((m.headers ?? []).map((h) => h.name.toLowerCase())).size;
  return {
    result: Object.freeze({ rule, pathMatch: Object.freeze({ type: path.type, value: path.value }) }),
    test: all(preds),
    key: [
      rank,
      -length,
      m.method === undefined ? 1 : 0,
      -distinctHeaders,
      -(m.queryParams?.length ?? 0),
      routeOrder,
      rule.index,
      matchIndex,
    ],
  };
}

/** gRPC calls are POST /<package.Service>/<Method>; an absent service or method matches any. */
export function grpcEntry(
  rule: CompiledRule,
  m: GrpcRouteMatch,
  routeOrder: number,
  matchIndex: number,
): MatchEntry {
  const preds: Predicate[] = [(req) => req.method === "POST"];
  const mm = m.method;
  let pathMatch: RouteMatchResult["pathMatch"] = { type: "PathPrefix", value: "/" };
  let serviceLength = 0;
  let methodLength = 0;
  if (mm) {
    const exact = mm.type === "Exact";
    const service = mm.service === undefined ? "[^/]+" : exact ? escape(mm.service) : `(?:${mm.service})`;
    const method = mm.method === undefined ? "[^/]+" : exact ? escape(mm.method) : `(?:${mm.method})`;
    if (exact && mm.service !== undefined && mm.method !== undefined) {
      const full = `/${mm.service}/${mm.method}`;
      preds.push((req) => req.path === full);
      pathMatch = { type: "Exact", value: full };
    } else {
      const re = new RegExp(`^/${service}/${method}$`);
      preds.push((req) => re.test(req.path));
      pathMatch = { type: "RegularExpression", value: re.source };
    }
    serviceLength = exact ? (mm.service?.length ?? 0) : 0;
    methodLength = exact ? (mm.method?.length ?? 0) : 0;
  }
  preds.push(...headerPredicates(m.headers));
  const distinctHeaders = new Set((m.headers ?? []).map((h) => h.name.toLowerCase())).size;
  return {
    result: Object.freeze({ rule, pathMatch: Object.freeze(pathMatch) }),
    test: all(preds),
    key: [-serviceLength, -methodLength, -distinctHeaders, routeOrder, rule.index, matchIndex],
  };
}

export function byPrecedence(a: MatchEntry, b: MatchEntry): number {
  for (let i = 0; i < a.key.length; i++) {
    const d = (a.key[i] ?? 0) - (b.key[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The entries that apply to one service port. Invariants: `producer` and every consumer list are
 * sorted by precedence and frozen; a namespace with a consumer list never sees the producer list.
 */
export class ServicePortRoutes implements RouteTable {
  readonly #producer: readonly MatchEntry[] | undefined;
  readonly #consumers: ReadonlyMap<string, readonly MatchEntry[]>;
  readonly #passthrough: RouteMatchResult;

  constructor(
    producer: readonly MatchEntry[] | undefined,
    consumers: ReadonlyMap<string, readonly MatchEntry[]>,
    passthrough: RouteMatchResult,
  ) {
    this.#producer = producer;
    this.#consumers = consumers;
    this.#passthrough = passthrough;
  }

  match(req: RouteRequest, sourceNamespace: string): RouteMatchResult | undefined {
    const list = this.#consumers.get(sourceNamespace) ?? this.#producer;
    if (!list) return this.#passthrough;
    const lookup: Lookup = { params: undefined };
    for (const e of list) if (e.test(req, lookup)) return e.result;
    return undefined;
  }

  appliesTo(sourceNamespace: string): boolean {
    return this.#consumers.has(sourceNamespace) || this.#producer !== undefined;
  }
}

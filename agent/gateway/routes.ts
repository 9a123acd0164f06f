// The ingress gateways one node runs, compiled from a snapshot (pure, once per snapshot): each Gateway of
// class `nodemesh` whose annotation names this node, its listeners grouped by port, and per port one
// table from the request's hostname to the HTTPRoute/GRPCRoute rules attached there. Attachment and
// hostname intersection are controller/api's (gateway-attach.ts); rule compilation is the mesh routes'
// (agent/state/routes.ts), so filters, weights, timeouts, retries and faults mean the same on both.
// Lookup: the exact hostname, else the longest matching wildcard, else the rules without a hostname
// (the spec's "most specific hostname first"); within them the HTTPRoute precedence. A gRPC request
// tries the GRPCRoute rules of its hostname first, then the HTTPRoute rules.
import {
  attachToGateway,
  gatewayIdentity,
  gatewayNodes,
  gatewayTrustedProxies,
  isOurGateway,
  namesGateway,
  type Gateway,
  type GRPCRoute,
  type HTTPRoute,
  type MeshConfig,
} from "../../controller/api/index.ts";
import { byPrecedence, type MatchEntry } from "../state/route-match.ts";
import { Resolver, byAge, routeEntries, type RouteMatchResult, type RouteRequest } from "../state/routes.ts";

export interface GatewayListenerInfo {
  readonly name: string;
  readonly hostname: string | undefined;
  /** "namespace/name" of each TLSCertificate, in the listener's order (HTTPS only). */
  readonly certificates: readonly string[];
}

export interface GatewayPortPlan {
  /** "namespace/name:port": the listener key in logs and metrics. */
  readonly key: string;
  readonly port: number;
  readonly protocol: "HTTP" | "HTTPS";
  /** Addresses to bind (the Gateway's spec.addresses); empty = every address (0.0.0.0). */
  readonly addresses: readonly string[];
  readonly listeners: readonly GatewayListenerInfo[];
  readonly routes: HostRoutes;
}

export interface GatewayPlan {
  /** "namespace/name" */
  readonly key: string;
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly spiffeId: string;
  /** Proxies in front of the Gateway whose X-Forwarded-For entries are believed (0: none). */
  readonly trustedProxies: number;
  readonly ports: readonly GatewayPortPlan[];
}

interface Bucket {
  http: MatchEntry[];
  grpc: MatchEntry[];
}

/** Outcome of a lookup: a rule, `undefined` (no rule matches: 404), or no hostname of this port (404). */
export type GatewayMatch = RouteMatchResult | undefined | "unknown-host";

/** Invariants: every bucket list is sorted by precedence; `#wildcards` longest suffix first. */
export class HostRoutes {
  readonly #exact = new Map<string, Bucket>();
  readonly #wildcards: [string, Bucket][] = [];
  #any: Bucket | undefined;

  add(hostname: string, entries: readonly MatchEntry[], kind: "HTTPRoute" | "GRPCRoute"): void {
    let b: Bucket | undefined;
    if (hostname === "") b = this.#any ??= { http: [], grpc: [] };
    else if (hostname.startsWith("*.")) {
      b = this.#wildcards.find(([w]) => w === hostname)?.[1];
      if (!b) this.#wildcards.push([hostname, (b = { http: [], grpc: [] })]);
    } else {
      b = this.#exact.get(hostname);
      if (!b) this.#exact.set(hostname, (b = { http: [], grpc: [] }));
    }
    (kind === "GRPCRoute" ? b.grpc : b.http).push(...entries);
  }

  /** Sorts every bucket; call once after the last add(). */
  seal(): this {
    const all = [
      ...this.#exact.values(),
      ...this.#wildcards.map(([, b]) => b),
      ...(this.#any ? [this.#any] : []),
    ];
    for (const b of all) {
      b.http.sort(byPrecedence);
      b.grpc.sort(byPrecedence);
    }
    this.#wildcards.sort((a, b) => b[0].length - a[0].length);
    return this;
  }

  /** `host` is the request's Host / :authority (any case, with or without a port). */
  match(host: string, req: RouteRequest, grpc: boolean): GatewayMatch {
    const bucket = this.#bucket(normalizeHost(host));
    if (!bucket) return "unknown-host";
    const lists = grpc ? [bucket.grpc, bucket.http] : [bucket.http];
    const lookup = { params: undefined };
    for (const list of lists) for (const e of list) if (e.test(req, lookup)) return e.result;
    return undefined;
  }

  #bucket(host: string): Bucket | undefined {
    const exact = this.#exact.get(host);
    if (exact) return exact;
    for (const [w, b] of this.#wildcards) if (host.endsWith(w.slice(1))) return b;
    return this.#any;
  }
}

/** "Example.COM:8443" → "example.com"; a bracketed IPv6 literal keeps its brackets. */
export function normalizeHost(host: string): string {
  const h = host.toLowerCase();
  if (h.startsWith("[")) return h.slice(0, h.indexOf("]") + 1);
  const i = h.lastIndexOf(":");
  return (i < 0 ? h : h.slice(0, i)).replace(/\.$/, "");
}

type AnyRoute = HTTPRoute | GRPCRoute;

/** The Gateways `nodeName` runs, with their compiled route tables. */
export function gatewaysForNode(config: MeshConfig, nodeName: string): GatewayPlan[] {
  const mine = (config.gateways ?? []).filter((g) => isOurGateway(g) && gatewayNodes(g).includes(nodeName));
  if (mine.length === 0) return [];
  const r = new Resolver(config.services, config.faultInjections ?? []);
  const routes: AnyRoute[] = [...(config.httpRoutes ?? []), ...(config.grpcRoutes ?? [])].sort(byAge);
  const entries = new Map<AnyRoute, MatchEntry[]>();
  const entriesOf = (route: AnyRoute, order: number) => {
    let e = entries.get(route);
    if (!e) entries.set(route, (e = routeEntries(route, order, r)));
    return e;
  };
  return mine.map((g) => planGateway(g, config.trustDomain, routes, entriesOf));
}

function planGateway(
  g: Gateway,
  trustDomain: string,
  routes: readonly AnyRoute[],
  entriesOf: (route: AnyRoute, order: number) => MatchEntry[],
): GatewayPlan {
  const ns = g.metadata.namespace;
  const tables = new Map<number, HostRoutes>();
  for (const l of g.spec.listeners) if (!tables.has(l.port)) tables.set(l.port, new HostRoutes());
  routes.forEach((route, order) => {
    // One route attaches once per (listener, hostname) even if several parentRefs select the listener.
    const seen = new Set<string>();
    for (const p of route.spec.parentRefs) {
      if (!namesGateway(p, route, g)) continue;
      for (const a of attachToGateway(route, p, g)) {
        if ("refused" in a) continue;
        const hosts = a.hostnames.length === 0 ? [""] : a.hostnames;
        for (const h of hosts) {
          const k = `${a.listener.port}|${h}`;
          if (seen.has(k)) continue;
          seen.add(k);
          tables.get(a.listener.port)?.add(h, entriesOf(route, order), route.kind);
        }
      }
    }
  });
  const ports: GatewayPortPlan[] = [...tables].map(([port, table]) => {
    const listeners = g.spec.listeners.filter((l) => l.port === port);
    return Object.freeze({
      key: `${ns}/${g.metadata.name}:${port}`,
      port,
      protocol: listeners[0]?.protocol ?? "HTTP",
      addresses: Object.freeze((g.spec.addresses ?? []).map((a) => a.value)),
      listeners: Object.freeze(
        listeners.map((l) =>
          Object.freeze({
            name: l.name,
            hostname: l.hostname,
            certificates: Object.freeze(
              (l.tls?.certificateRefs ?? []).map((c) => `${c.namespace ?? ns}/${c.name}`),
            ),
          }),
        ),
      ),
      routes: table.seal(),
    });
  });
  const spiffeId = gatewayIdentity(g, trustDomain);
  return Object.freeze({
    key: `${ns}/${g.metadata.name}`,
    name: g.metadata.name,
    namespace: ns,
    serviceAccount: spiffeId.slice(spiffeId.lastIndexOf("/") + 1),
    spiffeId,
    trustedProxies: gatewayTrustedProxies(g) ?? 0,
    ports: Object.freeze(ports),
  });
}

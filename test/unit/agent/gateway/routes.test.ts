// The gateway's route tables and route layer: which Gateways a node runs, host precedence (exact, then
// the longest wildcard, then no hostname), path routing and weights from the mesh's rule compiler,
// listener scoping (sectionName, allowedRoutes), redirects that keep the listener's scheme, the edge's
// forwarding headers, and 404s for an unknown host or an unmatched path.
import { describe, expect, test } from "vitest";
import { MeshConfig, validateDocument, type Resource } from "../../../../controller/api/index.ts";
import { gatewayBackend } from "../../../../agent/gateway/layer.ts";
import { gatewaySource } from "../../../../agent/gateway/role.ts";
import { gatewaysForNode, normalizeHost, type GatewayPlan } from "../../../../agent/gateway/routes.ts";
import type { Exchange, ResponseHead } from "../../../../agent/http/exchange.ts";
import { MeshView, type ServicePortInfo } from "../../../../agent/state/view.ts";

const G = "gateway.networking.k8s.io/v1";
function doc(d: unknown): Resource {
  const r = validateDocument(d, "t.yaml", 1);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.resource;
}
const service = (name: string) =>
  doc({
    apiVersion: "nodemesh.io/v1alpha1",
    kind: "Service",
    metadata: { name, namespace: "shop" },
    spec: { addresses: ["10.96.0.1"], ports: [{ name: "http", port: 80, appProtocol: "http" }] },
  });
const gateway = (nodes = "n1", cls = "nodemesh") =>
  doc({
    apiVersion: G,
    kind: "Gateway",
    metadata: { name: "edge", namespace: "shop", annotations: { "nodemesh.io/gateway-nodes": nodes } },
    spec: {
      gatewayClassName: cls,
      listeners: [
        { name: "http", port: 80, protocol: "HTTP" },
        {
          name: "https",
          port: 443,
          protocol: "HTTPS",
          tls: { certificateRefs: [{ group: "nodemesh.io", kind: "TLSCertificate", name: "shop" }] },
        },
        {
          name: "admin",
          port: 443,
          protocol: "HTTPS",
          hostname: "admin.example.com",
          tls: { certificateRefs: [{ group: "nodemesh.io", kind: "TLSCertificate", name: "admin" }] },
        },
      ],
    },
  });
const route = (name: string, spec: Record<string, unknown>, ns = "shop") =>
  doc({ apiVersion: G, kind: "HTTPRoute", metadata: { name, namespace: ns }, spec });
const to = (svc: string, weight = 1) => ({ name: svc, port: 80, weight });

function config(resources: Resource[]): MeshConfig {
  const all = [service("web"), service("api"), service("admin"), ...resources];
  const of = (k: string) => all.filter((r) => r.kind === k);
  return MeshConfig.parse({
    version: "1",
    trustDomain: "cluster.local",
    rootNamespace: "nodemesh-system",
    trustBundle: [],
    services: of("Service"),
    workloads: [],
    authorizationPolicies: [],
    peerAuthentications: [],
    trafficPolicies: [],
    httpRoutes: of("HTTPRoute"),
    gateways: of("Gateway"),
  });
}

const ROUTES = [
  gateway(),
  route("shop", {
    parentRefs: [{ name: "edge" }],
    hostnames: ["shop.example.com", "*.example.com"],
    rules: [
      { matches: [{ path: { type: "PathPrefix", value: "/api" } }], backendRefs: [to("api")] },
      { backendRefs: [to("web", 3), to("api", 1)] },
    ],
  }),
  route("admin", {
    parentRefs: [{ name: "edge", sectionName: "admin" }],
    rules: [{ backendRefs: [to("admin")] }],
  }),
  route("redirect", {
    parentRefs: [{ name: "edge", sectionName: "http" }],
    hostnames: ["redirect.example.org"],
    rules: [
      { filters: [{ type: "RequestRedirect", requestRedirect: { scheme: "https", statusCode: 301 } }] },
    ],
  }),
  route(
    "foreign",
    { parentRefs: [{ name: "edge", namespace: "shop" }], hostnames: ["foreign.example.org"] },
    "other",
  ),
];

function plan(resources = ROUTES, node = "n1"): { view: MeshView; plan: GatewayPlan | undefined } {
  const c = config(resources);
  return { view: new MeshView(c, { nodeName: node }), plan: gatewaysForNode(c, node)[0] };
}

let standard: ReturnType<typeof plan> | undefined;
function send(host: string, path: string, port: 80 | 443 = 443, headers: Record<string, string> = {}) {
  const { view, plan: p } = (standard ??= plan());
  const portPlan = p!.ports.find((x) => x.port === port)!;
  const ex = {
    view,
    source: gatewaySource(p!, "192.0.2.7", "n1"),
    servicePort: { key: portPlan.key, port, service: { host: "edge.shop" } } as unknown as ServicePortInfo,
    request: {
      method: "GET",
      path,
      authority: host,
      headers: { ...headers },
      protocol: "HTTP/1.1",
      requestId: "r",
    },
    body: undefined,
    signal: new AbortController().signal,
    start: 0,
    requestBytes: 0,
  } as Exchange;
  const out = gatewayBackend(ex, { gateway: p!, port: portPlan });
  return {
    ex,
    out,
    backend: "status" in out ? undefined : (out as ServicePortInfo).key,
    status: "status" in out ? (out as ResponseHead).status : undefined,
  };
}

describe("gatewaysForNode", () => {
  test("only Gateways of class nodemesh that name this node", () => {
    expect(plan([gateway("n1,n2")], "n2").plan?.spiffeId).toBe("spiffe://cluster.local/ns/shop/sa/edge");
    expect(plan([gateway("n1")], "n2").plan).toBeUndefined();
    expect(plan([gateway("n1", "istio")], "n1").plan).toBeUndefined();
  });
  test("listeners are grouped by port", () => {
    const p = plan().plan!;
    expect(p.ports.map((x) => [x.key, x.protocol, x.listeners.map((l) => l.name)])).toEqual([
      ["shop/edge:80", "HTTP", ["http"]],
      ["shop/edge:443", "HTTPS", ["https", "admin"]],
    ]);
    expect(p.ports[1]?.listeners[1]?.certificates).toEqual(["shop/admin"]);
  });
});

describe("routing by host and path", () => {
  test.each<[string, string, string | undefined, number | undefined]>([
    ["shop.example.com", "/api/items", "shop/api:80", undefined],
    ["SHOP.example.com:443", "/api", "shop/api:80", undefined],
    ["cart.example.com", "/api/x", "shop/api:80", undefined], // the wildcard hostname
    ["admin.example.com", "/anything", "shop/admin:80", undefined], // the admin listener's own route
    ["elsewhere.net", "/", undefined, 404], // no route serves that host
    ["foreign.example.org", "/", undefined, 404], // its route is in another namespace (allowedRoutes Same)
  ])("%s %s → %s", (host, path, backend, status) => {
    const r = send(host, path);
    expect(r.backend).toBe(backend);
    expect(r.status).toBe(status);
  });

  test("a weighted split is the rule's (3:1 over many requests)", () => {
    const n = 4000;
    let web = 0;
    for (let i = 0; i < n; i++) if (send("shop.example.com", "/").backend === "shop/web:80") web++;
    // Binomial p=0.75, σ = sqrt(n p (1-p)) ≈ 27: ±6σ never fails by chance.
    expect(Math.abs(web - 0.75 * n)).toBeLessThan(6 * 27);
  });

  test("the edge appends the client to x-forwarded-for and sets x-forwarded-proto", () => {
    const { ex } = send("shop.example.com", "/", 443, { "x-forwarded-for": "203.0.113.1" });
    expect(ex.request.headers["x-forwarded-for"]).toBe("203.0.113.1, 192.0.2.7");
    expect(ex.request.headers["x-forwarded-proto"]).toBe("https");
    expect(ex.source.spiffeId).toBe("spiffe://cluster.local/ns/shop/sa/edge");
  });
});

describe("redirects", () => {
  test("HTTP → HTTPS: 301 with Location https, the default port omitted, path and query kept", () => {
    const r = send("redirect.example.org", "/a/b?x=1", 80);
    expect(r.status).toBe(301);
    expect((r.out as ResponseHead).headers.location).toBe("https://redirect.example.org/a/b?x=1");
  });
  test("a redirect without a scheme keeps an HTTPS listener's scheme and port", () => {
    const withRedirect = [
      gateway(),
      route("moved", {
        parentRefs: [{ name: "edge", sectionName: "https" }],
        hostnames: ["old.example.org"],
        rules: [{ filters: [{ type: "RequestRedirect", requestRedirect: { hostname: "new.example.org" } }] }],
      }),
    ];
    const { view, plan: p } = plan(withRedirect);
    const portPlan = p!.ports.find((x) => x.port === 443)!;
    const ex = {
      view,
      source: gatewaySource(p!, "192.0.2.7", "n1"),
      servicePort: { key: portPlan.key, port: 443, service: { host: "edge.shop" } },
      request: {
        method: "GET",
        path: "/p",
        authority: "old.example.org",
        headers: {},
        protocol: "HTTP/2",
        requestId: "r",
      },
      signal: new AbortController().signal,
    } as unknown as Exchange;
    const out = gatewayBackend(ex, { gateway: p!, port: portPlan }) as ResponseHead;
    expect([out.status, out.headers.location]).toEqual([302, "https://new.example.org/p"]);
  });
});

test("normalizeHost drops the port, the case and a trailing dot", () => {
  expect(["A.Example.COM:8443", "a.example.com.", "[::1]:443"].map(normalizeHost)).toEqual([
    "a.example.com",
    "a.example.com",
    "[::1]",
  ]);
});

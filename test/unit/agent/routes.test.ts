// compileRoutes: every match kind, the spec's precedence across rules and routes, producer and
// consumer routes, port-specific parentRefs, backend resolution and GRPCRoute; cases follow the
// Gateway API conformance tests (HTTPRouteMatching, PathMatchOrder, HeaderMatching, MethodMatching,
// QueryParamMatching, MeshPorts, MeshConsumerRoute, GRPCRoute weight/header tests).
import { describe, expect, test } from "vitest";
import { MeshConfig, validateDocument } from "../../../controller/api/index.ts";
import type { Resource } from "../../../controller/api/index.ts";
import { PASSTHROUGH_ROUTE, compileRoutes } from "../../../agent/state/routes.ts";
import type { RouteRequest, RouteTable } from "../../../agent/state/routes.ts";

const NS = "mesh";
function doc(d: unknown): Resource {
  const r = validateDocument(d, "t.yaml", 1);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.resource;
}
const service = (name: string, ns = NS, ports = [80, 8080]) =>
  doc({
    apiVersion: "nodemesh.io/v1alpha1",
    kind: "Service",
    metadata: { name, namespace: ns },
    spec: {
      addresses: ["10.96.0.1"],
      ports: ports.map((port) => ({ port, name: port === 80 ? "http" : `p${port}` })),
    },
  });
type Spec = Record<string, unknown>;
const route = (name: string, spec: Spec, opts: { ns?: string; kind?: string; created?: string } = {}) =>
  doc({
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: opts.kind ?? "HTTPRoute",
    metadata: {
      name,
      namespace: opts.ns ?? NS,
      ...(opts.created ? { creationTimestamp: opts.created } : {}),
    },
    spec: { parentRefs: [{ group: "", kind: "Service", name: "echo", port: 80 }], ...spec },
  });
const to = (backend: string, extra: Spec = {}, namespace?: string) => ({
  backendRefs: [{ name: backend, port: 8080, ...(namespace ? { namespace } : {}) }],
  ...extra,
});

function compile(resources: Resource[]) {
  const all = [service("echo"), service("echo-v1"), service("echo-v2"), service("echo-v3"), ...resources];
  return compileRoutes(
    MeshConfig.parse({
      version: "1",
      trustDomain: "cluster.local",
      rootNamespace: "nodemesh-system",
      trustBundle: [],
      services: all.filter((r) => r.kind === "Service"),
      workloads: [],
      authorizationPolicies: [],
      peerAuthentications: [],
      trafficPolicies: [],
      httpRoutes: all.filter((r) => r.kind === "HTTPRoute"),
      grpcRoutes: all.filter((r) => r.kind === "GRPCRoute"),
    }),
  );
}

interface Req {
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  from?: string;
}
function request(r: Req): RouteRequest {
  const full = r.path ?? "/";
  const q = full.indexOf("?");
  return {
    method: r.method ?? "GET",
    path: q < 0 ? full : full.slice(0, q),
    query: q < 0 ? "" : full.slice(q + 1),
    headers: r.headers ?? {},
  };
}
/** "echo-v1" (the first backend's service name), "404", or "pass" (no route applies). */
function where(table: RouteTable | undefined, r: Req): string {
  if (!table) return "no table";
  const m = table.match(request(r), r.from ?? NS);
  if (!m) return "404";
  if (m.rule.route === PASSTHROUGH_ROUTE) return "pass";
  return m.rule.backends[0]?.service?.split("/")[1] ?? `${m.rule.route}#${m.rule.index}`;
}
const check = (table: RouteTable | undefined, cases: [Req, string][]) =>
  expect(cases.map(([r]) => where(table, r))).toEqual(cases.map(([, want]) => want));

describe("matching and precedence (one route)", () => {
  test("no route attached: no table", () => {
    expect(compile([]).size).toBe(0);
  });

  test("PathPrefix is segment-wise; matches are ORed; header match beats the bare / prefix", () => {
    const t = compile([
      route("matching", {
        rules: [
          to("echo-v1", {
            matches: [
              { path: { type: "PathPrefix", value: "/" } },
              { headers: [{ name: "version", value: "one" }] },
            ],
          }),
          to("echo-v2", {
            matches: [
              { path: { type: "PathPrefix", value: "/v2" } },
              { headers: [{ name: "version", value: "two" }] },
            ],
          }),
        ],
      }),
    ]).get("mesh/echo:80");
    check(t, [
      [{ path: "/" }, "echo-v1"],
      [{ path: "/example" }, "echo-v1"],
      [{ path: "/", headers: { version: "one" } }, "echo-v1"],
      [{ path: "/v2" }, "echo-v2"],
      [{ path: "/v2/example" }, "echo-v2"],
      [{ path: "/", headers: { version: "two" } }, "echo-v2"],
      [{ path: "/v2/" }, "echo-v2"],
      [{ path: "/v2example" }, "echo-v1"],
      [{ path: "/foo/v2/example" }, "echo-v1"],
    ]);
  });

  test("path match order: Exact, then the longest PathPrefix, whatever the rule order", () => {
    const rule = (type: string, value: string, b: string) => to(b, { matches: [{ path: { type, value } }] });
    const t = compile([
      route("order", {
        rules: [
          rule("Exact", "/match", "echo-v1"),
          rule("Exact", "/match/exact", "echo-v2"),
          rule("Exact", "/match/exact/one", "echo-v3"),
          rule("PathPrefix", "/match/", "echo-v3"),
          rule("PathPrefix", "/match/prefix/", "echo-v1"),
          rule("PathPrefix", "/match/prefix/one", "echo-v2"),
        ],
      }),
    ]).get("mesh/echo:80");
    check(t, [
      [{ path: "/match/exact/one" }, "echo-v3"],
      [{ path: "/match/exact" }, "echo-v2"],
      [{ path: "/match" }, "echo-v1"],
      [{ path: "/match/prefix/one/any" }, "echo-v2"],
      [{ path: "/match/prefix/any" }, "echo-v1"],
      [{ path: "/match/any" }, "echo-v3"],
      [{ path: "/Match" }, "404"],
      [{ path: "/other" }, "404"],
    ]);
  });

  test("headers: names case-insensitive, values exact, more matched headers win, regex is anchored", () => {
    const h = (pairs: [string, string][], b: string) =>
      to(b, { matches: [{ headers: pairs.map(([name, value]) => ({ name, value })) }] });
    const t = compile([
      route("headers", {
        rules: [
          h([["version", "one"]], "echo-v1"),
          h([["version", "two"]], "echo-v2"),
          h(
            [
              ["version", "two"],
              ["Color", "orange"],
            ],
            "echo-v1",
          ),
          to("echo-v3", {
            matches: [{ headers: [{ type: "RegularExpression", name: "x-id", value: "[0-9]+" }] }],
          }),
        ],
      }),
    ]).get("mesh/echo:80");
    check(t, [
      [{ headers: { version: "one" } }, "echo-v1"],
      [{ headers: { version: "two" } }, "echo-v2"],
      [{ headers: { version: "two", color: "orange" } }, "echo-v1"],
      [{ headers: { version: "two", color: "blue" } }, "echo-v2"],
      [{ headers: { color: "orange" } }, "404"],
      [{ headers: { version: "One" } }, "404"],
      [{ headers: { "x-id": "123" } }, "echo-v3"],
      [{ headers: { "x-id": "a123" } }, "404"],
    ]);
  });

  test("a longer prefix beats a method match; a method match beats header matches", () => {
    const t = compile([
      route("methods", {
        rules: [
          to("echo-v1", { matches: [{ method: "POST" }] }),
          to("echo-v2", { matches: [{ method: "GET" }] }),
          to("echo-v1", { matches: [{ path: { value: "/path1" }, method: "GET" }] }),
          to("echo-v2", { matches: [{ headers: [{ name: "version", value: "one" }], method: "PUT" }] }),
          to("echo-v1", { matches: [{ path: { value: "/path5" } }] }),
          to("echo-v2", { matches: [{ method: "PATCH" }] }),
          to("echo-v3", { matches: [{ headers: [{ name: "version", value: "four" }] }] }),
        ],
      }),
    ]).get("mesh/echo:80");
    check(t, [
      [{ method: "POST" }, "echo-v1"],
      [{ method: "GET" }, "echo-v2"],
      [{ method: "HEAD" }, "404"],
      [{ method: "GET", path: "/path1" }, "echo-v1"],
      [{ method: "PUT", headers: { version: "one" } }, "echo-v2"],
      [{ method: "PUT" }, "404"],
      [{ method: "PATCH", path: "/path5" }, "echo-v1"],
      [{ method: "PATCH", headers: { version: "four" } }, "echo-v2"],
    ]);
  });

  test("query parameters: exact and case-sensitive, first value, more matches win, header beats query", () => {
    const q = (pairs: [string, string][]) => pairs.map(([name, value]) => ({ name, value }));
    const t = compile([
      route("query", {
        rules: [
          to("echo-v1", { matches: [{ queryParams: q([["animal", "whale"]]) }] }),
          to("echo-v2", { matches: [{ queryParams: q([["animal", "dolphin"]]) }] }),
          to("echo-v3", {
            matches: [
              {
                queryParams: q([
                  ["animal", "dolphin"],
                  ["color", "blue"],
                ]),
              },
              { queryParams: q([["ANIMAL", "Whale"]]) },
            ],
          }),
          to("echo-v2", {
            matches: [
              { headers: [{ name: "version", value: "one" }], queryParams: q([["animal", "whale"]]) },
            ],
          }),
          to("echo-v1", { matches: [{ path: { value: "/path5" } }] }),
          to("echo-v2", { matches: [{ queryParams: q([["animal", "hydra"]]) }] }),
          to("echo-v3", { matches: [{ headers: [{ name: "version", value: "four" }] }] }),
          to("echo-v1", {
            matches: [{ queryParams: [{ type: "RegularExpression", name: "n", value: "[0-9]+" }] }],
          }),
        ],
      }),
    ]).get("mesh/echo:80");
    check(t, [
      [{ path: "/?animal=whale" }, "echo-v1"],
      [{ path: "/?animal=whale&otherparam=irrelevant" }, "echo-v1"],
      [{ path: "/?animal=dolphin&color=yellow" }, "echo-v2"],
      [{ path: "/?animal=dolphin&color=blue" }, "echo-v3"],
      [{ path: "/?ANIMAL=Whale" }, "echo-v3"],
      [{ path: "/?animal=whaledolphin" }, "404"],
      [{ path: "/?animal=whale&animal=dolphin" }, "echo-v1"],
      [{ path: "/?color=blue" }, "404"],
      [{ path: "/" }, "404"],
      [{ path: "/?animal=whale", headers: { version: "one" } }, "echo-v2"],
      [{ path: "/path5?animal=hydra" }, "echo-v1"],
      [{ path: "/?animal=hydra", headers: { version: "four" } }, "echo-v3"],
      [{ path: "/?n=42" }, "echo-v1"],
      [{ path: "/?n=4x2" }, "404"],
    ]);
  });

  test("RegularExpression paths are anchored and rank below every PathPrefix", () => {
    const t = compile([
      route("regex", {
        rules: [
          to("echo-v1", { matches: [{ path: { type: "RegularExpression", value: "/api/v[0-9]+" } }] }),
          to("echo-v2", { matches: [{ path: { type: "PathPrefix", value: "/api/v2" } }] }),
        ],
      }),
    ]).get("mesh/echo:80");
    check(t, [
      [{ path: "/api/v1" }, "echo-v1"],
      [{ path: "/api/v2" }, "echo-v2"],
      [{ path: "/api/v1/x" }, "404"],
      [{ path: "/x/api/v1" }, "404"],
    ]);
    expect(t?.match(request({ path: "/api/v7" }), NS)?.pathMatch).toEqual({
      type: "RegularExpression",
      value: "/api/v[0-9]+",
    });
  });
});

describe("precedence across routes", () => {
  const same = (b: string) => ({ rules: [to(b, { matches: [{ path: { value: "/same" } }] })] });

  test("ties go to the oldest creationTimestamp, then namespace/name, then rule order", () => {
    const aged = compile([
      route("b-new", same("echo-v1"), { created: "2024-05-02T00:00:00Z" }),
      route("c-old", same("echo-v2"), { created: "2024-05-01T00:00:00Z" }),
    ]).get("mesh/echo:80");
    expect(where(aged, { path: "/same" })).toBe("echo-v2");
    const named = compile([route("b", same("echo-v1")), route("a", same("echo-v2"))]).get("mesh/echo:80");
    expect(where(named, { path: "/same" })).toBe("echo-v2");
    const ruled = compile([route("a", { rules: [...same("echo-v3").rules, ...same("echo-v1").rules] })]).get(
      "mesh/echo:80",
    );
    expect(ruled?.match(request({ path: "/same" }), NS)?.rule).toMatchObject({ route: "mesh/a", index: 0 });
  });

  test("a more specific match in a newer route still beats an older route", () => {
    const t = compile([
      route("old", { rules: [to("echo-v1")] }, { created: "2020-01-01T00:00:00Z" }),
      route("new", same("echo-v2"), { created: "2024-01-01T00:00:00Z" }),
    ]).get("mesh/echo:80");
    check(t, [
      [{ path: "/same" }, "echo-v2"],
      [{ path: "/other" }, "echo-v1"],
    ]);
  });
});

describe("attachment", () => {
  test("parentRef port: only that port; no port: every port; sectionName: the named port", () => {
    const tables = compile([
      route("r1", {
        parentRefs: [{ group: "", kind: "Service", name: "echo-v1", port: 80 }],
        rules: [to("echo-v1")],
      }),
      route("r2", {
        parentRefs: [{ group: "core", kind: "Service", name: "echo-v2" }],
        rules: [to("echo-v2")],
      }),
      route("r3", {
        parentRefs: [{ group: "", kind: "Service", name: "echo-v3", sectionName: "p8080" }],
        rules: [to("echo-v3")],
      }),
      route("dangling", { parentRefs: [{ group: "", kind: "Service", name: "missing" }] }),
    ]);
    expect([...tables.keys()].sort()).toEqual([
      "mesh/echo-v1:80",
      "mesh/echo-v2:80",
      "mesh/echo-v2:8080",
      "mesh/echo-v3:8080",
    ]);
  });

  test("a consumer route applies only to its namespace and replaces the producer routes there", () => {
    const consumerParent = {
      parentRefs: [{ group: "", kind: "Service", name: "echo", namespace: NS, port: 80 }],
    };
    const t = compile([
      route("producer", { rules: [to("echo-v1")] }),
      route(
        "consumer",
        {
          ...consumerParent,
          rules: [to("echo-v2", { matches: [{ path: { type: "Exact", value: "/only" } }] }, NS)],
        },
        { ns: "consumer" },
      ),
    ]).get("mesh/echo:80");
    check(t, [
      [{ path: "/only", from: "consumer" }, "echo-v2"],
      [{ path: "/other", from: "consumer" }, "404"],
      [{ path: "/only", from: NS }, "echo-v1"],
      [{ path: "/other", from: "third" }, "echo-v1"],
    ]);
  });

  test("with consumer routes only, other namespaces pass through to the service itself", () => {
    const t = compile([
      route(
        "consumer",
        {
          parentRefs: [{ group: "", kind: "Service", name: "echo-v1", namespace: NS, port: 80 }],
          rules: [to("echo-v1", {}, NS), to("echo-v2", { matches: [{ path: { value: "/unresolved" } }] })],
        },
        { ns: "consumer" },
      ),
    ]).get("mesh/echo-v1:80");
    expect(t?.appliesTo("consumer")).toBe(true);
    expect(t?.appliesTo(NS)).toBe(false);
    expect(where(t, { from: "consumer" })).toBe("echo-v1");
    // A consumer route's backendRef without namespace means the route's namespace (consumer/echo-v2: none).
    expect(t?.match(request({ path: "/unresolved" }), "consumer")?.rule.backends[0]?.service).toBeUndefined();
    const pass = t?.match(request({}), NS);
    expect(pass?.rule).toMatchObject({
      route: "",
      backends: [{ service: "mesh/echo-v1", port: 80, weight: 1, filters: [] }],
    });
  });
});

describe("compiled rules", () => {
  test("backends: resolved when the Service and port exist, undefined (500) otherwise; weights; filters", () => {
    const t = compile([
      route("b", {
        rules: [
          {
            name: "split",
            backendRefs: [
              {
                name: "echo-v1",
                port: 8080,
                weight: 90,
                filters: [
                  {
                    type: "RequestHeaderModifier",
                    requestHeaderModifier: { set: [{ name: "Backend", value: "v1" }] },
                  },
                ],
              },
              { name: "echo-v2", port: 9999, weight: 10 },
              { name: "nonexistent", port: 8080 },
              { group: "unknownkind.example.com", kind: "NonExistent", name: "x", port: 8080 },
            ],
            filters: [
              {
                type: "RequestMirror",
                requestMirror: {
                  backendRef: { name: "echo-v3", port: 80 },
                  fraction: { numerator: 1, denominator: 4 },
                },
              },
              { type: "RequestMirror", requestMirror: { backendRef: { name: "missing", port: 80 } } },
            ],
            timeouts: { request: "1s", backendRequest: "0s" },
            retry: { codes: [503], attempts: 3, backoff: "250ms" },
          },
        ],
      }),
    ]).get("mesh/echo:80");
    const rule = t?.match(request({}), NS)?.rule;
    expect(rule).toEqual({
      route: "mesh/b",
      kind: "HTTPRoute",
      index: 0,
      name: "split",
      filters: [{ type: "RequestMirror", service: "mesh/echo-v3", port: 80, numerator: 1, denominator: 4 }],
      backends: [
        {
          service: "mesh/echo-v1",
          port: 8080,
          weight: 90,
          filters: [
            {
              type: "RequestHeaderModifier",
              headers: { set: [{ name: "backend", value: "v1" }], add: [], remove: [] },
            },
          ],
        },
        { service: undefined, port: 9999, weight: 10, filters: [] },
        { service: undefined, port: 8080, weight: 1, filters: [] },
        { service: undefined, port: 8080, weight: 1, filters: [] },
      ],
      timeouts: { requestMs: 1000, backendRequestMs: 0 },
      retry: { codes: [503], attempts: 3, backoffMs: 250 },
    });
    expect(Object.isFrozen(rule)).toBe(true);
  });

  test("no backendRefs: an empty backend list; redirect and rewrite filters carry their values", () => {
    const t = compile([
      route("f", {
        rules: [
          {
            matches: [{ path: { value: "/old" } }],
            filters: [
              {
                type: "RequestRedirect",
                requestRedirect: {
                  path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/new" },
                  statusCode: 301,
                },
              },
            ],
          },
          to("echo-v1", {
            matches: [{ path: { value: "/rw" } }],
            filters: [
              {
                type: "URLRewrite",
                urlRewrite: {
                  hostname: "example.org",
                  path: { type: "ReplaceFullPath", replaceFullPath: "/x" },
                },
              },
            ],
          }),
        ],
      }),
    ]).get("mesh/echo:80");
    const old = t?.match(request({ path: "/old/a" }), NS);
    expect(old?.rule.backends).toEqual([]);
    expect(old?.rule.filters).toEqual([
      {
        type: "RequestRedirect",
        scheme: undefined,
        hostname: undefined,
        port: undefined,
        path: { type: "ReplacePrefixMatch", value: "/new" },
        statusCode: 301,
      },
    ]);
    expect(old?.pathMatch).toEqual({ type: "PathPrefix", value: "/old" });
    expect(t?.match(request({ path: "/rw" }), NS)?.rule.filters).toEqual([
      { type: "URLRewrite", hostname: "example.org", path: { type: "ReplaceFullPath", value: "/x" } },
    ]);
  });
});

describe("GRPCRoute", () => {
  const grpc = (name: string, spec: Spec) =>
    route(
      name,
      { parentRefs: [{ group: "", kind: "Service", name: "echo", port: 8080 }], ...spec },
      { kind: "GRPCRoute" },
    );
  const m = (method: Spec, b: string, headers?: Spec[]) => ({
    matches: [{ method, ...(headers ? { headers } : {}) }],
    backendRefs: [{ name: b, port: 8080 }],
  });

  test("service/method matches become the POST path; longer service, then method, then headers win", () => {
    const t = compile([
      grpc("g", {
        rules: [
          m({ service: "grpc.testing.TestService", method: "UnaryCall" }, "echo-v1"),
          m({ service: "grpc.testing.TestService" }, "echo-v2"),
          m({ method: "Ping" }, "echo-v3"),
          m({ type: "RegularExpression", service: "grpc\\.other\\..*", method: "Get.*" }, "echo-v2"),
          m({ service: "grpc.testing.TestService", method: "UnaryCall" }, "echo-v3", [
            { name: "x-test-case", value: "set" },
          ]),
        ],
      }),
    ]).get("mesh/echo:8080");
    check(t, [
      [{ method: "POST", path: "/grpc.testing.TestService/UnaryCall" }, "echo-v1"],
      [
        { method: "POST", path: "/grpc.testing.TestService/UnaryCall", headers: { "x-test-case": "set" } },
        "echo-v3",
      ],
      [{ method: "POST", path: "/grpc.testing.TestService/StreamingCall" }, "echo-v2"],
      [{ method: "POST", path: "/any.Service/Ping" }, "echo-v3"],
      [{ method: "POST", path: "/grpc.other.Store/GetItem" }, "echo-v2"],
      [{ method: "POST", path: "/grpc.other.Store/PutItem" }, "404"],
      [{ method: "GET", path: "/grpc.testing.TestService/UnaryCall" }, "404"],
      [{ method: "POST", path: "/grpc.testing.TestService/UnaryCall/x" }, "404"],
    ]);
  });

  test("a rule without matches takes every gRPC call; weight-0 backends are carried", () => {
    const t = compile([
      grpc("g", {
        rules: [
          {
            backendRefs: [
              { name: "echo-v1", port: 8080, weight: 70 },
              { name: "echo-v3", port: 8080, weight: 0 },
            ],
          },
        ],
      }),
    ]).get("mesh/echo:8080");
    const rule = t?.match(request({ method: "POST", path: "/a.B/C" }), NS)?.rule;
    expect(rule?.kind).toBe("GRPCRoute");
    expect(rule?.backends.map((b) => b.weight)).toEqual([70, 0]);
  });

  test("GRPCRoute wins over HTTPRoute on the same service port; the HTTPRoute keeps the other ports", () => {
    const tables = compile([
      grpc("g", { rules: [m({ service: "a.B" }, "echo-v1")] }),
      route("h", { parentRefs: [{ group: "", kind: "Service", name: "echo" }], rules: [to("echo-v2")] }),
    ]);
    expect(where(tables.get("mesh/echo:8080"), { method: "POST", path: "/a.B/C" })).toBe("echo-v1");
    expect(where(tables.get("mesh/echo:8080"), { method: "GET", path: "/web" })).toBe("404");
    expect(where(tables.get("mesh/echo:80"), { method: "GET", path: "/web" })).toBe("echo-v2");
  });
});

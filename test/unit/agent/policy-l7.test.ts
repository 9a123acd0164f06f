// L7 AuthorizationPolicy: Istio's documented examples (istio.io reference, authorization_policy.proto)
// per request, and the connection-level rules (opaque TCP fails closed; `deferHttp` on L7 ports).
import { describe, expect, it } from "vitest";
import type { AuthorizationPolicy } from "../../../controller/api/index.ts";
import { evaluateAuthz, type AuthzHttp, type AuthzRequest } from "../../../agent/policy/authz.ts";

type Rules = AuthorizationPolicy["spec"]["rules"];
function ap(name: string, action: "ALLOW" | "DENY", rules: Rules, namespace = "foo"): AuthorizationPolicy {
  return {
    apiVersion: "nodemesh.io/v1alpha1",
    kind: "AuthorizationPolicy",
    metadata: { name, namespace },
    spec: { action, rules },
  };
}
const SLEEP = "spiffe://cluster.local/ns/default/sa/sleep";
const TEST_NS = "spiffe://cluster.local/ns/test/sa/any";
const DEV = "spiffe://cluster.local/ns/dev/sa/any";
const conn = (principal: string | undefined = SLEEP, port = 8000): AuthzRequest => ({
  principal,
  sourceIp: "10.0.0.5",
  destinationPort: port,
});
function http(method: string, path: string, extra: Partial<AuthzHttp> = {}, principal = SLEEP): AuthzRequest {
  return { ...conn(principal), http: { method, path, host: "httpbin.foo", headers: {}, ...extra } };
}

// istio.io AuthorizationPolicy reference, first example (the JWT `when` replaced by a header).
const httpbin = ap("httpbin", "ALLOW", [
  {
    from: [
      { source: { principals: ["cluster.local/ns/default/sa/sleep"] } },
      { source: { namespaces: ["test"] } },
    ],
    to: [
      { operation: { methods: ["GET"], paths: ["/info*"] } },
      { operation: { methods: ["POST"], paths: ["/data"] } },
    ],
    when: [{ key: "request.headers[x-tenant]", values: ["acme"] }],
  },
]);
const acme = { headers: { "x-tenant": "acme" } };

describe("L7 rules per request (Istio examples)", () => {
  const cases: [string, AuthorizationPolicy[], AuthzRequest, boolean][] = [
    ["httpbin: sleep GET /info/x", [httpbin], http("GET", "/info/x", acme), true],
    ["httpbin: sleep POST /data", [httpbin], http("POST", "/data", acme), true],
    ["httpbin: test namespace GET /info", [httpbin], http("GET", "/info", acme, TEST_NS), true],
    [
      "httpbin: sleep POST /info (method of the other operation)",
      [httpbin],
      http("POST", "/info", acme),
      false,
    ],
    ["httpbin: sleep GET /data", [httpbin], http("GET", "/data", acme), false],
    ["httpbin: dev namespace", [httpbin], http("GET", "/info", acme, DEV), false],
    ["httpbin: header missing", [httpbin], http("GET", "/info"), false],
    [
      "httpbin: header of another tenant",
      [httpbin],
      http("GET", "/info", { headers: { "x-tenant": "evil" } }),
      false,
    ],
    [
      "DENY POST from the dev namespace (Istio example)",
      [
        ap("deny-dev-post", "DENY", [
          { from: [{ source: { namespaces: ["dev"] } }], to: [{ operation: { methods: ["POST"] } }] },
        ]),
      ],
      http("POST", "/x", {}, DEV),
      false,
    ],
    [
      "DENY POST from dev lets GET through",
      [
        ap("deny-dev-post", "DENY", [
          { from: [{ source: { namespaces: ["dev"] } }], to: [{ operation: { methods: ["POST"] } }] },
        ]),
      ],
      http("GET", "/x", {}, DEV),
      true,
    ],
    [
      "DENY notPaths /healthz: /healthz passes",
      [ap("only-health", "DENY", [{ to: [{ operation: { notPaths: ["/healthz"] } }] }])],
      http("GET", "/healthz"),
      true,
    ],
    [
      "DENY notPaths /healthz: anything else is denied",
      [ap("only-health", "DENY", [{ to: [{ operation: { notPaths: ["/healthz"] } }] }])],
      http("GET", "/admin"),
      false,
    ],
    [
      "notMethods in ALLOW",
      [ap("no-delete", "ALLOW", [{ to: [{ operation: { notMethods: ["DELETE"] } }] }])],
      http("DELETE", "/x"),
      false,
    ],
    [
      "methods are case-sensitive (as :method)",
      [ap("get", "ALLOW", [{ to: [{ operation: { methods: ["GET"] } }] }])],
      http("get", "/x"),
      false,
    ],
    [
      "ports and methods together: other port",
      [ap("p", "ALLOW", [{ to: [{ operation: { ports: [9000], methods: ["GET"] } }] }])],
      http("GET", "/x"),
      false,
    ],
    [
      "gRPC method by path prefix",
      [ap("grpc", "ALLOW", [{ to: [{ operation: { paths: ["/pkg.Echo/*"] } }] }])],
      http("POST", "/pkg.Echo/Say", { headers: { "content-type": "application/grpc" } }),
      true,
    ],
  ];
  it.each(cases)("%s", (_name, policies, request, allowed) => {
    expect(evaluateAuthz(policies, request).allowed).toBe(allowed);
  });
});

describe("paths", () => {
  const allow = (paths: string[]) => [ap("a", "ALLOW", [{ to: [{ operation: { paths } }] }])];
  const deny = (paths: string[]) => [ap("d", "DENY", [{ to: [{ operation: { paths } }] }])];
  const cases: [string, AuthorizationPolicy[], string, boolean][] = [
    ["exact", allow(["/api"]), "/api", true],
    ["exact ignores the query", allow(["/api"]), "/api?debug=1", true],
    ["exact is not a prefix", allow(["/api"]), "/api/v1", false],
    ["prefix /api/*", allow(["/api/*"]), "/api/v1/users", true],
    ["prefix /api/* does not match /api", allow(["/api/*"]), "/api", false],
    ["suffix *.txt", allow(["*.txt"]), "/docs/readme.txt", true],
    ["suffix *.txt, query ignored", allow(["*.txt"]), "/readme.txt?x=.png", true],
    ["* matches any path", allow(["*"]), "/", true],
    ["template {*}: one segment", allow(["/users/{*}/orders"]), "/users/7/orders", true],
    ["template {*}: not two", allow(["/users/{*}/orders"]), "/users/7/8/orders", false],
    ["template {*}: not empty", allow(["/users/{*}/orders"]), "/users//orders", false],
    ["template {**}: many", allow(["/files/{**}"]), "/files/a/b/c.txt", true],
    ["template {**}: at least one", allow(["/files/{**}"]), "/files/", false],
    ["DENY /admin* vs dot segment", deny(["/admin*"]), "/./admin", false],
    ["DENY /admin* vs parent segment", deny(["/admin*"]), "/public/../admin/x", false],
    ["DENY /admin* vs escaped letter", deny(["/%61dmin*"]), "/%61dmin", false],
    ["DENY /admin vs %61", deny(["/admin"]), "/%61dmin", false],
    ["DENY /admin vs fragment", deny(["/admin"]), "/admin#top", false],
    ["DENY /admin leaves /admins", deny(["/admin"]), "/admins", true],
  ];
  it.each(cases)("%s", (_name, policies, path, allowed) => {
    expect(evaluateAuthz(policies, http("GET", path)).allowed).toBe(allowed);
  });
});

describe("hosts", () => {
  const allow = (hosts: string[]) => [ap("a", "ALLOW", [{ to: [{ operation: { hosts } }] }])];
  const cases: [string, string[], string, boolean][] = [
    ["exact", ["httpbin.foo"], "httpbin.foo", true],
    ["case-insensitive", ["HTTPBIN.foo"], "HttpBin.FOO", true],
    ["a portless pattern matches with a port", ["httpbin.foo"], "httpbin.foo:8000", true],
    ["a pattern with a port needs that port", ["httpbin.foo:8000"], "httpbin.foo:9000", false],
    ["a pattern with a port: no port given", ["httpbin.foo:8000"], "httpbin.foo", false],
    ["host:* wildcard port", ["httpbin.foo:*"], "httpbin.foo:9000", true],
    ["suffix *.foo with a port", ["*.foo"], "httpbin.foo:8000", true],
    ["another host", ["httpbin.foo"], "evil.foo", false],
    ["IPv6 literal with a port", ["[fd00::1]"], "[fd00::1]:8000", true],
  ];
  it.each(cases)("%s", (_name, hosts, host, allowed) => {
    expect(evaluateAuthz(allow(hosts), http("GET", "/", { host })).allowed).toBe(allowed);
  });

  it("notHosts in a DENY cannot be dodged with a port", () => {
    const p = [ap("d", "DENY", [{ to: [{ operation: { hosts: ["admin.foo"] } }] }])];
    expect(evaluateAuthz(p, http("GET", "/", { host: "ADMIN.foo:80" })).allowed).toBe(false);
  });
});

describe("when request.headers", () => {
  const when = (values?: string[], notValues?: string[]) => [
    ap("a", "ALLOW", [{ when: [{ key: "request.headers[X-Version]", values, notValues }] }]),
  ];
  const h = (headers: AuthzHttp["headers"]) => http("GET", "/", { headers });
  it("matches values with the Istio string forms, header names case-insensitively", () => {
    expect(evaluateAuthz(when(["v1", "v2"]), h({ "x-version": "v2" })).allowed).toBe(true);
    expect(evaluateAuthz(when(["v*"]), h({ "x-version": "v9" })).allowed).toBe(true);
    expect(evaluateAuthz(when(["*-beta"]), h({ "x-version": "v2-beta" })).allowed).toBe(true);
    expect(evaluateAuthz(when(["v1"]), h({ "X-Version": "v1" })).allowed).toBe(true);
    expect(evaluateAuthz(when(["v1"]), h({ "x-version": "v3" })).allowed).toBe(false);
  });
  it("* is presence: an empty value counts, an absent header does not", () => {
    expect(evaluateAuthz(when(["*"]), h({ "x-version": "" })).allowed).toBe(true);
    expect(evaluateAuthz(when(["*"]), h({})).allowed).toBe(false);
  });
  it("repeated headers are joined with a comma, as Envoy matches them", () => {
    expect(evaluateAuthz(when(["v1,v2"]), h({ "x-version": ["v1", "v2"] })).allowed).toBe(true);
  });
  it("notValues: an absent header is not a listed value", () => {
    expect(evaluateAuthz(when(undefined, ["v0"]), h({})).allowed).toBe(true);
    expect(evaluateAuthz(when(undefined, ["v0"]), h({ "x-version": "v0" })).allowed).toBe(false);
  });
  it("L4 when keys work per request too", () => {
    const p = [ap("a", "ALLOW", [{ when: [{ key: "source.principal", values: [SLEEP] }] }])];
    expect(evaluateAuthz(p, http("GET", "/")).allowed).toBe(true);
    expect(evaluateAuthz(p, http("GET", "/", {}, DEV)).allowed).toBe(false);
  });
});

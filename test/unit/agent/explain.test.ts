// `nodemesh explain`'s decision, pure, over one snapshot: captured and allowed (with its route and
// endpoints), the ways a connection is not captured, a mesh failure, a route miss, a denial naming its
// policy, live state (ejection, breaker) shown per endpoint; and the admin page's 400s.
import { describe, expect, it } from "vitest";
import { explainConnection, type ExplainState } from "../../../agent/proxy/explain.ts";
import { explainPage } from "../../../agent/proxy/explain-page.ts";
import { MeshView } from "../../../agent/state/view.ts";
import { AuthorizationPolicy, HTTPRoute, type MeshConfig } from "../../../controller/api/index.ts";
import { baseConfig, HEADER, VIP } from "../../integration/agent/harness.ts";

function config(): MeshConfig {
  const c = baseConfig("1", ["pem"]);
  c.services.push(
    {
      ...HEADER,
      kind: "Service",
      metadata: { name: "web", namespace: "default" },
      spec: {
        addresses: ["10.96.0.20"],
        ports: [{ port: 80, protocol: "TCP", appProtocol: "http" }],
        selector: { app: "echo" },
      },
    },
    {
      ...HEADER,
      kind: "Service",
      metadata: { name: "empty", namespace: "default" },
      spec: {
        addresses: ["10.96.0.30"],
        ports: [{ port: 80, protocol: "TCP" }],
        selector: { app: "nobody" },
      },
    },
  );
  c.httpRoutes.push(
    HTTPRoute.parse({
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "HTTPRoute",
      metadata: { name: "web", namespace: "default" },
      spec: {
        parentRefs: [{ group: "", kind: "Service", name: "web" }],
        rules: [
          {
            name: "api",
            matches: [{ path: { type: "PathPrefix", value: "/api" } }],
            backendRefs: [{ name: "echo", port: 80 }],
          },
        ],
      },
    }),
  );
  c.authorizationPolicies.push(
    AuthorizationPolicy.parse({
      ...HEADER,
      kind: "AuthorizationPolicy",
      metadata: { name: "no-admin", namespace: "default" },
      spec: {
        selector: { matchLabels: { app: "echo" } },
        action: "DENY",
        rules: [{ to: [{ operation: { paths: ["/api/admin*"] } }] }],
      },
    }),
  );
  return c;
}

const view = new MeshView(config(), { nodeName: "node-a" });
const open = new MeshView({ ...config(), authorizationPolicies: [] }, { nodeName: "node-a" });
function state(over: Partial<ExplainState> = {}): ExplainState {
  return {
    node: "node-a",
    settings: { connectTimeoutMs: 1000 },
    enrollment: () => ({ agent: true, kernel: { enrolled: true, strict: true } }),
    ejected: () => false,
    breaker: () => undefined,
    ...over,
  };
}

describe("explainConnection", () => {
  it("a captured TCP connection: allowed to every endpoint, with their identity and mTLS mode", () => {
    const e = explainConnection(
      open,
      "client",
      `${VIP}:80`,
      state({ breaker: (_d, ep) => (ep === "127.0.2.2:8080" ? "open" : undefined) }),
    );
    expect(e.verdict).toBe("allowed");
    expect(e.capture).toEqual({ enrolled: true, kernel: "enrolled", meshed: true });
    expect(e.destination).toMatchObject({ kind: "service", service: "echo.default", protocol: "tcp" });
    expect(e.endpoints.map((x) => [x.workload, x.mtls, x.breaker])).toEqual([
      ["default/echo-a", "STRICT", "closed"],
      ["default/echo-b", "STRICT", "open"],
    ]);
  });

  it("an L7-only DENY denies opaque TCP to the same pods (it cannot see the path: fail closed)", () => {
    const e = explainConnection(view, "client", `${VIP}:80`, state());
    expect(e.verdict).toBe("denied");
    expect(e.endpoints[0]?.authz).toMatchObject({ allowed: false, policy: "default/no-admin" });
  });

  it("an HTTP request: the route rule that matches and its backends; an L7 DENY names the policy", () => {
    const ok = explainConnection(view, "default/client", "web", state(), {
      method: "GET",
      path: "/api/x",
      headers: {},
    });
    expect(ok.verdict).toBe("allowed");
    expect(ok.route).toEqual({
      route: "default/web",
      rule: 0,
      name: "api",
      backends: ["default/echo:80 weight 1"],
    });
    const denied = explainConnection(view, "127.0.1.1", "web.default:80", state(), {
      method: "GET",
      path: "/api/admin/x",
      headers: {},
    });
    expect(denied.verdict).toBe("denied");
    expect(denied.endpoints.every((x) => x.authz.policy === "default/no-admin")).toBe(true);
    const miss = explainConnection(view, "client", "web:80", state(), {
      method: "GET",
      path: "/other",
      headers: {},
    });
    expect(miss).toMatchObject({ verdict: "fails", route: { noMatch: true } });
  });

  it.each([
    ["a pod with no WorkloadEntry", "stranger", state(), /no WorkloadEntry matches "stranger"/],
    [
      "a workload the agent could not enroll",
      "client",
      state({ enrollment: () => ({ agent: false }) }),
      /not enrolled by this agent/,
    ],
    [
      "a workload missing from the kernel map",
      "client",
      state({ enrollment: () => ({ agent: true, kernel: { enrolled: false, strict: false } }) }),
      /not in the kernel's workload map/,
    ],
  ])("not captured: %s", (_what, pod, st, reason) => {
    const e = explainConnection(view, pod, `${VIP}:80`, st);
    expect(e.verdict).toBe("not-captured");
    expect(e.reasons.join("\n")).toMatch(reason);
    expect(e.reasons.join("\n")).toMatch(
      /default\/echo-a, default\/echo-b are dropped by the kernel: PeerAuthentication STRICT/,
    );
  });

  it("not captured: a destination outside the mesh; elsewhere: a pod of another node", () => {
    expect(explainConnection(view, "client", "10.9.9.9:80", state()).verdict).toBe("not-captured");
    expect(explainConnection(view, "echo-b", `${VIP}:80`, state())).toMatchObject({
      verdict: "elsewhere",
      source: { node: "node-b", local: false },
    });
  });

  it("fails: a service with no endpoints, as the data path would fail it", () => {
    const e = explainConnection(view, "client", "empty:80", state());
    expect(e).toMatchObject({ verdict: "fails", plan: { kind: "fail", flag: "NoHealthyUpstream" } });
  });

  it("without a config nothing is captured", () => {
    expect(explainConnection(undefined, "client", "web:80", state()).verdict).toBe("not-captured");
  });
});

describe("explainPage", () => {
  const page = explainPage({
    node: "node-a",
    settings: { connectTimeoutMs: 1000 },
    view: () => open,
    enrolled: () => true,
    balancing: () => [{ destination: "default/echo:80", ejected: ["127.0.1.2:8080"] }],
    breakers: () => [],
  });
  const get = (q: string) => page({}, new URL(`http://x/explain?${q}`));
  it.each([
    ["to=web:80", /pod is required/],
    ["pod=client", /to is required/],
    ["pod=client&to=web:99999", /to has an invalid port/],
    ["pod=client&to=10.96.0.10", /address without a port/],
    ["pod=client&to=web:80&path=api", /path must start with "\/"/],
    ["pod=client&to=web:80&header=nocolon", /header must be "name: value"/],
  ])("400 for %s", (q, message) => {
    const r = get(q);
    expect(r.status).toBe(400);
    expect(String(r.body)).toMatch(message);
  });
  it("answers the explanation, with the live ejections", () => {
    const r = get(`pod=client&to=${VIP}:80`);
    const body = r.body as { verdict: string; endpoints: { endpoint: string; ejected: boolean }[] };
    expect(body.verdict).toBe("allowed");
    expect(body.endpoints.find((x) => x.endpoint === "127.0.1.2:8080")?.ejected).toBe(true);
  });
});

import { describe, expect, it } from "vitest";
import type {
  AuthorizationPolicy,
  PeerAuthentication,
  WorkloadEntry,
} from "../../../controller/api/index.ts";
import { evaluateAuthz, inBlock, parsePrincipal, type AuthzRequest } from "../../../agent/policy/authz.ts";
import { refusesPlaintext, resolveMtlsMode } from "../../../agent/policy/peer-auth.ts";

const H = { apiVersion: "nodemesh.io/v1alpha1" as const };
function ap(
  name: string,
  action: "ALLOW" | "DENY",
  rules: AuthorizationPolicy["spec"]["rules"],
): AuthorizationPolicy {
  return {
    ...H,
    kind: "AuthorizationPolicy",
    metadata: { name, namespace: "default" },
    spec: { action, rules },
  };
}
const CLIENT = "spiffe://cluster.local/ns/default/sa/client";
const req = (principal: string | undefined, port = 8080, sourceIp = "10.0.0.5"): AuthzRequest => ({
  principal,
  destinationPort: port,
  sourceIp,
});

describe("AuthorizationPolicy evaluation", () => {
  const cases: [string, AuthorizationPolicy[], AuthzRequest, boolean][] = [
    ["no policy: allow", [], req(CLIENT), true],
    ["ALLOW with no rules allows nothing", [ap("a", "ALLOW", [])], req(CLIENT), false],
    ["ALLOW rules [{}] allows all", [ap("a", "ALLOW", [{}])], req(CLIENT), true],
    [
      "ALLOW by principal (Istio form)",
      [ap("a", "ALLOW", [{ from: [{ source: { principals: ["cluster.local/ns/default/sa/client"] } }] }])],
      req(CLIENT),
      true,
    ],
    [
      "ALLOW by principal (spiffe form), other principal denied",
      [ap("a", "ALLOW", [{ from: [{ source: { principals: [CLIENT] } }] }])],
      req("spiffe://cluster.local/ns/default/sa/other"),
      false,
    ],
    [
      "DENY before ALLOW",
      [ap("allow", "ALLOW", [{}]), ap("deny", "DENY", [{ from: [{ source: { principals: [CLIENT] } }] }])],
      req(CLIENT),
      false,
    ],
    ["DENY with no rules denies nothing", [ap("d", "DENY", [])], req(CLIENT), true],
    [
      "namespaces and prefix match",
      [ap("a", "ALLOW", [{ from: [{ source: { namespaces: ["def*"] } }] }])],
      req(CLIENT),
      true,
    ],
    [
      "notNamespaces excludes",
      [ap("a", "ALLOW", [{ from: [{ source: { notNamespaces: ["default"] } }] }])],
      req(CLIENT),
      false,
    ],
    [
      "notPrincipals in DENY: deny everyone but the client",
      [ap("d", "DENY", [{ from: [{ source: { notPrincipals: ["*/sa/client"] } }] }])],
      req(CLIENT),
      true,
    ],
    [
      "serviceAccounts ns/sa",
      [ap("a", "ALLOW", [{ from: [{ source: { serviceAccounts: ["default/client"] } }] }])],
      req(CLIENT),
      true,
    ],
    [
      "ports: other port not allowed",
      [ap("a", "ALLOW", [{ to: [{ operation: { ports: [9090] } }] }])],
      req(CLIENT, 8080),
      false,
    ],
    [
      "notPorts",
      [ap("a", "DENY", [{ to: [{ operation: { notPorts: [8080] } }] }])],
      req(CLIENT, 9090),
      false,
    ],
    [
      "ipBlocks CIDR",
      [ap("a", "ALLOW", [{ from: [{ source: { ipBlocks: ["10.0.0.0/24"] } }] }])],
      req(CLIENT, 8080, "10.0.0.7"),
      true,
    ],
    [
      "remoteIpBlocks: the same authenticated client address",
      [ap("a", "ALLOW", [{ from: [{ source: { remoteIpBlocks: ["10.0.0.0/24"] } }] }])],
      req(CLIENT, 8080, "10.0.0.7"),
      true,
    ],
    [
      "notRemoteIpBlocks in DENY excludes the client",
      [ap("d", "DENY", [{ from: [{ source: { notRemoteIpBlocks: ["10.0.0.7"] } }] }])],
      req(CLIENT, 8080, "10.0.0.7"),
      true,
    ],
    [
      "when remote.ip",
      [ap("a", "ALLOW", [{ when: [{ key: "remote.ip", values: ["10.0.1.0/24"] }] }])],
      req(CLIENT, 8080, "10.0.0.7"),
      false,
    ],
    [
      "L7 fields never match in ALLOW at L4",
      [ap("a", "ALLOW", [{ to: [{ operation: { methods: ["GET"] } }] }])],
      req(CLIENT),
      false,
    ],
    [
      "L7 fields match in DENY at L4 (fail closed)",
      [ap("d", "DENY", [{ to: [{ operation: { methods: ["GET"] } }] }])],
      req(CLIENT),
      false,
    ],
    [
      "when source.namespace",
      [ap("a", "ALLOW", [{ when: [{ key: "source.namespace", values: ["default"] }] }])],
      req(CLIENT),
      true,
    ],
    [
      "principal '*' requires an identity",
      [ap("a", "ALLOW", [{ from: [{ source: { principals: ["*"] } }] }])],
      req(undefined),
      false,
    ],
  ];
  it.each(cases)("%s", (_name, policies, request, allowed) => {
    expect(evaluateAuthz(policies, request).allowed).toBe(allowed);
  });

  it("names the deciding policy and rule", () => {
    const d = evaluateAuthz(
      [ap("deny-client", "DENY", [{ to: [{ operation: { ports: [1] } }] }, {}])],
      req(CLIENT),
    );
    expect(d).toEqual({
      allowed: false,
      policy: "default/deny-client",
      rule: 1,
      reason: "denied by DENY policy default/deny-client (rule 1)",
      deferred: false,
    });
    const a = evaluateAuthz([ap("open", "ALLOW", [{}])], req(CLIENT));
    expect(a).toMatchObject({ allowed: true, policy: "default/open", rule: 0, deferred: false });
    expect(evaluateAuthz([ap("closed", "ALLOW", [])], req(CLIENT))).toEqual({
      allowed: false,
      reason: "no ALLOW policy matched",
      deferred: false,
    });
  });

  it("serviceAccounts without a namespace are in the policy's namespace (Istio)", () => {
    const other = { ...ap("a", "ALLOW", [{ from: [{ source: { serviceAccounts: ["client"] } }] }]) };
    expect(evaluateAuthz([other], req(CLIENT)).allowed).toBe(true);
    const elsewhere = { ...other, metadata: { name: "a", namespace: "shop" } };
    expect(evaluateAuthz([elsewhere], req(CLIENT)).allowed).toBe(false);
  });

  it("when destination.ip: matches the target, fails closed when the caller does not pass it", () => {
    const cond = [{ when: [{ key: "destination.ip", values: ["10.1.0.0/16"] }] }];
    const inside = { ...req(CLIENT), destinationIp: "10.1.2.3" };
    expect(evaluateAuthz([ap("a", "ALLOW", cond)], inside).allowed).toBe(true);
    expect(evaluateAuthz([ap("a", "ALLOW", cond)], { ...inside, destinationIp: "10.2.0.1" }).allowed).toBe(
      false,
    );
    expect(evaluateAuthz([ap("a", "ALLOW", cond)], req(CLIENT)).allowed).toBe(false);
    expect(evaluateAuthz([ap("d", "DENY", cond)], req(CLIENT)).allowed).toBe(false);
  });

  it("a peer without a SPIFFE ID has no principal and no namespace", () => {
    expect(parsePrincipal(CLIENT)).toEqual({
      principal: "cluster.local/ns/default/sa/client",
      namespace: "default",
      serviceAccount: "client",
    });
    expect(parsePrincipal(undefined)).toEqual({ principal: "", namespace: "", serviceAccount: "" });
    // not a URI: no identity at all (ztunnel's matches_principal requires the scheme)
    expect(parsePrincipal("cluster.local/ns/default/sa/client").principal).toBe("");
    const deny = ap("d", "DENY", [{ from: [{ source: { notNamespaces: ["default"] } }] }]);
    expect(evaluateAuthz([deny], req(undefined)).allowed).toBe(false);
  });

  it("CIDR matching", () => {
    expect(inBlock("192.168.1.1", "192.168.0.0/16")).toBe(true);
    expect(inBlock("192.169.1.1", "192.168.0.0/16")).toBe(false);
    expect(inBlock("1.2.3.4", "1.2.3.4")).toBe(true);
    expect(inBlock("::ffff:10.0.0.5", "10.0.0.0/8")).toBe(true);
    expect(inBlock("10.0.0.5", "0.0.0.0/0")).toBe(true);
    expect(inBlock("bad", "0.0.0.0/0")).toBe(false);
    expect(inBlock("10.0.0.5", "10.0.0.0/33")).toBe(false);
    expect(inBlock("10.0.0.5", "10.0.0.0/x")).toBe(false);
    expect(inBlock("10.0.0.256", "10.0.0.0/24")).toBe(false);
    expect(inBlock("fd00::1", "10.0.0.0/8")).toBe(false);
  });
});

describe("PeerAuthentication", () => {
  const w: WorkloadEntry = {
    ...H,
    kind: "WorkloadEntry",
    metadata: { name: "db", namespace: "data" },
    spec: { address: "10.0.0.1", serviceAccount: "db", labels: { app: "db" }, node: "n1", netns: "x" },
  };
  const pa = (
    name: string,
    ns: string,
    mode: "STRICT" | "PERMISSIVE" | "UNSET",
    extra = {},
  ): PeerAuthentication => ({
    ...H,
    kind: "PeerAuthentication",
    metadata: { name, namespace: ns },
    spec: { mtls: { mode }, ...extra },
  });
  it("defaults to STRICT", () => expect(resolveMtlsMode([], w, 5432, "nodemesh-system")).toBe("STRICT"));
  it("mesh < namespace < workload < port", () => {
    const mesh = pa("default", "nodemesh-system", "PERMISSIVE");
    expect(resolveMtlsMode([mesh], w, 5432, "nodemesh-system")).toBe("PERMISSIVE");
    const ns = pa("ns", "data", "STRICT");
    expect(resolveMtlsMode([mesh, ns], w, 5432, "nodemesh-system")).toBe("STRICT");
    const wl = pa("wl", "data", "PERMISSIVE", { selector: { matchLabels: { app: "db" } } });
    expect(resolveMtlsMode([mesh, ns, wl], w, 5432, "nodemesh-system")).toBe("PERMISSIVE");
    const port = pa("port", "data", "UNSET", {
      selector: { matchLabels: { app: "db" } },
      portLevelMtls: { "5432": { mode: "STRICT" } },
    });
    expect(resolveMtlsMode([mesh, ns, port], w, 5432, "nodemesh-system")).toBe("STRICT");
    expect(resolveMtlsMode([mesh, port], w, 80, "nodemesh-system")).toBe("PERMISSIVE"); // UNSET inherits
  });
  it("refusesPlaintext is the workload default; port exceptions are the plan's (plaintextPlan)", () => {
    const root = "nodemesh-system";
    expect(refusesPlaintext([], w, root)).toBe(true);
    expect(refusesPlaintext([pa("default", root, "PERMISSIVE")], w, root)).toBe(false);
    expect(refusesPlaintext([pa("default", root, "PERMISSIVE"), pa("ns", "data", "STRICT")], w, root)).toBe(
      true,
    );
    // a PERMISSIVE port no longer opens the whole workload: the default stays STRICT
    const openPort = pa("port", "data", "STRICT", {
      selector: { matchLabels: { app: "db" } },
      portLevelMtls: { "5432": { mode: "PERMISSIVE" } },
    });
    expect(refusesPlaintext([openPort], w, root)).toBe(true);
    // a policy of another namespace does not apply
    expect(refusesPlaintext([pa("other", "web", "PERMISSIVE")], w, root)).toBe(true);
  });
});

// The policy matching shared by controller and agent (one copy, in controller/api): Istio's string
// match, the peer identity policy sees, and the `when` keys the schema lets through.
import { describe, expect, test } from "vitest";
import {
  formatIssue,
  peerIdentityOf,
  stringMatches,
  validateDocument,
} from "../../../controller/api/index.ts";

describe("stringMatches (Istio: exact, prefix*, *suffix, *)", () => {
  const cases: [string, string | undefined, boolean][] = [
    ["abc", "abc", true],
    ["abc", "abcd", false],
    ["abc*", "abcd", true],
    ["abc*", "abc", true],
    ["abc*", "ab", false],
    ["*bc", "abc", true],
    ["*bc", "bc", true],
    ["*bc", "bcd", false],
    ["*", "x", true],
    // `*` is Istio's `.+` and ztunnel's Presence (`!is_empty()`): an empty value is not "present"
    ["*", "", false],
    ["*", undefined, false],
    ["abc*", undefined, false],
    ["", "", true],
  ];
  test.each(cases)("%j against %j → %s", (pattern, value, expected) => {
    expect(stringMatches(pattern, value)).toBe(expected);
  });
});

describe("peerIdentityOf", () => {
  test("a mesh SPIFFE ID", () => {
    expect(peerIdentityOf("spiffe://cluster.local/ns/shop/sa/web")).toEqual({
      principal: "cluster.local/ns/shop/sa/web",
      namespace: "shop",
      serviceAccount: "web",
    });
  });
  test("another SPIFFE shape keeps its principal, matches no namespace", () => {
    expect(peerIdentityOf("spiffe://td/workload/x")).toEqual({
      principal: "td/workload/x",
      namespace: "",
      serviceAccount: "",
    });
  });
  test.each([undefined, "", "cluster.local/ns/shop/sa/web", "https://td/ns/a/sa/b"])(
    "no identity: %j",
    (id) => {
      expect(peerIdentityOf(id)).toEqual({ principal: "", namespace: "", serviceAccount: "" });
    },
  );
});

function policyErrors(when: unknown[]): string[] {
  const doc = {
    apiVersion: "nodemesh.io/v1alpha1",
    kind: "AuthorizationPolicy",
    metadata: { name: "p", namespace: "shop" },
    spec: { action: "DENY", rules: [{ when }] },
  };
  const r = validateDocument(doc, "mesh.yaml", 1);
  return r.ok ? [] : r.issues.map(formatIssue);
}
const AT = "mesh.yaml: document 1 (AuthorizationPolicy shop/p): spec.rules[0].when[0]";

describe("AuthorizationPolicy `when` keys", () => {
  test.each([
    { key: "request.headers[x-user]", values: ["alice", "b*"] },
    { key: "request.headers[User-Agent]", notValues: ["*bot"] },
    { key: "source.ip", values: ["10.0.0.1", "10.1.0.0/16"] },
    { key: "destination.ip", notValues: ["10.96.0.10"] },
    { key: "destination.port", values: ["8080"] },
    { key: "source.principal", values: ["cluster.local/ns/shop/sa/*"] },
    { key: "source.namespace", values: ["shop"] },
  ])("accepts %j", (c) => {
    expect(policyErrors([c])).toEqual([]);
  });

  test("request.auth.* is rejected as unsupported, with what to use instead", () => {
    expect(policyErrors([{ key: "request.auth.claims[iss]", values: ["https://issuer"] }])).toEqual([
      `${AT}.key: "request.auth.claims[iss]" is not supported: nodemesh does not validate JWTs (no RequestAuthentication); match on request.headers[<name>] or source.principal instead`,
    ]);
    expect(policyErrors([{ key: "request.auth.principal", values: ["*"] }])[0]).toMatch(/not supported/);
  });

  test("other unknown keys name the supported ones", () => {
    expect(policyErrors([{ key: "connection.sni", values: ["x"] }])).toEqual([
      `${AT}.key: unsupported condition key "connection.sni"; use request.headers[<name>], source.ip, remote.ip, source.principal, source.namespace, destination.ip, destination.port`,
    ]);
  });

  test("a malformed header key", () => {
    expect(policyErrors([{ key: "request.headers[]", values: ["x"] }])).toEqual([
      `${AT}.key: "request.headers[]" must name one header: request.headers[<name>]`,
    ]);
    expect(policyErrors([{ key: "request.headers[a b]", values: ["x"] }])[0]).toMatch(/must name one header/);
  });

  test("a condition needs values or notValues", () => {
    expect(policyErrors([{ key: "source.ip" }])).toEqual([
      `${AT}.values: condition source.ip needs values or notValues`,
    ]);
    expect(policyErrors([{ key: "source.ip", values: [] }])).toHaveLength(1);
  });

  test("values are checked per key, naming the entry", () => {
    expect(policyErrors([{ key: "source.ip", values: ["10.0.0.1", "10.0.0.0/40"] }])).toEqual([
      `${AT}.values[1]: source.ip values must be IPv4 addresses or CIDRs (10.0.0.0/8), got "10.0.0.0/40"`,
    ]);
    expect(policyErrors([{ key: "destination.port", notValues: ["http"] }])).toEqual([
      `${AT}.notValues[0]: destination.port values must be port numbers (1-65535), got "http"`,
    ]);
    expect(policyErrors([{ key: "destination.port", values: ["70000"] }])).toHaveLength(1);
    expect(policyErrors([{ key: "destination.ip", values: ["fd00::1"] }])).toHaveLength(1);
  });
});

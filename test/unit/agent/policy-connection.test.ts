// Connection-level evaluation of policies with HTTP rules: opaque TCP (ztunnel/istiod ambient: ALLOW
// rules needing HTTP never match, DENY rules match on their L4 parts) and the `deferHttp` check of an
// L7 port, whose answer must agree with evaluating every request.
import { describe, expect, it } from "vitest";
import type { AuthorizationPolicy } from "../../../controller/api/index.ts";
import { evaluateAuthz, type AuthzRequest } from "../../../agent/policy/authz.ts";

type Rules = AuthorizationPolicy["spec"]["rules"];
const ap = (name: string, action: "ALLOW" | "DENY", rules: Rules): AuthorizationPolicy => ({
  apiVersion: "nodemesh.io/v1alpha1",
  kind: "AuthorizationPolicy",
  metadata: { name, namespace: "foo" },
  spec: { action, rules },
});
const SLEEP = "spiffe://cluster.local/ns/default/sa/sleep";
const DEV = "spiffe://cluster.local/ns/dev/sa/any";
const conn = (principal = SLEEP, port = 8000): AuthzRequest => ({
  principal,
  sourceIp: "10.0.0.5",
  destinationPort: port,
});

const allowGet = ap("allow-get", "ALLOW", [{ to: [{ operation: { methods: ["GET"] } }] }]);
const denyPost = ap("deny-post", "DENY", [{ to: [{ operation: { methods: ["POST"], ports: [8000] } }] }]);
const denyDev = ap("deny-dev", "DENY", [{ from: [{ source: { namespaces: ["dev"] } }] }]);
const allowSleep = ap("allow-sleep", "ALLOW", [{ from: [{ source: { principals: [SLEEP.slice(9)] } }] }]);
const allowDevGet = ap("allow-dev-get", "ALLOW", [
  { from: [{ source: { namespaces: ["dev"] } }], to: [{ operation: { methods: ["GET"] } }] },
]);
const denyHeader = ap("deny-canary", "DENY", [
  { when: [{ key: "request.headers[x-canary]", values: ["*"] }] },
]);

describe("opaque TCP (no http): fail closed", () => {
  const cases: [string, AuthorizationPolicy[], AuthzRequest, boolean][] = [
    ["an ALLOW rule with methods never matches", [allowGet], conn(), false],
    ["a DENY rule with methods matches on its ports", [denyPost], conn(), false],
    ["a DENY rule with methods on another port does not", [denyPost], conn(SLEEP, 9000), true],
    ["a DENY rule with a header condition matches", [denyHeader], conn(), false],
    ["L4-only rules decide as before", [allowSleep], conn(), true],
    [
      "mixed ALLOW rule: the L4 operation does not rescue it",
      [ap("m", "ALLOW", [{ to: [{ operation: { methods: ["GET"] } }, { operation: { ports: [8000] } }] }])],
      conn(),
      false,
    ],
    [
      "an L4 ALLOW rule beside an HTTP one still allows",
      [ap("m", "ALLOW", [{ to: [{ operation: { methods: ["GET"] } }] }, {}])],
      conn(),
      true,
    ],
  ];
  it.each(cases)("%s", (_name, policies, request, allowed) => {
    const d = evaluateAuthz(policies, request);
    expect(d.allowed).toBe(allowed);
    expect(d.deferred).toBe(false);
  });

  it("names the rule that decided", () => {
    const d = evaluateAuthz([ap("m", "ALLOW", [{ to: [{ operation: { methods: ["GET"] } }] }, {}])], conn());
    expect(d).toMatchObject({ policy: "foo/m", rule: 1 });
  });
});

describe("deferHttp: the connection check of an L7 port", () => {
  const defer = { deferHttp: true };
  const cases: [string, AuthorizationPolicy[], AuthzRequest, { allowed: boolean; deferred: boolean }][] = [
    ["no policy", [], conn(), { allowed: true, deferred: false }],
    ["L4-only allow", [allowSleep], conn(), { allowed: true, deferred: false }],
    ["L4-only deny", [denyDev, allowGet], conn(DEV), { allowed: false, deferred: false }],
    ["HTTP ALLOW whose L4 parts match", [allowGet], conn(), { allowed: true, deferred: true }],
    ["HTTP ALLOW whose L4 parts fail", [allowDevGet], conn(), { allowed: false, deferred: false }],
    ["HTTP DENY whose L4 parts match, no ALLOW", [denyPost], conn(), { allowed: true, deferred: true }],
    ["HTTP DENY on another port", [denyPost], conn(SLEEP, 9000), { allowed: true, deferred: false }],
    ["HTTP DENY, and an L4 ALLOW", [denyPost, allowSleep], conn(), { allowed: true, deferred: true }],
    [
      "HTTP DENY, and no ALLOW can match",
      [denyPost, allowDevGet],
      conn(),
      { allowed: false, deferred: false },
    ],
  ];
  it.each(cases)("%s", (_name, policies, request, expected) => {
    expect(evaluateAuthz(policies, request, defer)).toMatchObject(expected);
  });

  it("with http present the request decides and nothing is deferred", () => {
    const req = { ...conn(), http: { method: "POST", path: "/", host: "h", headers: {} } };
    expect(evaluateAuthz([denyPost], req, defer)).toMatchObject({
      allowed: false,
      deferred: false,
      policy: "foo/deny-post",
    });
  });

  // The contract the data path relies on: a non-deferred connection answer is every request's answer.
  it("a settled connection answer agrees with every request on it", () => {
    const sets = [
      [allowGet],
      [denyPost],
      [denyDev, allowGet],
      [allowSleep, denyHeader],
      [allowDevGet, denyPost],
      [denyPost, allowSleep],
    ];
    const requests = ["GET", "POST"].flatMap((method) =>
      [{}, { "x-canary": "1" }].map((headers) => ({ method, path: "/p", host: "h", headers })),
    );
    for (const policies of sets) {
      for (const c of [conn(), conn(DEV), conn(SLEEP, 9000)]) {
        const atConnect = evaluateAuthz(policies, c, defer);
        const perRequest = requests.map((h) => evaluateAuthz(policies, { ...c, http: h }).allowed);
        if (!atConnect.deferred) expect(perRequest.every((a) => a === atConnect.allowed)).toBe(true);
        if (!atConnect.allowed) expect(perRequest.some((a) => a)).toBe(false);
      }
    }
  });
});

describe("condition keys this agent cannot evaluate (a newer controller)", () => {
  const unknown = [{ when: [{ key: "request.auth.claims[iss]", values: ["x"] }] }];
  it("never allow and always deny, even with the request", () => {
    const req = { ...conn(), http: { method: "GET", path: "/", host: "h", headers: {} } };
    expect(evaluateAuthz([ap("a", "ALLOW", unknown)], req).allowed).toBe(false);
    expect(evaluateAuthz([ap("d", "DENY", unknown)], req).allowed).toBe(false);
    expect(evaluateAuthz([ap("d", "DENY", unknown)], conn()).allowed).toBe(false);
  });
});

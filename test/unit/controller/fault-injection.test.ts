// The FaultInjection kind and the ExtensionRef filter that attaches it to a route rule: the schema
// accepts exactly a nodemesh.io FaultInjection reference (one per list) with field-named errors, the
// kind travels in MeshConfig and deltas, the model warns about a dangling reference, and route
// compilation carries the resolved (or dangling) fault on the rule and on the backendRef.
import { describe, expect, test } from "vitest";
import { MeshConfig, applyDelta, formatIssue, validateDocument } from "../../../controller/api/index.ts";
import type { Resource } from "../../../controller/api/index.ts";
import { buildModel, sourced } from "../../../controller/model/model.ts";
import { compileRoutes } from "../../../agent/state/routes.ts";

const NS = "mesh";
const fault = (spec: Record<string, unknown>, name = "chaos") => ({
  apiVersion: "nodemesh.io/v1alpha1",
  kind: "FaultInjection",
  metadata: { name, namespace: NS },
  spec,
});
const ext = (name: string, extra: Record<string, unknown> = {}) => ({
  type: "ExtensionRef",
  extensionRef: { group: "nodemesh.io", kind: "FaultInjection", name, ...extra },
});
const route = (rule: Record<string, unknown>, kind = "HTTPRoute") => ({
  apiVersion: "gateway.networking.k8s.io/v1",
  kind,
  metadata: { name: "r", namespace: NS },
  spec: { parentRefs: [{ group: "", kind: "Service", name: "echo", port: 80 }], rules: [rule] },
});
const service = {
  apiVersion: "nodemesh.io/v1alpha1",
  kind: "Service",
  metadata: { name: "echo", namespace: NS },
  spec: { addresses: ["10.96.0.1"], ports: [{ port: 80, name: "http" }] },
};
const backend = { name: "echo", port: 80 };

function errors(doc: unknown): string[] {
  const r = validateDocument(doc, "m.yaml", 2);
  return r.ok ? [] : r.issues.map(formatIssue);
}
function parsed(doc: unknown): Resource {
  const r = validateDocument(doc, "m.yaml", 1);
  if (!r.ok) throw new Error(r.issues.map(formatIssue).join("\n"));
  return r.resource;
}

describe("FaultInjection schema", () => {
  test("Istio's delay/abort shape parses with the percentage default and re-parses to itself", () => {
    const r = parsed(
      fault({ delay: { fixedDelay: "1.5s" }, abort: { httpStatus: 503, grpcStatus: 14, percentage: 10 } }),
    );
    expect(r).toMatchObject({
      kind: "FaultInjection",
      spec: { delay: { fixedDelay: "1.5s", percentage: 100 }, abort: { httpStatus: 503, percentage: 10 } },
    });
    expect(parsed(r)).toEqual(r);
  });

  const F = "m.yaml: document 2 (FaultInjection mesh/chaos): ";
  test.each([
    ["neither delay nor abort", fault({}), [`${F}spec: fault needs delay or abort`]],
    [
      "an abort without a status",
      fault({ abort: { percentage: 5 } }),
      [`${F}spec.abort: abort needs httpStatus or grpcStatus`],
    ],
    [
      "an HTTP status out of range",
      fault({ abort: { httpStatus: 99 } }),
      [`${F}spec.abort.httpStatus: must be an HTTP status (200-599)`],
    ],
    [
      "a gRPC status out of range",
      fault({ abort: { grpcStatus: 17 } }),
      [`${F}spec.abort.grpcStatus: must be a gRPC status code (1-16)`],
    ],
    [
      "a percentage over 100",
      fault({ delay: { fixedDelay: "1s", percentage: 101 } }),
      [`${F}spec.delay.percentage: must be a percentage (0-100)`],
    ],
    [
      "a malformed delay",
      fault({ delay: { fixedDelay: "soon" } }),
      [`${F}spec.delay.fixedDelay: must be a duration such as "250ms", "1s", "1m30s" or "24h"`],
    ],
  ])("rejects %s", (_name, doc, expected) => {
    expect(errors(doc)).toEqual(expected);
  });
});

describe("ExtensionRef filter", () => {
  const P = "m.yaml: document 2 (HTTPRoute mesh/r): spec.rules[0].filters[0]";
  test("a FaultInjection reference is accepted on HTTPRoute and GRPCRoute rules and backendRefs", () => {
    expect(errors(route({ filters: [ext("chaos")], backendRefs: [backend] }))).toEqual([]);
    expect(errors(route({ filters: [ext("chaos")], backendRefs: [backend] }, "GRPCRoute"))).toEqual([]);
    expect(errors(route({ backendRefs: [{ ...backend, filters: [ext("chaos")] }] }))).toEqual([]);
  });

  test.each([
    [
      "another group",
      route({ filters: [ext("x", { group: "example.com" })] }),
      [
        `${P}.extensionRef.group: group must be "nodemesh.io" (extension group "example.com" is not supported by nodemesh)`,
      ],
    ],
    [
      "another kind",
      route({ filters: [ext("x", { kind: "RateLimit" })] }),
      [
        `${P}.extensionRef.kind: kind must be "FaultInjection" (extension kind "RateLimit" is not supported by nodemesh)`,
      ],
    ],
    [
      "a missing name",
      route({
        filters: [{ type: "ExtensionRef", extensionRef: { group: "nodemesh.io", kind: "FaultInjection" } }],
      }),
      [`${P}.extensionRef.name: Invalid input: expected string, received undefined`],
    ],
    [
      "the type without its field",
      route({ filters: [{ type: "ExtensionRef" }] }),
      [`${P}.extensionRef: filter.extensionRef must be specified for ExtensionRef filter.type`],
    ],
    [
      "the field under another type",
      route({
        filters: [
          {
            type: "RequestHeaderModifier",
            requestHeaderModifier: { set: [{ name: "a", value: "b" }] },
            extensionRef: ext("x").extensionRef,
          },
        ],
      }),
      [`${P}.extensionRef: filter.extensionRef must be nil if the filter.type is not ExtensionRef`],
    ],
    [
      "two FaultInjections on one rule",
      route({ filters: [ext("a"), ext("b")] }),
      [
        "m.yaml: document 2 (HTTPRoute mesh/r): spec.rules[0].filters: at most one ExtensionRef filter (FaultInjection) per rule or backendRef",
      ],
    ],
  ])("rejects %s", (_name, doc, expected) => {
    expect(errors(doc)).toEqual(expected);
  });
});

function config(resources: Resource[]) {
  const of = (k: string) => resources.filter((r) => r.kind === k);
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
    grpcRoutes: of("GRPCRoute"),
    faultInjections: of("FaultInjection"),
  });
}
const req = (headers: Record<string, string> = {}) => ({ method: "GET", path: "/", query: "", headers });

describe("compilation and distribution", () => {
  const chaos = parsed(fault({ abort: { httpStatus: 500, percentage: 10 } }));

  test("the matched rule carries the resolved FaultInjection; other rules carry none", () => {
    const r = parsed(
      route({
        matches: [{ headers: [{ name: "x-chaos", value: "1" }] }],
        filters: [ext("chaos")],
        backendRefs: [backend],
      }),
    );
    const table = compileRoutes(config([parsed(service), r, chaos])).get("mesh/echo:80");
    const hit = table?.match(req({ "x-chaos": "1" }), NS);
    expect(hit?.rule.fault).toEqual({
      ref: "mesh/chaos",
      settings: chaos.kind === "FaultInjection" && chaos.spec,
    });
    expect(table?.match(req(), NS)).toBeUndefined();
    expect(hit?.rule.filters).toEqual([]);
  });

  test("a dangling reference compiles with no settings, on the rule and on a backendRef", () => {
    const r = parsed(
      route({ filters: [ext("gone")], backendRefs: [{ ...backend, filters: [ext("gone-too")] }] }),
    );
    const rule = compileRoutes(config([parsed(service), r]))
      .get("mesh/echo:80")
      ?.match(req(), NS)?.rule;
    expect(rule?.fault).toEqual({ ref: "mesh/gone", settings: undefined });
    expect(rule?.backends[0]?.fault).toEqual({ ref: "mesh/gone-too", settings: undefined });
  });

  test("a FaultInjection arrives by delta and leaves by removal", () => {
    const base = config([parsed(service)]);
    const added = applyDelta(base, { fromVersion: "1", toVersion: "2", upserts: [chaos], removals: [] });
    expect(added.faultInjections).toEqual([chaos]);
    const removed = applyDelta(added, {
      fromVersion: "2",
      toVersion: "3",
      upserts: [],
      removals: [{ kind: "FaultInjection", namespace: NS, name: "chaos" }],
    });
    expect(removed.faultInjections).toEqual([]);
  });

  test("the model warns about a reference to a FaultInjection that does not exist", () => {
    const r = parsed(route({ filters: [ext("gone")], backendRefs: [backend] }));
    const built = buildModel([parsed(service), r].map((x) => sourced(x, "m.yaml")));
    expect(built.warnings.map(formatIssue)).toContain(
      "m.yaml: document 1 (HTTPRoute mesh/r): spec.rules[0].filters[0].extensionRef: FaultInjection mesh/gone does not exist; requests this filter applies to get 500",
    );
  });
});

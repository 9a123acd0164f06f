// The RateLimitPolicy kind and TrafficPolicy connectionPool.http: the schema accepts the documented
// shapes (and re-parses its output to itself) and rejects each bad input naming the field; the kind
// travels in MeshConfig, deltas and the hub's snapshots to every node; the model warns about targets that
// do not exist.
import { describe, expect, test } from "vitest";
import { applyDelta, formatIssue, validateDocument } from "../../../controller/api/index.ts";
import type { MeshConfig, Resource } from "../../../controller/api/index.ts";
import { ConfigHub } from "../../../controller/distribution/hub.ts";
import { buildModel, sourced } from "../../../controller/model/model.ts";

const NS = "mesh";
const GW = "gateway.networking.k8s.io";
const policy = (spec: Record<string, unknown>, name = "limit") => ({
  apiVersion: "nodemesh.io/v1alpha1",
  kind: "RateLimitPolicy",
  metadata: { name, namespace: NS },
  spec,
});
const bucket = { maxTokens: 10, fillInterval: "1s" };
const svcRef = { kind: "Service", name: "echo" };
const service = {
  apiVersion: "nodemesh.io/v1alpha1",
  kind: "Service",
  metadata: { name: "echo", namespace: NS },
  spec: { addresses: ["10.96.0.1"], ports: [{ port: 80, name: "http" }] },
};
const trafficPolicy = (connectionPool: unknown) => ({
  apiVersion: "nodemesh.io/v1alpha1",
  kind: "TrafficPolicy",
  metadata: { name: "echo", namespace: NS },
  spec: { targetRefs: [svcRef], connectionPool },
});

function errors(doc: unknown): string[] {
  const r = validateDocument(doc, "m.yaml", 2);
  return r.ok ? [] : r.issues.map(formatIssue);
}
function parsed(doc: unknown): Resource {
  const r = validateDocument(doc, "m.yaml", 1);
  if (!r.ok) throw new Error(r.issues.map(formatIssue).join("\n"));
  return r.resource;
}

describe("RateLimitPolicy schema", () => {
  test("a Service target and a route rule target parse with defaults and re-parse to themselves", () => {
    const r = parsed(
      policy({
        targetRefs: [svcRef, { group: GW, kind: "HTTPRoute", name: "web", sectionName: "checkout" }],
        tokenBucket: { maxTokens: 100, tokensPerFill: 10, fillInterval: "100ms" },
      }),
    );
    expect(r).toMatchObject({
      spec: {
        targetRefs: [{ group: "", kind: "Service", name: "echo" }, { sectionName: "checkout" }],
        perSource: false,
      },
    });
    expect(parsed(r)).toEqual(r);
    expect(
      parsed(policy({ targetRefs: [svcRef], tokenBucket: bucket, perSource: true, maxSources: 500 })),
    ).toMatchObject({
      spec: { perSource: true, maxSources: 500 },
    });
  });

  const P = "m.yaml: document 2 (RateLimitPolicy mesh/limit): ";
  test.each([
    [
      "no targets",
      policy({ targetRefs: [], tokenBucket: bucket }),
      `${P}spec.targetRefs: targetRefs needs at least one Service or route rule`,
    ],
    ["no bucket", policy({ targetRefs: [svcRef] }), `${P}spec.tokenBucket:`],
    [
      "an empty bucket",
      policy({ targetRefs: [svcRef], tokenBucket: { maxTokens: 0, fillInterval: "1s" } }),
      `${P}spec.tokenBucket.maxTokens: must be at least 1`,
    ],
    [
      "a zero interval",
      policy({ targetRefs: [svcRef], tokenBucket: { maxTokens: 1, fillInterval: "0s" } }),
      `${P}spec.tokenBucket.fillInterval: fillInterval must be longer than 0s`,
    ],
    [
      "an unknown target kind",
      policy({ targetRefs: [{ kind: "Deployment", name: "x" }], tokenBucket: bucket }),
      `${P}spec.targetRefs[0].kind: kind must be "Service", "HTTPRoute" or "GRPCRoute"`,
    ],
    [
      "a route without the Gateway API group",
      policy({ targetRefs: [{ kind: "HTTPRoute", name: "web", sectionName: "a" }], tokenBucket: bucket }),
      `${P}spec.targetRefs[0].group: group must be "${GW}" for HTTPRoute`,
    ],
    [
      "a Service in the Gateway API group",
      policy({ targetRefs: [{ group: GW, kind: "Service", name: "echo" }], tokenBucket: bucket }),
      `${P}spec.targetRefs[0].group: group must be "" for a Service`,
    ],
    [
      "a route without a rule name",
      policy({ targetRefs: [{ group: GW, kind: "GRPCRoute", name: "web" }], tokenBucket: bucket }),
      `${P}spec.targetRefs[0].sectionName: a GRPCRoute target needs sectionName`,
    ],
    [
      "a Service with a sectionName",
      policy({ targetRefs: [{ ...svcRef, sectionName: "http" }], tokenBucket: bucket }),
      `${P}spec.targetRefs[0].sectionName: sectionName is not supported for a Service target`,
    ],
    [
      "perSource not a boolean",
      policy({ targetRefs: [svcRef], tokenBucket: bucket, perSource: "yes" }),
      `${P}spec.perSource: perSource must be true or false`,
    ],
    [
      "maxSources without perSource",
      policy({ targetRefs: [svcRef], tokenBucket: bucket, maxSources: 10 }),
      `${P}spec.maxSources: maxSources needs perSource: true`,
    ],
    [
      "maxSources of 0",
      policy({ targetRefs: [svcRef], tokenBucket: bucket, perSource: true, maxSources: 0 }),
      `${P}spec.maxSources: must be at least 1`,
    ],
    ["an unknown field", policy({ targetRefs: [svcRef], tokenBucket: bucket, burst: 5 }), `${P}spec:`],
  ])("rejects %s, naming the field", (_, doc, want) => {
    expect(errors(doc).join("\n")).toContain(want);
  });
});

describe("TrafficPolicy connectionPool.http", () => {
  test("accepts Istio's names", () => {
    expect(
      errors(
        trafficPolicy({
          tcp: { maxConnections: 100 },
          http: {
            http1MaxPendingRequests: 10,
            http2MaxRequests: 100,
            maxRequestsPerConnection: 1,
            maxRetries: 3,
          },
        }),
      ),
    ).toEqual([]);
  });
  const T = "m.yaml: document 2 (TrafficPolicy mesh/echo): spec.connectionPool.";
  test.each([
    [{ http: { http2MaxRequests: 0 } }, `${T}http.http2MaxRequests: must be at least 1`],
    [{ http: { http1MaxPendingRequests: -1 } }, `${T}http.http1MaxPendingRequests: must be at least 0`],
    [{ http: { maxRetries: 1.5 } }, `${T}http.maxRetries: must be an integer`],
    [
      { http: { maxRequestsPerConnection: "1" } },
      `${T}http.maxRequestsPerConnection: maxRequestsPerConnection must be a number`,
    ],
    [{ http: { http2MaxRequests: 2 ** 31 } }, `${T}http.http2MaxRequests: must be at most 2147483647`],
    [{ tcp: { maxConnections: 0 } }, `${T}tcp.maxConnections: must be at least 1`],
    [{ http: { idleTimeout: "1s" } }, `${T}http:`],
  ])("rejects %j naming the field", (pool, want) => {
    expect(errors(trafficPolicy(pool)).join("\n")).toContain(want);
  });
});

function config(resources: Resource[]): MeshConfig {
  return {
    version: "1",
    trustDomain: "cluster.local",
    rootNamespace: "nodemesh-system",
    trustBundle: [],
    services: resources.filter((r) => r.kind === "Service"),
    workloads: [],
    authorizationPolicies: [],
    peerAuthentications: [],
    trafficPolicies: [],
    httpRoutes: [],
    grpcRoutes: [],
    faultInjections: [],
  } as MeshConfig;
}

describe("distribution", () => {
  const limit = parsed(policy({ targetRefs: [svcRef], tokenBucket: bucket }));

  test("a RateLimitPolicy arrives by delta (also on a config that predates the kind) and leaves by removal", () => {
    const added = applyDelta(config([parsed(service)]), {
      fromVersion: "1",
      toVersion: "2",
      upserts: [limit],
      removals: [],
    });
    expect(added.rateLimitPolicies).toEqual([limit]);
    const removed = applyDelta(added, {
      fromVersion: "2",
      toVersion: "3",
      upserts: [],
      removals: [{ kind: "RateLimitPolicy", namespace: NS, name: "limit" }],
    });
    expect(removed.rateLimitPolicies).toEqual([]);
  });

  test("every node's snapshot carries it (callers mark the rules it targets)", () => {
    const built = buildModel([parsed(service), limit].map((x) => sourced(x)));
    const hub = new ConfigHub({ epoch: "e" });
    const v = hub.publish(built.model!, []);
    for (const node of ["node-a", "node-without-workloads"]) {
      const snapshot = JSON.parse(hub.snapshotMessage(v, node)) as { config: MeshConfig };
      expect(snapshot.config.rateLimitPolicies).toEqual([limit]);
    }
  });

  test("the model warns about a missing target Service and a rule name the route does not have", () => {
    const route = parsed({
      apiVersion: `${GW}/v1`,
      kind: "HTTPRoute",
      metadata: { name: "web", namespace: NS },
      spec: {
        parentRefs: [{ group: "", kind: "Service", name: "echo" }],
        rules: [{ name: "browse", backendRefs: [{ name: "echo", port: 80 }] }],
      },
    });
    const p = parsed(
      policy({
        targetRefs: [
          { kind: "Service", name: "gone" },
          { group: GW, kind: "HTTPRoute", name: "web", sectionName: "checkout" },
        ],
        tokenBucket: bucket,
      }),
    );
    const built = buildModel([parsed(service), route, p].map((x) => sourced(x, "m.yaml")));
    expect(built.errors).toEqual([]);
    expect(built.warnings.map(formatIssue)).toEqual([
      "m.yaml: document 1 (RateLimitPolicy mesh/limit): spec.targetRefs[0]: Service mesh/gone does not exist (the limit applies to nothing yet)",
      "m.yaml: document 1 (RateLimitPolicy mesh/limit): spec.targetRefs[1].sectionName: HTTPRoute mesh/web has no rule named checkout (the limit applies to nothing yet)",
    ]);
  });
});

describe("a malformed fillInterval (found by test/fuzz/config.fuzz.test.ts)", () => {
  test("is reported as an issue on the field, not thrown from the bucket's refinement", () => {
    const bad = { maxTokens: 5, fillInterval: "s" };
    expect(() => errors(policy({ targetRefs: [svcRef], tokenBucket: bad }))).not.toThrow();
    expect(errors(policy({ targetRefs: [svcRef], tokenBucket: bad })).join("\n")).toMatch(/fillInterval/);
    const tp = { ...trafficPolicy(undefined), spec: { targetRefs: [svcRef], rateLimit: bad } };
    expect(errors(tp).join("\n")).toMatch(/rateLimit\.fillInterval/);
  });
});

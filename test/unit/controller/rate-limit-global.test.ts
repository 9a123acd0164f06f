// RateLimitPolicy `global` on the wire: the schema accepts the documented shapes and rejects each bad
// input naming the field; globalLimitsOf finds each limit's serving nodes as both sides see them; the
// stream's demand and shares messages parse, are bounded, and older messages still parse.
import { describe, expect, test } from "vitest";
import {
  ClientMessage,
  MAX_REPORTED_LIMITS,
  ServerMessage,
  formatIssue,
  globalLimitsOf,
  validateDocument,
  type RateLimitPolicy,
  type Service,
  type WorkloadEntry,
} from "../../../controller/api/index.ts";

const NS = "mesh";
const GW = "gateway.networking.k8s.io";
const policy = (spec: Record<string, unknown>, name = "limit") => ({
  apiVersion: "nodemesh.io/v1alpha1",
  kind: "RateLimitPolicy",
  metadata: { name, namespace: NS },
  spec: { targetRefs: [{ kind: "Service", name: "api" }], ...spec },
});

function errors(doc: unknown): string[] {
  const r = validateDocument(doc, "m.yaml", 2);
  return r.ok ? [] : r.issues.map(formatIssue);
}
function parsed(doc: unknown): RateLimitPolicy {
  const r = validateDocument(doc, "m.yaml", 1);
  if (!r.ok) throw new Error(r.issues.map(formatIssue).join("\n"));
  return r.resource as RateLimitPolicy;
}
const at = (path: string, message: string) =>
  `m.yaml: document 2 (RateLimitPolicy mesh/limit): ${path}: ${message}`;

describe("RateLimitPolicy global: schema", () => {
  test("accepts a global limit alone, with a burst, and next to a local bucket", () => {
    expect(parsed(policy({ global: { requestsPerSecond: 100 } })).spec.global).toEqual({
      requestsPerSecond: 100,
    });
    expect(parsed(policy({ global: { requestsPerSecond: 100, burst: 20 } })).spec.global?.burst).toBe(20);
    const both = parsed(
      policy({ tokenBucket: { maxTokens: 5, fillInterval: "1s" }, global: { requestsPerSecond: 50 } }),
    );
    expect(both.spec.tokenBucket?.maxTokens).toBe(5);
  });

  test.each([
    [
      { global: { requestsPerSecond: 0 } },
      "spec.global.requestsPerSecond",
      "requestsPerSecond must be at least 1",
    ],
    [
      { global: { requestsPerSecond: 2.5 } },
      "spec.global.requestsPerSecond",
      "requestsPerSecond must be an integer",
    ],
    [
      { global: { requestsPerSecond: "10" } },
      "spec.global.requestsPerSecond",
      "requestsPerSecond must be a number",
    ],
    [
      { global: { requestsPerSecond: 2_000_000 } },
      "spec.global.requestsPerSecond",
      "requestsPerSecond must be at most 1000000",
    ],
    [{ global: { requestsPerSecond: 10, burst: 0 } }, "spec.global.burst", "burst must be at least 1"],
    [{ global: { requestsPerSecond: 10, rate: 1 } }, "spec.global", 'Unrecognized key: "rate"'],
    [{}, "spec.tokenBucket", "a RateLimitPolicy needs tokenBucket, global, or both"],
    [
      { global: { requestsPerSecond: 10 }, perSource: true },
      "spec.perSource",
      "perSource needs tokenBucket (the global limit counts every caller together)",
    ],
  ])("rejects %j naming %s", (spec, path, message) => {
    expect(errors(policy(spec))).toEqual([at(path, message)]);
  });

  test("rejects a global limit on a route rule, naming the target", () => {
    const doc = policy({
      targetRefs: [
        { kind: "Service", name: "api" },
        { group: GW, kind: "HTTPRoute", name: "api", sectionName: "writes" },
      ],
      global: { requestsPerSecond: 10 },
    });
    expect(errors(doc)).toEqual([
      at(
        "spec.targetRefs[1].kind",
        "global limits apply to Service targets only (a HTTPRoute rule has no set of serving nodes)",
      ),
    ]);
  });
});

const service = (name: string, app: string): Service => ({
  apiVersion: "nodemesh.io/v1alpha1",
  kind: "Service",
  metadata: { name, namespace: NS },
  spec: { addresses: ["10.96.0.1"], ports: [{ port: 80, name: "http", protocol: "TCP" }], selector: { app } },
});
const workload = (name: string, node: string, app: string, ready = true): WorkloadEntry =>
  ({
    apiVersion: "nodemesh.io/v1alpha1",
    kind: "WorkloadEntry",
    metadata: { name, namespace: NS },
    spec: { address: `10.0.0.${name.length}`, node, serviceAccount: "default", labels: { app }, ready },
  }) as WorkloadEntry;

describe("globalLimitsOf", () => {
  test("lists one limit per Service target with its sorted serving nodes (ready workloads only)", () => {
    const limits = globalLimitsOf({
      services: [service("api", "api"), service("web", "web")],
      workloads: [
        workload("a1", "n2", "api"),
        workload("a2", "n1", "api"),
        workload("a3", "n1", "api"),
        workload("a4", "n3", "api", false),
        workload("w", "n4", "web"),
      ],
      rateLimitPolicies: [
        parsed(
          policy({
            targetRefs: [
              { kind: "Service", name: "api" },
              { kind: "Service", name: "gone" },
            ],
            global: { requestsPerSecond: 30 },
          }),
        ),
        parsed(policy({ tokenBucket: { maxTokens: 1, fillInterval: "1s" } }, "local-only")),
      ],
    });
    expect(limits).toEqual([
      {
        id: "RateLimitPolicy/mesh/limit|api.mesh",
        policy: "RateLimitPolicy/mesh/limit",
        host: "api.mesh",
        requestsPerSecond: 30,
        burst: 30,
        nodes: ["n1", "n2"],
        alwaysHeaders: false,
      },
      {
        id: "RateLimitPolicy/mesh/limit|gone.mesh",
        policy: "RateLimitPolicy/mesh/limit",
        host: "gone.mesh",
        requestsPerSecond: 30,
        burst: 30,
        nodes: [],
        alwaysHeaders: false,
      },
    ]);
  });
});

describe("the stream's global rate limit messages", () => {
  const entry = (i: number) => ({
    id: `RateLimitPolicy/ns/p|s${i}.ns`,
    offeredPerSecond: 1.5,
    admitted: 1,
    refused: 2,
  });

  test("a demand report parses as a ClientMessage, next to the ack it sits beside", () => {
    expect(ClientMessage.parse({ type: "demand", windowMs: 1000, limits: [entry(0)] }).type).toBe("demand");
    expect(ClientMessage.parse({ type: "ack", version: "e-1" }).type).toBe("ack");
  });

  test("bounds a report: entries, id length, negative or unbounded numbers", () => {
    const many = Array.from({ length: MAX_REPORTED_LIMITS + 1 }, (_, i) => entry(i));
    expect(ClientMessage.safeParse({ type: "demand", windowMs: 1000, limits: many }).success).toBe(false);
    const bad = [
      { ...entry(0), id: "x".repeat(701) },
      { ...entry(0), offeredPerSecond: -1 },
      { ...entry(0), offeredPerSecond: 1e12 },
      { ...entry(0), admitted: 0.5 },
    ];
    for (const e of bad)
      expect(ClientMessage.safeParse({ type: "demand", windowMs: 1000, limits: [e] }).success).toBe(false);
    expect(ClientMessage.safeParse({ type: "demand", windowMs: 0, limits: [] }).success).toBe(false);
  });

  test("shares parse as a ServerMessage; a burst under 1 or a negative share does not", () => {
    const ok = {
      type: "shares",
      intervalMs: 2000,
      shares: [{ id: "a|b", requestsPerSecond: 12.5, burst: 3 }],
    };
    expect(ServerMessage.parse(ok).type).toBe("shares");
    expect(
      ServerMessage.safeParse({ ...ok, shares: [{ id: "a|b", requestsPerSecond: -1, burst: 3 }] }).success,
    ).toBe(false);
    expect(
      ServerMessage.safeParse({ ...ok, shares: [{ id: "a|b", requestsPerSecond: 1, burst: 0.5 }] }).success,
    ).toBe(false);
    expect(ServerMessage.parse({ type: "heartbeat", version: "e-1" }).type).toBe("heartbeat");
  });
});

// controller/api schemas: valid documents of every kind, and each rejection message.
import { describe, expect, test } from "vitest";
import {
  KINDS,
  applyDelta,
  DeltaMismatchError,
  durationMs,
  formatIssue,
  MeshConfig,
  parseSpiffeId,
  spiffeIdOf,
  validateDocument,
} from "../../../controller/api/index.ts";
import type { MeshConfig as MeshConfigT, Resource, WorkloadEntry } from "../../../controller/api/index.ts";
import { parseFile } from "../../../controller/file-source.ts";

const V = "nodemesh.io/v1alpha1";
const wl = (spec: Record<string, unknown>, name = "web-1") => ({
  apiVersion: V,
  kind: "WorkloadEntry",
  metadata: { name, namespace: "shop" },
  spec: { address: "10.1.0.2", node: "node-a", netns: "pod-1", ...spec },
});

function errors(doc: unknown): string[] {
  const r = validateDocument(doc, "mesh.yaml", 3);
  return r.ok ? [] : r.issues.map(formatIssue);
}

describe("valid documents", () => {
  test("WorkloadEntry gets defaults and keeps its fields", () => {
    const r = validateDocument(wl({ cgroup: "/kubepods/pod1", ports: { http: 8080 } }), "f", 1);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.resource).toEqual({
      apiVersion: V,
      kind: "WorkloadEntry",
      metadata: { name: "web-1", namespace: "shop" },
      spec: {
        address: "10.1.0.2",
        node: "node-a",
        netns: "pod-1",
        cgroup: "/kubepods/pod1",
        ports: { http: 8080 },
        serviceAccount: "default",
        labels: {},
      },
    });
  });

  test("every kind parses, and the parsed form parses to itself (wire invariant)", () => {
    const docs: unknown[] = [
      {
        apiVersion: V,
        kind: "Service",
        metadata: { name: "web" },
        spec: {
          addresses: ["10.96.0.10"],
          ports: [{ name: "http", port: 80, targetPort: "http", appProtocol: "http" }],
          selector: { app: "web" },
        },
      },
      wl({}),
      {
        apiVersion: V,
        kind: "AuthorizationPolicy",
        metadata: { name: "p", namespace: "shop" },
        spec: {
          targetRefs: [{ kind: "Service", name: "web" }],
          action: "DENY",
          rules: [
            {
              from: [{ source: { notPrincipals: ["cluster.local/ns/shop/sa/*"], namespaces: ["shop"] } }],
              to: [{ operation: { ports: ["80", 8080] } }],
            },
          ],
        },
      },
      {
        apiVersion: V,
        kind: "PeerAuthentication",
        metadata: { name: "default", namespace: "nodemesh-system" },
        spec: { mtls: { mode: "STRICT" } },
      },
      {
        apiVersion: V,
        kind: "TrafficPolicy",
        metadata: { name: "web" },
        spec: {
          targetRefs: [{ group: "", kind: "Service", name: "web" }],
          loadBalancer: { simple: "LEAST_REQUEST" },
          connectionPool: { tcp: { maxConnections: 100, connectTimeout: "250ms" } },
          outlierDetection: {
            consecutive5xxErrors: 5,
            interval: "10s",
            baseEjectionTime: "30s",
            maxEjectionPercent: 50,
          },
        },
      },
    ];
    for (const d of docs) {
      const r = validateDocument(d, "f", 1);
      expect(r.ok, JSON.stringify(r)).toBe(true);
      if (!r.ok) continue;
      const again = validateDocument(JSON.parse(JSON.stringify(r.resource)), "f", 1);
      expect(again.ok && again.resource).toEqual(r.resource);
    }
    const ap = validateDocument(docs[2], "f", 1);
    expect(
      ap.ok &&
        ap.resource.kind === "AuthorizationPolicy" &&
        ap.resource.spec.rules[0]?.to?.[0]?.operation.ports,
    ).toEqual([80, 8080]);
  });
});

describe("each rejection names file, document, resource, field and reason", () => {
  const cases: [string, unknown, string[]][] = [
    [
      "bad IPv4",
      wl({ address: "10.1.0" }),
      ["mesh.yaml: document 3 (WorkloadEntry shop/web-1): spec.address: must be an IPv4 address (a.b.c.d)"],
    ],
    [
      "no netns nor cgroup",
      wl({ netns: undefined }),
      [
        "mesh.yaml: document 3 (WorkloadEntry shop/web-1): spec.netns: a workload needs netns or cgroup (how the agent finds it on its node)",
      ],
    ],
    [
      "unknown kind",
      { apiVersion: V, kind: "VirtualService", metadata: { name: "x" } },
      [
        // Every kind the schema knows, in KINDS order (kinds are added by several features).
        `mesh.yaml: document 3 (VirtualService default/x): kind: unknown kind; expected one of ${KINDS.join(", ")}`,
      ],
    ],
    [
      "wrong apiVersion",
      { ...wl({}), apiVersion: "security.istio.io/v1" },
      [
        'mesh.yaml: document 3 (WorkloadEntry shop/web-1): apiVersion: apiVersion must be "nodemesh.io/v1alpha1"',
      ],
    ],
    [
      "bad name",
      wl({}, "Web_1"),
      [
        "mesh.yaml: document 3 (WorkloadEntry shop/Web_1): metadata.name: must be a lowercase DNS name ([a-z0-9-.], starting and ending alphanumeric)",
      ],
    ],
    [
      "unknown field",
      wl({ adress: "x" }),
      ['mesh.yaml: document 3 (WorkloadEntry shop/web-1): spec: Unrecognized key: "adress"'],
    ],
    [
      "service without VIP, port out of range, UDP",
      {
        apiVersion: V,
        kind: "Service",
        metadata: { name: "s" },
        spec: { addresses: [], ports: [{ port: 70000, protocol: "UDP" }] },
      },
      [
        "mesh.yaml: document 3 (Service default/s): spec.addresses: a service needs at least one address (VIP)",
        "mesh.yaml: document 3 (Service default/s): spec.ports[0].port: must be a port between 1 and 65535",
        'mesh.yaml: document 3 (Service default/s): spec.ports[0].protocol: protocol must be "TCP" (UDP is not meshed)',
      ],
    ],
    [
      "selector with targetRefs, bad port string",
      {
        apiVersion: V,
        kind: "AuthorizationPolicy",
        metadata: { name: "p" },
        spec: {
          selector: { matchLabels: { a: "b" } },
          targetRefs: [{ kind: "Service", name: "s" }],
          rules: [{ to: [{ operation: { ports: ["http"] } }] }],
        },
      },
      [
        "mesh.yaml: document 3 (AuthorizationPolicy default/p): spec.rules[0].to[0].operation.ports[0]: must be a port number",
        "mesh.yaml: document 3 (AuthorizationPolicy default/p): spec.targetRefs: selector and targetRefs are mutually exclusive",
      ],
    ],
    [
      "bad action",
      { apiVersion: V, kind: "AuthorizationPolicy", metadata: { name: "p" }, spec: { action: "AUDIT" } },
      ["mesh.yaml: document 3 (AuthorizationPolicy default/p): spec.action: action must be ALLOW or DENY"],
    ],
    [
      "DISABLE mtls",
      {
        apiVersion: V,
        kind: "PeerAuthentication",
        metadata: { name: "p" },
        spec: { mtls: { mode: "DISABLE" } },
      },
      [
        "mesh.yaml: document 3 (PeerAuthentication default/p): spec.mtls.mode: mtls.mode must be UNSET, PERMISSIVE or STRICT (DISABLE is not supported: node-to-node is always mTLS)",
      ],
    ],
    [
      "portLevelMtls without selector",
      {
        apiVersion: V,
        kind: "PeerAuthentication",
        metadata: { name: "p" },
        spec: { mtls: { mode: "STRICT" }, portLevelMtls: { "5432": { mode: "PERMISSIVE" } } },
      },
      [
        "mesh.yaml: document 3 (PeerAuthentication default/p): spec.portLevelMtls: portLevelMtls requires selector",
      ],
    ],
    [
      "traffic policy errors",
      {
        apiVersion: V,
        kind: "TrafficPolicy",
        metadata: { name: "t" },
        spec: {
          targetRefs: [],
          loadBalancer: { simple: "LEAST_CONN" },
          connectionPool: { tcp: { connectTimeout: "1 sec" } },
          outlierDetection: { maxEjectionPercent: 101 },
        },
      },
      [
        "mesh.yaml: document 3 (TrafficPolicy default/t): spec.targetRefs: targetRefs needs at least one Service",
        "mesh.yaml: document 3 (TrafficPolicy default/t): spec.loadBalancer.simple: loadBalancer.simple must be ROUND_ROBIN, LEAST_REQUEST, RANDOM or PEAK_EWMA",
        'mesh.yaml: document 3 (TrafficPolicy default/t): spec.connectionPool.tcp.connectTimeout: must be a duration such as "250ms", "1s", "1m30s" or "24h"',
        "mesh.yaml: document 3 (TrafficPolicy default/t): spec.outlierDetection.maxEjectionPercent: must be a percentage (0-100)",
      ],
    ],
    ["not an object", "hello", ["mesh.yaml: document 3: Invalid input: expected object, received string"]],
  ];
  test.each(cases)("%s", (_name, doc, expected) => {
    expect(errors(doc)).toEqual(expected);
  });
});

describe("files", () => {
  test("YAML syntax errors name the line; empty documents are skipped", () => {
    const r = parseFile("a.yaml", "---\napiVersion: nodemesh.io/v1alpha1\nkind: [\n---\n");
    expect(r.entries).toEqual([]);
    expect(r.issues).toHaveLength(1);
    expect(formatIssue(r.issues[0] as never)).toMatch(
      /^a\.yaml: document 1: yaml syntax error at line \d+, column \d+: /,
    );
    const ok = parseFile("b.yaml", `---\n${JSON.stringify(wl({}))}\n---\n`);
    expect(ok.issues).toEqual([]);
    expect(ok.entries.map((e) => [e.file, e.document])).toEqual([["b.yaml", 1]]);
  });
});

describe("helpers", () => {
  test("durations", () => {
    expect([
      durationMs("250ms"),
      durationMs("1s"),
      durationMs("1m30s"),
      durationMs("1.5s"),
      durationMs("24h"),
    ]).toEqual([250, 1000, 90_000, 1500, 86_400_000]);
    expect(() => durationMs("5 minutes")).toThrow(/invalid duration/);
  });

  test("SPIFFE IDs", () => {
    const w = validateDocument(wl({ serviceAccount: "web" }), "f", 1) as {
      ok: true;
      resource: WorkloadEntry;
    };
    expect(spiffeIdOf(w.resource, "cluster.local")).toBe("spiffe://cluster.local/ns/shop/sa/web");
    expect(parseSpiffeId("spiffe://cluster.local/ns/shop/sa/web")).toEqual({
      trustDomain: "cluster.local",
      namespace: "shop",
      serviceAccount: "web",
    });
    for (const bad of [
      "spiffe://Cluster/ns/a/sa/b",
      "spiffe://td/ns/a/sa/b/c",
      "spiffe://td/ns/../sa/b",
      "http://td/ns/a/sa/b",
      "spiffe://td/x/a/sa/b",
      "spiffe://td/ns/a/sa/b?x",
    ])
      expect(parseSpiffeId(bad), bad).toBeUndefined();
  });

  test("applyDelta upserts, removes, shares untouched lists, and refuses a wrong base", () => {
    const w1 = (validateDocument(wl({}), "f", 1) as { resource: Resource }).resource;
    const w2 = (validateDocument(wl({ address: "10.1.0.3" }, "web-2"), "f", 1) as { resource: Resource })
      .resource;
    const base: MeshConfigT = MeshConfig.parse({
      version: "e-1",
      trustDomain: "cluster.local",
      rootNamespace: "nodemesh-system",
      trustBundle: ["A"],
      services: [],
      workloads: [w1],
      authorizationPolicies: [],
      peerAuthentications: [],
      trafficPolicies: [],
    });
    const next = applyDelta(base, {
      fromVersion: "e-1",
      toVersion: "e-2",
      upserts: [w2],
      removals: [{ kind: "WorkloadEntry", namespace: "shop", name: "web-1" }],
      trustBundle: ["A", "B"],
    });
    expect(next.version).toBe("e-2");
    expect(next.workloads.map((w) => w.metadata.name)).toEqual(["web-2"]);
    expect(next.trustBundle).toEqual(["A", "B"]);
    expect(next.services).toBe(base.services);
    expect(base.workloads.map((w) => w.metadata.name)).toEqual(["web-1"]);
    expect(() =>
      applyDelta(base, { fromVersion: "x-9", toVersion: "e-3", upserts: [], removals: [] }),
    ).toThrow(DeltaMismatchError);
  });

  test("applyDelta tells apart resources that share a name across namespaces", () => {
    const make = (ns: string, address: string, v = "1") =>
      (
        validateDocument(
          { ...wl({ address, labels: { v } }, "same"), metadata: { name: "same", namespace: ns } },
          "f",
          1,
        ) as { resource: Resource }
      ).resource as WorkloadEntry;
    const list = [make("a", "10.1.0.2"), make("b", "10.1.0.3"), make("c", "10.1.0.4")];
    const base: MeshConfigT = MeshConfig.parse({
      version: "e-1",
      trustDomain: "cluster.local",
      rootNamespace: "nodemesh-system",
      trustBundle: [],
      services: [],
      workloads: list,
      authorizationPolicies: [],
      peerAuthentications: [],
      trafficPolicies: [],
    });
    const next = applyDelta(base, {
      fromVersion: "e-1",
      toVersion: "e-2",
      upserts: [make("b", "10.1.0.3", "2")],
      removals: [{ kind: "WorkloadEntry", namespace: "c", name: "same" }],
    });
    expect(next.workloads.map((w) => [w.metadata.namespace, w.spec.labels.v])).toEqual([
      ["a", "1"],
      ["b", "2"],
    ]);
    expect(next.workloads[0]).toBe(base.workloads[0]);
  });
});

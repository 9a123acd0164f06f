// A YAML file with HTTPRoutes and GRPCRoutes flows through the file parser, the model (with its
// dangling-reference warnings) and the hub's snapshot and delta lines into an agent's MeshConfig.
import { describe, expect, test } from "vitest";
import { applyDelta, formatIssue, MeshConfig, ServerMessage } from "../../../controller/api/index.ts";
import { ConfigHub } from "../../../controller/distribution/hub.ts";
import { parseFile } from "../../../controller/file-source.ts";
import { buildModel } from "../../../controller/model/model.ts";

const YAML = `
apiVersion: nodemesh.io/v1alpha1
kind: Service
metadata: { name: echo, namespace: mesh }
spec:
  addresses: [10.96.0.10]
  ports: [{ name: http, port: 80, appProtocol: http }, { name: grpc, port: 7070, appProtocol: grpc }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: split, namespace: mesh }
spec:
  parentRefs: [{ group: "", kind: Service, name: echo, port: 80 }]
  rules:
    - matches: [{ headers: [{ name: x-canary, value: "yes" }] }]
      backendRefs: [{ name: echo, port: 80 }]
    - backendRefs:
        - { name: echo, port: 80, weight: 95 }
        - { name: echo-canary, port: 80, weight: 5 }
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: rpc, namespace: mesh }
spec:
  parentRefs: [{ group: "", kind: Service, name: echo, port: 7070 }, { group: "", kind: Service, name: ghost }]
  rules:
    - matches: [{ method: { service: grpc.testing.TestService } }]
      backendRefs: [{ name: echo, port: 7070 }]
`;

function hubWith(content: string) {
  const parsed = parseFile("mesh.yaml", content);
  expect(parsed.issues.map(formatIssue)).toEqual([]);
  const built = buildModel(parsed.entries);
  expect(built.errors).toEqual([]);
  return { built, model: built.model! };
}

describe("routes flow from the YAML file to the agent's MeshConfig", () => {
  test("the model lists them and warns about dangling Services without rejecting", () => {
    const { built, model } = hubWith(YAML);
    expect(model.httpRoutes.map((r) => r.metadata.name)).toEqual(["split"]);
    expect(model.grpcRoutes.map((r) => r.metadata.name)).toEqual(["rpc"]);
    expect(built.warnings.map(formatIssue)).toEqual([
      "mesh.yaml: document 2 (HTTPRoute mesh/split): spec.rules[1].backendRefs[1]: service mesh/echo-canary does not exist; requests routed to it get 500",
      "mesh.yaml: document 3 (GRPCRoute mesh/rpc): spec.parentRefs[1]: service mesh/ghost does not exist (the route attaches to nothing yet)",
    ]);
  });

  test("a snapshot carries both lists to every node, and re-validates", () => {
    const { model } = hubWith(YAML);
    const hub = new ConfigHub({ epoch: "e" });
    const v = hub.publish(model, ["PEM"]);
    const msg = ServerMessage.parse(JSON.parse(hub.snapshotMessage(v, "node-without-workloads")));
    expect(msg.type).toBe("snapshot");
    if (msg.type !== "snapshot") return;
    expect(msg.config.httpRoutes).toEqual(model.httpRoutes);
    expect(msg.config.grpcRoutes).toEqual(model.grpcRoutes);
    expect(msg.config.httpRoutes[0]?.spec.rules[1]?.backendRefs?.map((b) => b.weight)).toEqual([95, 5]);
  });

  test("a changed route and a removed one travel as a delta that applyDelta understands", () => {
    const first = hubWith(YAML).model;
    const edited = YAML.replace("weight: 95", "weight: 90").replace(
      /---\napiVersion: gateway.networking.k8s.io\/v1\nkind: GRPCRoute[\s\S]*$/,
      "",
    );
    const second = hubWith(edited).model;
    const hub = new ConfigHub({ epoch: "e" });
    const v1 = hub.publish(first, ["PEM"]);
    const v2 = hub.publish(second, ["PEM"]);
    const snap = ServerMessage.parse(JSON.parse(hub.snapshotMessage(v1, "n")));
    const delta = ServerMessage.parse(JSON.parse(hub.deltaMessage(v1, v2, "n")));
    if (snap.type !== "snapshot" || delta.type !== "delta") throw new Error("wrong message types");
    expect(delta.delta.removals).toEqual([{ kind: "GRPCRoute", namespace: "mesh", name: "rpc" }]);
    const next = applyDelta(snap.config, delta.delta);
    expect(next.grpcRoutes).toEqual([]);
    expect(next.httpRoutes[0]?.spec.rules[1]?.backendRefs?.map((b) => b.weight)).toEqual([90, 5]);
    expect(next.services).toBe(snap.config.services);
  });

  test("a MeshConfig from a sender without route lists gets empty ones", () => {
    const c = MeshConfig.parse({
      version: "1",
      trustDomain: "cluster.local",
      rootNamespace: "nodemesh-system",
      trustBundle: [],
      services: [],
      workloads: [],
      authorizationPolicies: [],
      peerAuthentications: [],
      trafficPolicies: [],
    });
    expect([c.httpRoutes, c.grpcRoutes]).toEqual([[], []]);
  });

  test("an invalid route rejects the file with the field named", () => {
    const bad = YAML.replace("weight: 95", "weight: -5");
    expect(parseFile("mesh.yaml", bad).issues.map(formatIssue)).toEqual([
      "mesh.yaml: document 2 (HTTPRoute mesh/split): spec.rules[1].backendRefs[0].weight: weight must be between 0 and 1000000",
    ]);
  });
});

// WorkloadPositions.apply (agent/control/workload-positions.ts) must give exactly applyDelta's
// config, list order included, whether it takes its in-place path or falls back.
import { describe, expect, test } from "vitest";
import { DeltaMismatchError, applyDelta } from "../../../../controller/api/index.ts";
import type { MeshConfig, MeshDelta, Service, WorkloadEntry } from "../../../../controller/api/index.ts";
import { WorkloadPositions } from "../../../../agent/control/workload-positions.ts";

const API = "nodemesh.io/v1alpha1";
const workload = (i: number, rev = "0"): WorkloadEntry => ({
  apiVersion: API,
  kind: "WorkloadEntry",
  metadata: { name: `w-${i}`, namespace: `ns-${i % 3}` },
  spec: {
    address: `10.0.0.${i}`,
    serviceAccount: "default",
    labels: { app: "a", rev },
    node: "n1",
    netns: "x",
  },
});
const service = (rev: string): Service =>
  ({
    apiVersion: API,
    kind: "Service",
    metadata: { name: "web", namespace: "ns-0" },
    spec: {
      addresses: ["10.96.0.1"],
      ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }],
      selector: { app: rev },
    },
  }) as Service;

const config = (version: string, workloads: WorkloadEntry[]): MeshConfig => ({
  version,
  trustDomain: "cluster.local",
  rootNamespace: "nodemesh-system",
  trustBundle: [],
  services: [service("a")],
  workloads,
  authorizationPolicies: [],
  peerAuthentications: [],
  trafficPolicies: [],
  httpRoutes: [],
  grpcRoutes: [],
  faultInjections: [],
});

describe("WorkloadPositions", () => {
  test("a chain of deltas gives applyDelta's configs, in place or not", () => {
    const positions = new WorkloadPositions();
    let mine = config(
      "v0",
      Array.from({ length: 50 }, (_, i) => workload(i)),
    );
    let theirs = mine;
    const deltas: Omit<MeshDelta, "fromVersion" | "toVersion">[] = [
      { upserts: [workload(7, "1")], removals: [] }, // in place
      { upserts: [workload(7, "2"), workload(40, "1"), service("b")], removals: [] }, // in place + other kind
      { upserts: [workload(60)], removals: [] }, // new: appended (fallback)
      { upserts: [workload(60, "1"), workload(3, "1")], removals: [] }, // positions rebuilt, in place
      { upserts: [workload(5, "1")], removals: [{ kind: "WorkloadEntry", namespace: "ns-0", name: "w-9" }] },
      { upserts: [workload(8, "1"), workload(8, "2")], removals: [] }, // the last of one key wins
      { upserts: [], removals: [{ kind: "Service", namespace: "ns-0", name: "web" }] },
      { upserts: [{ ...workload(61), metadata: { name: "w-4", namespace: "other" } }], removals: [] }, // same name, new ns
      { upserts: [{ ...workload(62, "1"), metadata: { name: "w-4", namespace: "other" } }], removals: [] },
      { upserts: [workload(4, "1")], removals: [] },
    ];
    deltas.forEach((d, k) => {
      const delta = { ...d, fromVersion: `v${k}`, toVersion: `v${k + 1}` } as MeshDelta;
      const held = mine.workloads;
      const heldJson = JSON.stringify(held);
      mine = positions.apply(mine, delta);
      theirs = applyDelta(theirs, delta);
      expect(mine).toEqual(theirs);
      expect(mine.workloads.map((w) => w.metadata.name)).toEqual(
        theirs.workloads.map((w) => w.metadata.name),
      );
      expect(JSON.stringify(held)).toBe(heldJson); // the previous config is never patched
    });
    expect(mine.workloads.find((w) => w.metadata.name === "w-8")?.spec.labels.rev).toBe("2");
  });

  test("a delta from another version is refused as applyDelta refuses it", () => {
    const positions = new WorkloadPositions();
    const c = config("v1", [workload(1)]);
    const delta = {
      fromVersion: "v0",
      toVersion: "v2",
      upserts: [workload(1, "1")],
      removals: [],
    } as MeshDelta;
    expect(() => positions.apply(c, delta)).toThrow(DeltaMismatchError);
    expect(c.workloads[0]?.spec.labels.rev).toBe("0"); // the held list is never patched
  });
});

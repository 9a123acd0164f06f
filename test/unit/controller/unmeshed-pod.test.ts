// Pods that are not in the mesh (docs/kubernetes.md "The plugin on the nodes"): the Kubernetes source
// maps them to UnmeshedPods (UID and node only); the hub sends each node its own and never another
// node's, in snapshots and in deltas; labelling the namespace turns them into PendingWorkloads or
// WorkloadEntries in one delta to their node (and nothing to the others), and removing the label
// turns them back.
import type { V1Namespace, V1Pod } from "@kubernetes/client-node";
import { describe, expect, test } from "vitest";
import { MeshConfig, applyDelta, validateDocument } from "../../../controller/api/index.ts";
import type { MeshDelta, Resource } from "../../../controller/api/index.ts";
import { ConfigHub } from "../../../controller/distribution/hub.ts";
import type { Version } from "../../../controller/distribution/hub.ts";
import { buildModel, sourced } from "../../../controller/model/model.ts";
import type { MeshModel } from "../../../controller/model/model.ts";
import { mapPod } from "../../../controller/sources/kube/map.ts";

const plain: V1Namespace = { metadata: { name: "shop" } };
const meshed: V1Namespace = { metadata: { name: "shop", labels: { "nodemesh.io/mesh": "enabled" } } };
const NODES = ["node-a", "node-b", "node-c"];

/** Pod i of "shop" on `node`; with an IP when `ip` (published), else still pending. */
const pod = (i: number, node: string, ip?: string): V1Pod => ({
  metadata: { name: `p-${i}`, namespace: "shop", uid: `0000000${i}-aaaa-bbbb-cccc-dddddddddddd` },
  spec: { nodeName: node, containers: [{ name: "c" }] },
  status: { phase: ip ? "Running" : "Pending", ...(ip ? { podIP: ip } : {}) },
});
const pods = [pod(1, "node-a", "10.1.0.1"), pod(2, "node-a"), pod(3, "node-b", "10.1.0.3")];

function model(ns: V1Namespace, previous?: MeshModel): MeshModel {
  const entries = pods.map((p) => {
    const m = mapPod(p, ns);
    if ("skip" in m) throw new Error(m.skip);
    const r = validateDocument(m.doc, "kube", 1);
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    return sourced(r.resource);
  });
  const b = buildModel(entries, {}, previous);
  if (!b.model) throw new Error(JSON.stringify(b.errors));
  return b.model;
}

const snapshot = (hub: ConfigHub, v: Version, node: string): MeshConfig =>
  (JSON.parse(hub.snapshotMessage(v, node)) as { config: MeshConfig }).config;
const delta = (hub: ConfigHub, from: Version, to: Version, node: string): MeshDelta =>
  (JSON.parse(hub.deltaMessage(from, to, node)) as { delta: MeshDelta }).delta;
const uids = (c: MeshConfig) => (c.unmeshedPods ?? []).map((u) => u.spec.podUid).sort();
const names = (rs: readonly Resource[]) => rs.map((r) => `${r.kind}/${r.metadata.name}`).sort();
const removed = (d: MeshDelta) => d.removals.map((k) => `${k.kind}/${k.name}`).sort();

describe("UnmeshedPods", () => {
  const hub = new ConfigHub();
  const off = hub.publish(model(plain), []);
  const on = hub.publish(model(meshed, off.model), []);
  const offAgain = hub.publish(model(plain, on.model), []);

  test("each node's snapshot names its own pods that are not meshed, and no other node's", () => {
    expect(uids(snapshot(hub, off, "node-a"))).toEqual([pods[0], pods[1]].map((p) => p?.metadata?.uid));
    expect(uids(snapshot(hub, off, "node-b"))).toEqual([pods[2]?.metadata?.uid]);
    expect(uids(snapshot(hub, off, "node-c"))).toEqual([]);
    for (const node of NODES) {
      const c = snapshot(hub, off, node);
      expect(c.workloads).toEqual([]);
      expect(c.pendingWorkloads).toEqual([]);
      for (const u of c.unmeshedPods ?? []) expect(u.spec.node).toBe(node);
    }
  });

  test("labelling the namespace moves the pods live: one delta per node, scoped; unlabelling moves them back", () => {
    const a = delta(hub, off, on, "node-a");
    // Workloads go everywhere; node-a's pending pod and the removals of its UnmeshedPods only to node-a.
    expect(names(a.upserts)).toEqual(["PendingWorkload/p-2", "WorkloadEntry/p-1", "WorkloadEntry/p-3"]);
    expect(removed(a)).toEqual(["UnmeshedPod/p-1", "UnmeshedPod/p-2"]);
    const b = delta(hub, off, on, "node-b");
    expect(names(b.upserts)).toEqual(["WorkloadEntry/p-1", "WorkloadEntry/p-3"]);
    expect(removed(b)).toEqual(["UnmeshedPod/p-3"]);
    const c = delta(hub, off, on, "node-c");
    expect(removed(c)).toEqual([]);
    const back = delta(hub, on, offAgain, "node-a");
    expect(names(back.upserts)).toEqual(["UnmeshedPod/p-1", "UnmeshedPod/p-2"]);
    // Applied to each node's snapshot, the deltas give that node's next snapshot.
    for (const node of NODES) {
      const applied = applyDelta(snapshot(hub, off, node), delta(hub, off, on, node));
      expect(uids(applied)).toEqual(uids(snapshot(hub, on, node)));
      expect(applied.pendingWorkloads).toEqual(snapshot(hub, on, node).pendingWorkloads);
      const again = applyDelta(applied, delta(hub, on, offAgain, node));
      expect(uids(again)).toEqual(uids(snapshot(hub, off, node)));
      for (const r of delta(hub, on, offAgain, node).upserts)
        if (r.kind === "UnmeshedPod") expect(r.spec.node).toBe(node);
    }
  });

  test("an agent that predates the kind (no unmeshed-pods feature) never sees one, in snapshots or deltas", () => {
    const oldSnapshot = (v: Version, node: string) =>
      JSON.parse(
        hub
          .snapshotParts(v, node, "identity", false, false)
          .map((x) => x.toString())
          .join(""),
      ) as { config: Record<string, unknown> };
    // The schema of an agent from before UnmeshedPods: the same strict object without the field.
    const OldMeshConfig = MeshConfig.omit({ unmeshedPods: true });
    for (const node of NODES) {
      for (const v of [off, on, offAgain]) {
        const c = oldSnapshot(v, node).config;
        expect(c).not.toHaveProperty("unmeshedPods");
        expect(OldMeshConfig.safeParse(c).success).toBe(true);
      }
      for (const [from, to] of [
        [off, on],
        [on, offAgain],
      ] as const) {
        const d = (JSON.parse(hub.deltaMessage(from, to, node, false)) as { delta: MeshDelta }).delta;
        expect([...d.upserts.map((r) => r.kind), ...d.removals.map((k) => k.kind)]).not.toContain(
          "UnmeshedPod",
        );
      }
    }
    // Its workloads and pending pods still move as for a current agent.
    expect(names(delta(hub, off, on, "node-a").upserts)).toEqual(
      names((JSON.parse(hub.deltaMessage(off, on, "node-a", false)) as { delta: MeshDelta }).delta.upserts),
    );
    // A current agent's snapshot of the same version still has them.
    expect(uids(snapshot(hub, off, "node-a"))).toHaveLength(2);
  });

  test("an UnmeshedPod carries nothing but its names, UID and node", () => {
    const u = snapshot(hub, off, "node-b").unmeshedPods?.[0];
    expect(u).toEqual({
      apiVersion: "nodemesh.io/v1alpha1",
      kind: "UnmeshedPod",
      metadata: { name: "p-3", namespace: "shop" },
      spec: { podUid: pods[2]?.metadata?.uid, node: "node-b" },
    });
    expect(validateDocument({ ...u, spec: { podUid: "x y", node: "node-b" } }, "t", 1).ok).toBe(false);
    expect(validateDocument({ ...u, spec: { ...u?.spec, labels: {} } }, "t", 1).ok).toBe(false);
  });
});

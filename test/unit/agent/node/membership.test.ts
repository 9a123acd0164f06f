// agent/node/membership.ts: what the agent answers the CNI plugin's ADD from the controller's config.
// Meshed (a workload or a pending pod of this node) wins; not meshed only from an UnmeshedPod of this
// node whose names agree with the runtime's; everything else is unknown (held, fail closed).
import { describe, expect, test } from "vitest";
import type {
  MeshConfig,
  PendingWorkload,
  UnmeshedPod,
  WorkloadEntry,
} from "../../../../controller/api/index.ts";
import { podMembership } from "../../../../agent/node/membership.ts";

const API = "nodemesh.io/v1alpha1" as const;
const U = "0b9e2c3a-1111-2222-3333-444455556666";
const unmeshed = (uid: string, node: string, name = "web-1"): UnmeshedPod => ({
  apiVersion: API,
  kind: "UnmeshedPod",
  metadata: { name, namespace: "shop" },
  spec: { podUid: uid, node },
});
const pending = (uid: string, node: string): PendingWorkload => ({
  apiVersion: API,
  kind: "PendingWorkload",
  metadata: { name: "web-1", namespace: "shop" },
  spec: { podUid: uid, serviceAccount: "web", labels: {}, node },
});
const workload = (uid: string, node: string): WorkloadEntry => ({
  apiVersion: API,
  kind: "WorkloadEntry",
  metadata: { name: "web-1", namespace: "shop", annotations: { "nodemesh.io/pod-uid": uid } },
  spec: { address: "10.1.0.2", serviceAccount: "web", labels: {}, node, cgroup: "/k" },
});
const config = (o: Partial<MeshConfig>): MeshConfig => ({
  version: "1",
  trustDomain: "cluster.local",
  rootNamespace: "nodemesh-system",
  trustBundle: [],
  services: [],
  workloads: [],
  authorizationPolicies: [],
  peerAuthentications: [],
  trafficPolicies: [],
  httpRoutes: [],
  grpcRoutes: [],
  faultInjections: [],
  ...o,
});

describe("podMembership", () => {
  test.each([
    ["an UnmeshedPod of this node", config({ unmeshedPods: [unmeshed(U, "node-a")] }), "unmeshed"],
    ["a workload of this node", config({ workloads: [workload(U, "node-a")] }), "meshed"],
    ["a pending pod of this node", config({ pendingWorkloads: [pending(U, "node-a")] }), "meshed"],
    [
      "named both ways (meshed wins: held until enrolled)",
      config({ pendingWorkloads: [pending(U, "node-a")], unmeshedPods: [unmeshed(U, "node-a")] }),
      "meshed",
    ],
    ["another node's UnmeshedPod", config({ unmeshedPods: [unmeshed(U, "node-b")] }), "unknown"],
    ["another node's pending pod", config({ pendingWorkloads: [pending(U, "node-b")] }), "unknown"],
    ["nothing", config({}), "unknown"],
    ["a config from a controller without the kind", config({ unmeshedPods: undefined }), "unknown"],
  ])("%s → %s", (_name, c, state) => {
    expect(podMembership(c, "node-a", U).state).toBe(state);
  });

  test("no config yet: unknown, and says so", () => {
    expect(podMembership(undefined, "node-a", U)).toEqual({
      state: "unknown",
      why: expect.stringMatching(/no config from the controller yet/),
    });
  });

  test("an UnmeshedPod whose names disagree with the runtime's is not trusted", () => {
    const c = config({ unmeshedPods: [unmeshed(U, "node-a", "other")] });
    expect(podMembership(c, "node-a", U, { netns: "/n", namespace: "shop", name: "web-1" })).toEqual({
      state: "unknown",
      why: expect.stringMatching(
        /runtime says uid .* is pod shop\/web-1, but the controller's pod .* shop\/other/,
      ),
    });
    expect(podMembership(c, "node-a", U, { netns: "/n", namespace: "shop", name: "other" }).state).toBe(
      "unmeshed",
    );
  });
});

// Pods scheduled without an IP yet (docs/kubernetes.md "Enrolment window"): the Kubernetes source
// maps them to PendingWorkloads; the model issues their identity to their node only and scopes them
// (and the policies that apply to them) to that node; the hub sends them to that node alone; the
// agent's config gets an entry for a pending pod only with a usable CNI hint, built as the entry
// sent once the IP is published (so the hand-over is no re-enrolment).
import type { V1Namespace, V1Pod } from "@kubernetes/client-node";
import { describe, expect, test } from "vitest";
import {
  ServerMessage,
  validateDocument,
  type MeshConfig,
  type PendingWorkload,
  type Resource,
  type WorkloadEntry,
} from "../../../controller/api/index.ts";
import { ConfigHub } from "../../../controller/distribution/hub.ts";
import { buildModel, sourced } from "../../../controller/model/model.ts";
import { mapPod } from "../../../controller/sources/kube/map.ts";
import { withHintedPods } from "../../../agent/node/pending-pods.ts";

const enrolled: V1Namespace = { metadata: { name: "shop", labels: { "nodemesh.io/mesh": "enabled" } } };
const UID = "0b9e2c3a-1111-2222-3333-444455556666";
const scheduled = (ip?: string): V1Pod => ({
  metadata: { name: "web-1", namespace: "shop", uid: UID, labels: { app: "web" } },
  spec: {
    nodeName: "node-a",
    serviceAccountName: "web",
    containers: [{ name: "c", ports: [{ name: "http", containerPort: 8080 }] }],
  },
  status: {
    phase: "Pending",
    qosClass: "BestEffort",
    ...(ip ? { podIP: ip, conditions: [{ type: "Ready", status: "False" }] } : {}),
  },
});

function parsed<T extends Resource["kind"]>(pod: V1Pod, kind: T): Extract<Resource, { kind: T }> {
  const m = mapPod(pod, enrolled);
  if ("skip" in m) throw new Error(m.skip);
  const r = validateDocument(m.doc, "kube", 1);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  expect(r.resource.kind).toBe(kind);
  return r.resource as Extract<Resource, { kind: T }>;
}

const pending = () => parsed(scheduled(), "PendingWorkload");
const policy = (name: string, app: string): Resource =>
  ({
    apiVersion: "nodemesh.io/v1alpha1",
    kind: "AuthorizationPolicy",
    metadata: { name, namespace: "shop" },
    spec: { selector: { matchLabels: { app } }, action: "DENY", rules: [{}] },
  }) as Resource;

describe("the Kubernetes source", () => {
  test("a scheduled pod with no IP is a PendingWorkload with the facts its entry will have", () => {
    const p = pending();
    expect(p.spec).toEqual({
      podUid: UID,
      serviceAccount: "web",
      labels: { app: "web" },
      node: "node-a",
      cgroup: `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID.replaceAll("-", "_")}.slice`,
      ports: { http: 8080 },
    });
    expect(p.metadata.annotations).toEqual({
      "nodemesh.io/pod-uid": UID,
      "nodemesh.io/qos-class": "BestEffort",
    });
  });

  test("unscheduled, IPv6-only and not-enrolled pods are no PendingWorkload", () => {
    expect(parsed(scheduled(), "PendingWorkload").kind).toBe("PendingWorkload");
    expect(mapPod({ ...scheduled(), spec: { containers: [] } }, enrolled)).toEqual({
      skip: "pod not scheduled",
    });
    expect(mapPod(scheduled("fd00::1"), enrolled)).toMatchObject({ skip: expect.stringMatching(/IPv4/) });
    expect(mapPod(scheduled(), { metadata: { name: "shop" } })).toMatchObject({
      doc: { kind: "UnmeshedPod" },
    });
  });
});

describe("model and hub", () => {
  const other = {
    ...pending(),
    metadata: { ...pending().metadata, name: "web-2" },
    spec: { ...pending().spec, node: "node-b", podUid: "ffff" },
  };
  const built = buildModel([sourced(pending()), sourced(other), sourced(policy("deny-web", "web"))]);
  const model = built.model;
  if (!model) throw new Error(JSON.stringify(built.errors));
  const id = "spiffe://cluster.local/ns/shop/sa/web";

  test("the identity of a pending pod is issued to its node only", () => {
    expect(model.identityOnNode(id, "node-a")).toBe(true);
    expect(model.identityOnNode(id, "node-c")).toBe(false);
    expect(model.endpoints).toBeDefined();
    expect(model.workloads).toEqual([]);
  });

  test("each node's snapshot has its own pending pods and the policies that apply to them, nobody else's", () => {
    const hub = new ConfigHub();
    const v = hub.publish(model, []);
    const snap = (node: string) => {
      const m = ServerMessage.parse(JSON.parse(hub.snapshotMessage(v, node)));
      if (m.type !== "snapshot") throw new Error(m.type);
      return m.config;
    };
    expect(snap("node-a").pendingWorkloads?.map((p) => p.metadata.name)).toEqual(["web-1"]);
    expect(snap("node-a").authorizationPolicies.map((p) => p.metadata.name)).toEqual(["deny-web"]);
    expect(snap("node-b").pendingWorkloads?.map((p) => p.metadata.name)).toEqual(["web-2"]);
    expect(snap("node-c").pendingWorkloads).toEqual([]);
    expect(snap("node-c").authorizationPolicies).toEqual([]);
    // The pod gets its IP: the delta to node-a removes the PendingWorkload and adds the entry.
    const entry = parsed(scheduled("10.1.0.7"), "WorkloadEntry");
    const next = buildModel(
      [sourced(entry), sourced(other), sourced(policy("deny-web", "web"))],
      {},
      model,
    ).model;
    if (!next) throw new Error("rejected");
    const delta = JSON.parse(hub.deltaMessage(v, hub.publish(next, []), "node-a")) as {
      delta: { upserts: Resource[]; removals: { kind: string; name: string }[] };
    };
    expect(delta.delta.upserts.map((r) => r.kind)).toEqual(["WorkloadEntry"]);
    expect(delta.delta.removals).toEqual([{ kind: "PendingWorkload", namespace: "shop", name: "web-1" }]);
  });
});

describe("the agent's config with CNI hints", () => {
  const base = (workloads: WorkloadEntry[], pendingWorkloads: PendingWorkload[]): MeshConfig => ({
    version: "1",
    trustDomain: "cluster.local",
    rootNamespace: "nodemesh-system",
    trustBundle: [],
    services: [],
    workloads,
    authorizationPolicies: [],
    peerAuthentications: [],
    trafficPolicies: [],
    httpRoutes: [],
    grpcRoutes: [],
    faultInjections: [],
    pendingWorkloads,
  });
  const hint = { netns: "/var/run/netns/p", address: "10.1.0.7", namespace: "shop", name: "web-1" };

  test("a hinted pending pod becomes the entry the controller sends once the IP is published (but ready)", () => {
    const out = withHintedPods(base([], [pending()]), new Map([[UID, hint]]), "node-a");
    const published = parsed(scheduled("10.1.0.7"), "WorkloadEntry");
    expect(out.config.workloads).toEqual([{ ...published, spec: { ...published.spec, ready: false } }]);
    expect([...out.fromHint]).toEqual(["shop/web-1"]);
    expect(out.refused.size).toBe(0);
  });

  test("no hint, another node, or an ordinary entry: nothing added", () => {
    const c = base([], [pending()]);
    expect(withHintedPods(c, new Map(), "node-a").config).toBe(c);
    expect(withHintedPods(c, new Map([[UID, hint]]), "node-b").config.workloads).toEqual([]);
    const published = parsed(scheduled("10.1.0.8"), "WorkloadEntry");
    const both = base([published], [pending()]);
    expect(withHintedPods(both, new Map([[UID, hint]]), "node-a").config.workloads).toEqual([published]);
  });

  test.each([
    [
      { ...hint, name: "web-2" },
      /runtime says uid .* is pod shop\/web-2, but the controller's pod with that uid is shop\/web-1/,
    ],
    [{ netns: "/n" }, /sent no IPv4 address/],
  ])("a bad hint is refused with the reason: %j", (h, why) => {
    const out = withHintedPods(base([], [pending()]), new Map([[UID, h]]), "node-a");
    expect(out.config.workloads).toEqual([]);
    expect(out.refused.get(UID)).toMatch(why);
  });

  test("an address still held by another workload is refused", () => {
    const holder = parsed(
      { ...scheduled("10.1.0.7"), metadata: { name: "old", namespace: "shop", uid: "abc" } },
      "WorkloadEntry",
    );
    const out = withHintedPods(base([holder], [pending()]), new Map([[UID, hint]]), "node-a");
    expect(out.refused.get(UID)).toMatch(/10.1.0.7 from the CNI result is still held by workload shop\/old/);
  });
});

// The hub's deltas between models built incrementally (the model knows its delta: modelDelta) and
// between versions that are not parent and child (the hub diffs them itself): applied to a node's
// snapshot, each must give that node's next snapshot, and no node ever receives another node's
// PendingWorkloads or the policies of workloads it does not run (security: scoped kinds).
import { describe, expect, test } from "vitest";
import { applyDelta, validateDocument } from "../../../controller/api/index.ts";
import type { MeshConfig, MeshDelta, PendingWorkload, Resource } from "../../../controller/api/index.ts";
import { ConfigHub } from "../../../controller/distribution/hub.ts";
import type { Version } from "../../../controller/distribution/hub.ts";
import { buildModel, modelDelta, sourced } from "../../../controller/model/model.ts";
import type { MeshModel, SourcedResource } from "../../../controller/model/model.ts";

const API = "nodemesh.io/v1alpha1";
const parse = (doc: unknown): Resource => {
  const r = validateDocument(doc, "t.yaml", 1);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.resource;
};
const workload = (i: number, node: string, app = `app-${i % 3}`) =>
  sourced(
    parse({
      apiVersion: API,
      kind: "WorkloadEntry",
      metadata: { name: `w-${i}`, namespace: "shop" },
      spec: { address: `10.1.0.${i}`, node, netns: `/var/run/netns/p${i}`, labels: { app } },
    }),
  );
const policy = (app: string) =>
  sourced(
    parse({
      apiVersion: API,
      kind: "AuthorizationPolicy",
      metadata: { name: app, namespace: "shop" },
      spec: { selector: { matchLabels: { app } }, rules: [{ from: [{ source: { namespaces: ["shop"] } }] }] },
    }),
  );
const pending = (uid: string, node: string): SourcedResource => {
  const p: PendingWorkload = {
    apiVersion: API,
    kind: "PendingWorkload",
    metadata: { name: `pod-${uid}`, namespace: "shop" },
    spec: { podUid: uid, serviceAccount: "default", labels: { app: "secret" }, node },
  } as PendingWorkload;
  return sourced(p);
};

const NODES = ["node-a", "node-b", "node-c"];

/** Lists sorted by key: a delta appends what a snapshot has in entry order. */
function normal(c: MeshConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c)) {
    if (k === "version") continue;
    out[k] =
      Array.isArray(v) && typeof v[0] === "object"
        ? [...v].sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)))
        : v;
  }
  return out;
}

function snapshot(hub: ConfigHub, v: Version, node: string): MeshConfig {
  return (JSON.parse(hub.snapshotMessage(v, node)) as { config: MeshConfig }).config;
}
function delta(hub: ConfigHub, from: Version, to: Version, node: string): MeshDelta {
  return (JSON.parse(hub.deltaMessage(from, to, node)) as { delta: MeshDelta }).delta;
}

/** No scoped resource of another node in what `node` gets: node-c never runs a pending pod. */
function expectScoped(node: string, resources: readonly Resource[]): void {
  for (const r of resources) {
    if (r.kind === "PendingWorkload") expect(r.spec.node).toBe(node);
    if (r.kind === "AuthorizationPolicy" && node === "node-c")
      expect(r.spec.selector?.matchLabels.app).not.toBe("secret");
  }
}

function build(entries: SourcedResource[], previous?: MeshModel): MeshModel {
  const r = buildModel(entries, {}, previous);
  if (!r.model) throw new Error(JSON.stringify(r.errors));
  return r.model;
}

describe("hub deltas over incremental models", () => {
  test("every step and a resume across steps give each node exactly its next snapshot", () => {
    let entries: SourcedResource[] = [
      policy("app-0"),
      policy("app-1"),
      policy("secret"), // applies only to the pending pods: their node alone gets it
      ...Array.from({ length: 9 }, (_, i) => workload(i, NODES[i % 3] as string)),
      pending("1111", "node-a"),
    ];
    const hub = new ConfigHub();
    const versions: Version[] = [hub.publish(build(entries), [])];
    const steps: ((e: SourcedResource[]) => SourcedResource[])[] = [
      (e) => e.map((x) => (x.key === "WorkloadEntry/shop/w-4" ? workload(4, "node-b", "app-0") : x)),
      (e) => [...e, workload(20, "node-c", "app-1")],
      (e) => [...e, pending("2222", "node-b")], // not a workload: the full build
      (e) => e.map((x) => (x.key === "WorkloadEntry/shop/w-1" ? workload(1, "node-c") : x)), // moves node
      (e) => e.filter((x) => x.key !== "WorkloadEntry/shop/w-0"),
    ];
    for (const step of steps) {
      entries = step(entries);
      const prev = versions[versions.length - 1] as Version;
      versions.push(hub.publish(build(entries, prev.model), []));
    }
    // Workload-only steps were built incrementally, with their delta.
    expect(modelDelta((versions[1] as Version).model, (versions[0] as Version).model)?.changed).toEqual(
      new Set(["WorkloadEntry/shop/w-4"]),
    );
    const pairs: [Version, Version][] = versions.slice(1).map((v, i) => [versions[i] as Version, v]);
    pairs.push([versions[0] as Version, versions[versions.length - 1] as Version]); // resume
    for (const [from, to] of pairs)
      for (const node of NODES) {
        const before = snapshot(hub, from, node);
        const d = delta(hub, from, to, node);
        expectScoped(node, d.upserts);
        const after = snapshot(hub, to, node);
        expectScoped(node, [...(after.pendingWorkloads ?? []), ...after.authorizationPolicies]);
        expect(normal(applyDelta(before, d))).toEqual(normal(after));
      }
    const last = versions[versions.length - 1] as Version;
    expect(snapshot(hub, last, "node-b").pendingWorkloads?.map((p) => p.spec.podUid)).toEqual(["2222"]);
    expect(snapshot(hub, last, "node-c").pendingWorkloads).toEqual([]);
    const policies = (node: string) =>
      snapshot(hub, last, node).authorizationPolicies.map((p) => p.metadata.name);
    expect(policies("node-a")).toContain("secret");
    expect(policies("node-c")).not.toContain("secret");
  });
});

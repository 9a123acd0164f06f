// The snapshot's `workloadRows` form (controller/api/workload-rows.ts): lossless for every workload
// (rebuilt objects are the schema's output, key order included; what a row cannot hold goes whole),
// sent only when asked for, and read by the agent into the same config as `workloads`.
import { describe, expect, test } from "vitest";
import { ServerMessage, validateDocument } from "../../../controller/api/index.ts";
import type { MeshConfig, Resource, WorkloadEntry } from "../../../controller/api/index.ts";
import {
  FEATURE_WORKLOAD_ROWS,
  expandWorkloadRows,
  hasFeature,
  workloadFromRow,
  workloadRow,
} from "../../../controller/api/workload-rows.ts";
import { ConfigHub } from "../../../controller/distribution/hub.ts";
import { buildModel, sourced } from "../../../controller/model/model.ts";

const parse = (doc: unknown): Resource => {
  const r = validateDocument(doc, "t.yaml", 1);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.resource;
};
const wl = (name: string, spec: Record<string, unknown>, metadata: Record<string, unknown> = {}) =>
  parse({
    apiVersion: "nodemesh.io/v1alpha1",
    kind: "WorkloadEntry",
    metadata: { name, namespace: "shop", ...metadata },
    spec: { address: `10.0.0.${name.length}`, node: "n1", ...spec },
  }) as WorkloadEntry;

const VARIANTS: WorkloadEntry[] = [
  wl("a", { netns: "/var/run/netns/a" }),
  wl("bb", { cgroup: "/kubepods/pod1", ports: { http: 8080 }, ready: false, labels: { app: "x", v: "2" } }),
  wl("ccc", { netns: "pod-c", serviceAccount: "web", ready: true }),
  wl("dddd", { cgroup: "/c", ports: { grpc: 9090 } }),
  wl("eeeee", { netns: "x" }, { labels: { team: "a" }, annotations: { note: "kept" } }), // no row: whole
];

describe("workload rows", () => {
  test("each workload comes back as the schema's output, key order included", () => {
    for (const w of VARIANTS) {
      const row = workloadRow(w);
      const back = workloadFromRow(JSON.parse(JSON.stringify(row)));
      expect(JSON.stringify(back)).toBe(JSON.stringify(w));
    }
    expect(Array.isArray(workloadRow(VARIANTS[0] as WorkloadEntry))).toBe(true);
    expect(Array.isArray(workloadRow(VARIANTS[4] as WorkloadEntry))).toBe(false); // metadata labels
    expect(workloadRow(VARIANTS[0] as WorkloadEntry)).toHaveLength(7); // trailing nulls left out
  });

  test("the feature header is a comma-separated list", () => {
    expect(hasFeature(undefined, FEATURE_WORKLOAD_ROWS)).toBe(false);
    expect(hasFeature("workload-rows", FEATURE_WORKLOAD_ROWS)).toBe(true);
    expect(hasFeature("other, Workload-Rows", FEATURE_WORKLOAD_ROWS)).toBe(true);
    expect(hasFeature(["other", "workload-rows"], FEATURE_WORKLOAD_ROWS)).toBe(true);
    expect(hasFeature("workload-rowsx", FEATURE_WORKLOAD_ROWS)).toBe(false);
  });

  test("a snapshot with rows reads as the same config as one without, in both encodings' text", () => {
    const built = buildModel(VARIANTS.map((w) => sourced(w)));
    if (!built.model) throw new Error(JSON.stringify(built.errors));
    const hub = new ConfigHub();
    const v = hub.publish(built.model, ["pem"]);
    const text = (rows: boolean) =>
      hub
        .snapshotParts(v, "n1", "identity", rows)
        .map((p) => p.toString())
        .join("");
    expect(text(false)).not.toContain("workloadRows");
    expect(text(true)).not.toContain(`"workloads"`);
    const read = (line: string): MeshConfig => {
      const raw: unknown = JSON.parse(line);
      expandWorkloadRows(raw);
      const msg = ServerMessage.parse(raw); // the agent validates the expanded message
      if (msg.type !== "snapshot") throw new Error(msg.type);
      return msg.config;
    };
    expect(read(text(true))).toEqual(read(text(false)));
    expect(JSON.stringify(read(text(true)).workloads)).toBe(JSON.stringify(VARIANTS));
    // Cached per form: asking again gives the same pieces; the two forms are distinct.
    expect(hub.snapshotParts(v, "n1", "deflate", true)).toBe(hub.snapshotParts(v, "n1", "deflate", true));
    expect(hub.snapshotParts(v, "n1", "deflate", true)).not.toBe(hub.snapshotParts(v, "n1", "deflate"));
  });

  test("messages other than a snapshot with rows are left alone", () => {
    const delta = { type: "delta", delta: { workloadRows: [["x"]] } };
    expandWorkloadRows(delta);
    expect(delta.delta.workloadRows).toEqual([["x"]]);
    const snap = { type: "snapshot", config: { workloads: [] } };
    expandWorkloadRows(snap);
    expect(snap.config).toEqual({ workloads: [] });
    expandWorkloadRows(null);
    expandWorkloadRows("text");
  });
});

// buildModel with a previous model takes the incremental path when only WorkloadEntries changed
// (controller/model/incremental.ts). Whatever path it takes, its answer must be the full build's:
// every test here compares the two on the same entries (errors, warnings, entries and their order,
// per-node policy sets), including the cases where the incremental path must give up.
import { describe, expect, test } from "vitest";
import { formatIssue, validateDocument } from "../../../controller/api/index.ts";
import type { Resource } from "../../../controller/api/index.ts";
import { buildModel, modelDelta, sourced } from "../../../controller/model/model.ts";
import type { MeshModel, SourcedResource } from "../../../controller/model/model.ts";
import { entryDelta } from "../../../controller/model/incremental.ts";

const API = "nodemesh.io/v1alpha1";
const parse = (doc: unknown): Resource => {
  const r = validateDocument(doc, "t.yaml", 1);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.resource;
};
const workload = (i: number, o: { node?: string; address?: string; app?: string; ns?: string } = {}) =>
  sourced(
    parse({
      apiVersion: API,
      kind: "WorkloadEntry",
      metadata: { name: `w-${i}`, namespace: o.ns ?? `ns-${i % 2}` },
      spec: {
        address: o.address ?? `10.1.0.${i}`,
        node: o.node ?? `node-${i % 3}`,
        netns: `/var/run/netns/p${i}`,
        labels: { app: o.app ?? `app-${i % 4}` },
      },
    }),
    "w.yaml",
    i,
  );
const service = (name: string, ns: string, app: string, vip: string) =>
  sourced(
    parse({
      apiVersion: API,
      kind: "Service",
      metadata: { name, namespace: ns },
      spec: { addresses: [vip], ports: [{ name: "http", port: 80, targetPort: 8080 }], selector: { app } },
    }),
    "s.yaml",
  );
const policy = (name: string, ns: string, app: string) =>
  sourced(
    parse({
      apiVersion: API,
      kind: "AuthorizationPolicy",
      metadata: { name, namespace: ns },
      spec: { selector: { matchLabels: { app } }, rules: [{ from: [{ source: { namespaces: [ns] } }] }] },
    }),
    "p.yaml",
  );

const NODES = ["node-0", "node-1", "node-2", "node-9"];

/** Everything a caller can observe of a build, in comparable form. */
function observe(r: ReturnType<typeof buildModel>) {
  const m = r.model;
  return {
    errors: r.errors.map(formatIssue),
    warnings: r.warnings.map(formatIssue),
    entries: m ? [...m.entries.keys()] : [],
    workloads: m?.workloads.map((w) => w.metadata.name) ?? [],
    nodes: m ? NODES.map((n) => [...m.policyKeysForNode(n)]) : [],
    at: m?.workloadAt("10.1.0.3")?.metadata.name,
  };
}

/** Builds `next` from `previous` and from scratch; both must agree. Returns the incremental build. */
function both(next: SourcedResource[], previous: MeshModel) {
  const incremental = buildModel(next, {}, previous);
  expect(observe(incremental)).toEqual(observe(buildModel(next)));
  if (incremental.model) {
    // The delta the distribution diffs with is the one a pass over both models finds.
    const d = modelDelta(incremental.model, previous);
    const full = entryDelta(incremental.model.entries, previous.entries);
    expect(d && { changed: [...d.changed], removed: d.removed }).toEqual({
      changed: [...full.changed],
      removed: full.removed,
    });
  }
  return incremental;
}

const base = (): SourcedResource[] => [
  service("web", "ns-0", "app-0", "10.96.0.1"),
  service("lonely", "ns-0", "nobody", "10.96.0.2"), // warns: no endpoint
  service("api", "ns-1", "app-1", "10.96.0.3"),
  policy("web", "ns-0", "app-0"),
  policy("ghost", "ns-1", "nobody"), // warns: applies to nothing
  ...Array.from({ length: 12 }, (_, i) => workload(i)),
];

function first(entries = base()): MeshModel {
  const r = buildModel(entries);
  if (!r.model) throw new Error(r.errors.map(formatIssue).join("\n"));
  return r.model;
}

describe("incremental model build", () => {
  test("a changed workload: same model as a full build, unaffected warnings reused as they were", () => {
    const entries = base();
    const built = buildModel(entries);
    const prev = built.model as MeshModel;
    const next = [...entries];
    next[5 + 4] = workload(4, { app: "app-1" }); // in ns-0: ns-0's selectors are checked again
    const r = both(next, prev);
    const ghost = (w: typeof r.warnings) => w.find((i) => i.resource?.includes("ghost"));
    const lonely = (w: typeof r.warnings) => w.find((i) => i.resource?.includes("lonely"));
    // ns-1's policy warning is the previous build's object (not checked again); ns-0's is new.
    expect(ghost(r.warnings)).toBe(ghost(built.warnings));
    expect(lonely(r.warnings)).not.toBe(lonely(built.warnings));
    expect(lonely(r.warnings)).toEqual(lonely(built.warnings));
  });

  test("workloads added, removed, moved to another node and to a label a warning was about", () => {
    let prev = first();
    const steps: ((e: SourcedResource[]) => SourcedResource[])[] = [
      (e) => [...e, workload(20, { node: "node-9" })],
      (e) => e.filter((x) => x.key !== "WorkloadEntry/ns-0/w-2"),
      (e) => e.map((x) => (x.key === "WorkloadEntry/ns-1/w-7" ? workload(7, { node: "node-9" }) : x)),
      (e) => e.map((x) => (x.key === "WorkloadEntry/ns-1/w-9" ? workload(9, { app: "nobody" }) : x)),
      (e) => [...e.filter((x) => x.key !== "WorkloadEntry/ns-0/w-0"), workload(0, { address: "10.1.0.99" })],
    ];
    let entries = base();
    for (const step of steps) {
      entries = step(entries);
      const r = both(entries, prev);
      prev = r.model as MeshModel;
    }
    // The last warning about `ghost` went once w-9 matched it.
    expect(buildModel(entries).warnings.map(formatIssue).join("\n")).not.toContain("ghost");
  });

  test("an address taken from another workload is refused with the full build's words", () => {
    const prev = first();
    const next = base().map((x) =>
      x.key === "WorkloadEntry/ns-1/w-5" ? workload(5, { address: "10.1.0.3" }) : x,
    );
    const r = both(next, prev);
    expect(r.model).toBeUndefined();
    expect(r.errors.map(formatIssue).join("\n")).toContain("address 10.1.0.3 is already claimed");
  });

  test("two workloads swapping addresses in one change is no conflict; two new ones on one address is", () => {
    const prev = first();
    const swap = base().map((x) =>
      x.key === "WorkloadEntry/ns-1/w-3"
        ? workload(3, { address: "10.1.0.4" })
        : x.key === "WorkloadEntry/ns-0/w-4"
          ? workload(4, { address: "10.1.0.3" })
          : x,
    );
    expect(both(swap, prev).model).toBeDefined();
    const clash = [...base(), workload(30, { address: "10.1.0.77" }), workload(31, { address: "10.1.0.77" })];
    expect(both(clash, prev).errors).toHaveLength(1);
  });

  test("a duplicate name, a Service or policy change, and a reload of the same entries", () => {
    const prev = first();
    const dup = [...base(), workload(3)];
    expect(both(dup, prev).errors.map(formatIssue).join("\n")).toContain("duplicate name");
    const svc = base().map((x) =>
      x.key === "Service/ns-0/lonely" ? service("lonely", "ns-0", "app-0", "10.96.0.2") : x,
    );
    expect(both(svc, prev).warnings.map(formatIssue).join("\n")).not.toContain("lonely");
    const pol = [...base(), policy("new", "ns-0", "app-0")];
    both(pol, prev);
    const same = both(base(), prev);
    expect(modelDelta(same.model as MeshModel, prev)).toEqual({ changed: new Set(), removed: [] });
  });

  test("an ExternalService that may shadow a workload address is still checked", () => {
    const ext = sourced(
      parse({
        apiVersion: API,
        kind: "ExternalService",
        metadata: { name: "db", namespace: "ns-0" },
        spec: {
          hosts: ["db.example.com"],
          addresses: ["10.1.0.50"],
          ports: [{ name: "tcp", number: 5432, protocol: "TCP" }],
        },
      }),
    );
    const prev = first([...base(), ext]);
    const next = [...base(), ext, workload(50, { address: "10.1.0.50" })];
    expect(both(next, prev).errors.map(formatIssue).join("\n")).toContain("is a workload address");
  });

  test("no delta is claimed between models that were not built from one another", () => {
    const a = first();
    const b = first();
    const c = buildModel([...base(), workload(40)], {}, a).model as MeshModel;
    expect(modelDelta(c, a)).toBeDefined();
    expect(modelDelta(c, b)).toBeUndefined();
    expect(modelDelta(a, b)).toBeUndefined();
  });
});

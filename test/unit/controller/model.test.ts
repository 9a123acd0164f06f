// Model indexing, cross-document checks, policy selector matching and per-node policy filtering.
import { describe, expect, test } from "vitest";
import {
  endpointsOf,
  policyAppliesTo,
  selectorMatches,
  stringMatches,
  validateDocument,
} from "../../../controller/api/index.ts";
import type { AuthorizationPolicy, Resource, Service, WorkloadEntry } from "../../../controller/api/index.ts";
import { buildModel, sourced } from "../../../controller/model/model.ts";
import type { SourcedResource } from "../../../controller/model/model.ts";
import { formatIssue } from "../../../controller/api/index.ts";

const V = "nodemesh.io/v1alpha1";
function res(doc: object): Resource {
  const r = validateDocument({ apiVersion: V, ...doc }, "t", 1);
  if (!r.ok) throw new Error(r.issues.map(formatIssue).join("\n"));
  return r.resource;
}
const wl = (
  name: string,
  address: string,
  node: string,
  labels: Record<string, string>,
  ns = "shop",
  sa = name,
) =>
  res({
    kind: "WorkloadEntry",
    metadata: { name, namespace: ns },
    spec: { address, node, labels, serviceAccount: sa, netns: name, ports: { http: 8080 } },
  }) as WorkloadEntry;
const svc = (name: string, vip: string, selector: Record<string, string> | undefined, ns = "shop") =>
  res({
    kind: "Service",
    metadata: { name, namespace: ns },
    spec: { addresses: [vip], ports: [{ port: 80, targetPort: "http" }, { port: 9090 }], selector },
  }) as Service;
const authz = (name: string, ns: string, spec: object) =>
  res({ kind: "AuthorizationPolicy", metadata: { name, namespace: ns }, spec }) as AuthorizationPolicy;
const at = (r: Resource, file: string, document: number): SourcedResource => ({
  ...sourced(r),
  file,
  document,
});

const web1 = wl("web-1", "10.1.0.2", "node-a", { app: "web" }, "shop", "web");
const web2 = wl("web-2", "10.1.0.3", "node-b", { app: "web" }, "shop", "web");
const db = wl("db", "10.1.0.4", "node-b", { app: "db" });
const other = wl("web-x", "10.2.0.2", "node-c", { app: "web" }, "other");
const web = svc("web", "10.96.0.10", { app: "web" });

describe("model indexes", () => {
  const { model, errors } = buildModel([web, web1, web2, db, other].map((r) => sourced(r)));
  test("builds without errors", () => expect(errors).toEqual([]));
  test("services by VIP:port, workloads by address, node and identity", () => {
    expect(model?.serviceAt("10.96.0.10", 80)).toBe(web);
    expect(model?.serviceAt("10.96.0.10", 9090)).toBe(web);
    expect(model?.serviceAt("10.96.0.10", 81)).toBeUndefined();
    expect(model?.workloadAt("10.1.0.4")).toBe(db);
    expect(model?.workloadsOnNode("node-b")).toEqual([web2, db]);
    expect(model?.workloadsWithIdentity("spiffe://cluster.local/ns/shop/sa/web")).toEqual([web1, web2]);
    expect(model?.identityOnNode("spiffe://cluster.local/ns/shop/sa/web", "node-a")).toBe(true);
    expect(model?.identityOnNode("spiffe://cluster.local/ns/shop/sa/db", "node-a")).toBe(false);
    expect(model?.nodes().sort()).toEqual(["node-a", "node-b", "node-c"]);
  });
  test("endpoints: same namespace only, named target ports resolved", () => {
    const eps = endpointsOf(web, [web1, web2, db, other]).map(
      (e) => `${e.address}:${e.port}<-${e.servicePort}`,
    );
    expect(eps).toEqual([
      "10.1.0.2:8080<-80",
      "10.1.0.2:9090<-9090",
      "10.1.0.3:8080<-80",
      "10.1.0.3:9090<-9090",
    ]);
    expect(model?.endpoints(web)).toHaveLength(4);
  });
});

describe("cross-document checks", () => {
  test("duplicate names and address conflicts reject, naming both places", () => {
    const dup = wl("web-1", "10.1.0.9", "node-a", {}, "shop");
    const clash = wl("clash", "10.1.0.2", "node-a", {});
    const svc2 = svc("web2", "10.96.0.10", { app: "web" });
    const r = buildModel([
      at(web, "a.yaml", 1),
      at(web1, "a.yaml", 2),
      at(dup, "b.yaml", 1),
      at(clash, "b.yaml", 2),
      at(svc2, "b.yaml", 3),
    ]);
    expect(r.model).toBeUndefined();
    expect(r.errors.map(formatIssue)).toEqual([
      "b.yaml: document 1 (WorkloadEntry shop/web-1): metadata.name: duplicate name: also defined in a.yaml document 2",
      "b.yaml: document 2 (WorkloadEntry shop/clash): spec.address: address 10.1.0.2 is already claimed by WorkloadEntry shop/web-1 (a.yaml document 2)",
      "b.yaml: document 3 (Service shop/web2): spec.addresses: 10.96.0.10:80 is already served by Service shop/web",
      "b.yaml: document 3 (Service shop/web2): spec.addresses: 10.96.0.10:9090 is already served by Service shop/web",
    ]);
  });

  test("selectors matching nothing and dangling targetRefs are warnings", () => {
    const lonely = svc("lonely", "10.96.0.11", { app: "nothing" });
    const p = authz("p", "shop", { selector: { matchLabels: { app: "ghost" } } });
    const t = res({
      kind: "TrafficPolicy",
      metadata: { name: "t", namespace: "shop" },
      spec: { targetRefs: [{ kind: "Service", name: "missing" }] },
    });
    const r = buildModel([
      at(web1, "m.yaml", 1),
      at(lonely, "m.yaml", 2),
      at(p, "m.yaml", 3),
      at(t, "m.yaml", 4),
    ]);
    expect(r.errors).toEqual([]);
    expect(r.model).toBeDefined();
    expect(r.warnings.map(formatIssue)).toEqual([
      "m.yaml: document 2 (Service shop/lonely): spec.selector: selector matches no workload in this namespace (the service has no endpoints)",
      "m.yaml: document 3 (AuthorizationPolicy shop/p): spec.selector: selector matches no workload (the policy applies to nothing yet)",
      "m.yaml: document 4 (TrafficPolicy shop/t): spec.targetRefs[0]: service shop/missing does not exist",
    ]);
  });
});

describe("policy selector matching", () => {
  test("selectorMatches: subset of labels; empty matches all; absent matches nothing", () => {
    expect(selectorMatches({ app: "web" }, { app: "web", v: "1" })).toBe(true);
    expect(selectorMatches({ app: "web", v: "2" }, { app: "web", v: "1" })).toBe(false);
    expect(selectorMatches({}, { any: "x" })).toBe(true);
    expect(selectorMatches(undefined, { any: "x" })).toBe(false);
  });

  test("namespace, selector, targetRefs and root-namespace scoping", () => {
    const nsWide = authz("ns", "shop", {});
    const sel = authz("sel", "shop", { selector: { matchLabels: { app: "db" } } });
    const ref = authz("ref", "shop", { targetRefs: [{ kind: "Service", name: "web" }] });
    const root = authz("root", "nodemesh-system", {});
    const rootSel = authz("root-sel", "nodemesh-system", { selector: { matchLabels: { app: "web" } } });
    const table: [AuthorizationPolicy, WorkloadEntry, boolean][] = [
      [nsWide, web1, true],
      [nsWide, other, false],
      [sel, db, true],
      [sel, web1, false],
      [ref, web1, true],
      [ref, db, false],
      [ref, other, false],
      [root, other, true],
      [rootSel, other, true],
      [rootSel, db, false],
    ];
    for (const [p, w, want] of table)
      expect(policyAppliesTo(p, w, [web]), `${p.metadata.name} → ${w.metadata.name}`).toBe(want);
  });

  test("per-node policy sets", () => {
    const sel = authz("sel", "shop", { selector: { matchLabels: { app: "db" } } });
    const root = authz("root", "nodemesh-system", {});
    const { model } = buildModel([web, web1, web2, db, sel, root].map((r) => sourced(r)));
    expect([...(model?.policyKeysForNode("node-a") ?? [])].sort()).toEqual([
      "AuthorizationPolicy/nodemesh-system/root",
    ]);
    expect([...(model?.policyKeysForNode("node-b") ?? [])].sort()).toEqual([
      "AuthorizationPolicy/nodemesh-system/root",
      "AuthorizationPolicy/shop/sel",
    ]);
    expect(
      model
        ?.policiesFor(db)
        .authorization.map((p) => p.metadata.name)
        .sort(),
    ).toEqual(["root", "sel"]);
  });

  test("Istio string matching", () => {
    expect(stringMatches("*", "x")).toBe(true);
    expect(stringMatches("cluster.local/ns/shop/*", "cluster.local/ns/shop/sa/web")).toBe(true);
    expect(stringMatches("*/sa/web", "cluster.local/ns/shop/sa/web")).toBe(true);
    expect(stringMatches("cluster.local/ns/shop/sa/web", "cluster.local/ns/shop/sa/db")).toBe(false);
    expect(stringMatches("*", undefined)).toBe(false);
  });
});

describe("building from the previous model", () => {
  const nodes = ["node-a", "node-b", "node-c"];
  const base = [web, web1, web2, db, other].map((r) => sourced(r));
  const dbReaders = sourced(
    authz("db-readers", "shop", { selector: { matchLabels: { app: "db" } }, rules: [{}] }),
  );
  const keysOf = (m: ReturnType<typeof buildModel>["model"]) =>
    nodes.map((n) => [...(m?.policyKeysForNode(n) ?? [])].sort());

  test("a workload change keeps the policy sets of other nodes and agrees with a fresh build", () => {
    const prev = buildModel([...base, dbReaders]).model;
    const before = nodes.map((n) => prev?.policyKeysForNode(n));
    // db moves from node-b to node-c: node-b loses db-readers, node-c gains it, node-a keeps its set.
    const moved = sourced(wl("db", "10.1.0.4", "node-c", { app: "db" }));
    const entries = [...base.filter((e) => e.resource !== db), moved, dbReaders];
    const next = buildModel(entries, {}, prev).model;
    expect(keysOf(next)).toEqual(keysOf(buildModel(entries).model));
    expect(next?.policyKeysForNode("node-a")).toBe(before[0]);
    expect(next?.policyKeysForNode("node-b")).not.toBe(before[1]);
    expect([...(next?.policyKeysForNode("node-c") ?? [])]).toEqual(["AuthorizationPolicy/shop/db-readers"]);
  });

  test("a policy change recomputes every node", () => {
    const prev = buildModel([...base, dbReaders]).model;
    const before = prev?.policyKeysForNode("node-a");
    const all = sourced(authz("all", "shop", { rules: [{}] }));
    const entries = [...base, dbReaders, all];
    const next = buildModel(entries, {}, prev).model;
    expect(next?.policyKeysForNode("node-a")).not.toBe(before);
    expect(keysOf(next)).toEqual(keysOf(buildModel(entries).model));
  });

  test("the warnings are those of a fresh build", () => {
    const prev = buildModel(base).model;
    const lonely = sourced(authz("lonely", "shop", { selector: { matchLabels: { app: "none" } } }));
    const r = buildModel([...base, lonely], {}, prev);
    expect(r.warnings.map(formatIssue)).toEqual(buildModel([...base, lonely]).warnings.map(formatIssue));
    expect(r.warnings).toHaveLength(1);
  });
});

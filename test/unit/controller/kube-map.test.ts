// Kubernetes objects → mesh documents (controller/sources/kube/map.ts), validated by the real wire
// schema: enrolment by namespace and pod label, readiness, the kubelet cgroup layout, Services'
// VIPs and ports, custom resources; plus discovery (kinds.ts) and verdicts (verdict.ts).
import type { V1Namespace, V1Pod, V1Service } from "@kubernetes/client-node";
import { describe, expect, test } from "vitest";
import { validateDocument } from "../../../controller/api/index.ts";
import { kindsFor } from "../../../controller/sources/kube/kinds.ts";
import { kubeletCgroup, mapCustom, mapPod, mapService } from "../../../controller/sources/kube/map.ts";
import type { Mapped } from "../../../controller/sources/kube/map.ts";
import { verdictOf } from "../../../controller/sources/kube/verdict.ts";

const enrolled: V1Namespace = { metadata: { name: "shop", labels: { "nodemesh.io/mesh": "enabled" } } };
const plain: V1Namespace = { metadata: { name: "shop" } };
const UID = "0b9e2c3a-1111-2222-3333-444455556666";

function pod(
  over: { labels?: Record<string, string>; ready?: boolean; ip?: string; node?: string; phase?: string } = {},
): V1Pod {
  return {
    metadata: { name: "web-1", namespace: "shop", uid: UID, labels: over.labels ?? { app: "web" } },
    spec: {
      nodeName: over.node ?? "node-a",
      serviceAccountName: "web",
      containers: [
        {
          name: "app",
          ports: [
            { name: "http", containerPort: 8080 },
            { containerPort: 9, protocol: "UDP", name: "u" },
          ],
        },
      ],
    },
    status: {
      phase: over.phase ?? "Running",
      podIP: over.ip ?? "10.1.0.2",
      qosClass: "Burstable",
      conditions: [{ type: "Ready", status: over.ready === false ? "False" : "True" }],
    },
  };
}

function doc(m: Mapped): Record<string, unknown> {
  if ("skip" in m) throw new Error(`skipped: ${m.skip}`);
  return m.doc;
}

describe("pods", () => {
  test("a ready pod in an enrolled namespace is a valid WorkloadEntry", () => {
    const d = doc(mapPod(pod(), enrolled));
    const r = validateDocument(d, "kube", 1);
    expect(r.ok).toBe(true);
    if (!r.ok || r.resource.kind !== "WorkloadEntry") return;
    expect(r.resource.spec).toMatchObject({
      address: "10.1.0.2",
      serviceAccount: "web",
      node: "node-a",
      labels: { app: "web" },
      ports: { http: 8080 },
      cgroup: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replaceAll("-", "_")}.slice`,
    });
    expect(r.resource.metadata.annotations).toEqual({
      "nodemesh.io/pod-uid": UID,
      "nodemesh.io/qos-class": "Burstable",
    });
  });

  test("a pod that is not Ready yet is enrolled with ready false, so it gets no traffic", () => {
    const r = validateDocument(doc(mapPod(pod({ ready: false }), enrolled)), "kube", 1);
    expect(r.ok).toBe(true);
    if (!r.ok || r.resource.kind !== "WorkloadEntry") return;
    expect(r.resource.spec.ready).toBe(false);
    expect(r.resource.spec.address).toBe("10.1.0.2");
  });

  test("a pod with no conditions yet counts as not ready; a Ready one as ready", () => {
    const fresh = pod();
    fresh.status = { ...fresh.status, conditions: undefined, phase: "Pending" };
    expect(doc(mapPod(fresh, enrolled))["spec"]).toMatchObject({ ready: false });
    expect(doc(mapPod(pod(), enrolled))["spec"]).toMatchObject({ ready: true });
  });

  const disabled = { app: "web", "nodemesh.io/mesh": "disabled" };
  test.each([
    ["of a namespace without the label", pod(), plain],
    [
      "of a namespace labelled otherwise",
      pod(),
      { metadata: { name: "shop", labels: { "nodemesh.io/mesh": "no" } } },
    ],
    ["labelled disabled in an enrolled namespace", pod({ labels: disabled }), enrolled],
    ["not meshed, before its IP is published", { ...pod(), status: { phase: "Pending" } }, plain],
    ["not meshed and not ready", pod({ ready: false }), plain],
  ])("a scheduled pod %s is an UnmeshedPod: UID and node only", (_name, p, ns) => {
    const r = validateDocument(doc(mapPod(p, ns)), "kube", 1);
    expect(r.ok && r.resource).toEqual({
      apiVersion: "nodemesh.io/v1alpha1",
      kind: "UnmeshedPod",
      metadata: { name: "web-1", namespace: "shop" },
      spec: { podUid: UID, node: "node-a" },
    });
  });

  test.each([
    ["host-network", { ...pod(), spec: { ...pod().spec, hostNetwork: true } } as V1Pod, /host network/],
    ["finished", pod({ phase: "Failed" }), /failed/],
    ["unscheduled", pod({ node: "" }), /not scheduled/],
  ])("a %s pod that is not meshed needs no UnmeshedPod (the CNI plugin never runs for it)", (_n, p, why) => {
    const m = mapPod(p, plain);
    expect("skip" in m && m.skip).toMatch(why);
  });

  test("a pod whose namespace the controller has not seen is neither meshed nor not meshed (held)", () => {
    expect(mapPod(pod(), undefined)).toEqual({ skip: "namespace shop not seen yet" });
  });

  test.each([
    ["no IPv4", pod({ ip: "fd00::1" }), enrolled, /IPv4/],
    ["finished", pod({ phase: "Succeeded" }), enrolled, /succeeded/],
    ["unscheduled", pod({ node: "" }), enrolled, /not scheduled/],
  ])("%s → skipped", (_name, p, ns, why) => {
    const m = mapPod(p, ns);
    expect("skip" in m && m.skip).toMatch(why);
  });

  test("guaranteed pods sit directly under kubepods.slice", () => {
    expect(kubeletCgroup("a-b", "Guaranteed")).toBe("/kubepods.slice/kubepods-poda_b.slice");
    expect(kubeletCgroup("a-b", undefined)).toBe(
      "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-poda_b.slice",
    );
  });
});

describe("services", () => {
  const svc = (spec: V1Service["spec"]): V1Service => ({
    metadata: { name: "web", namespace: "shop" },
    spec,
  });

  test("ClusterIP and TCP ports with appProtocol and names", () => {
    const d = doc(
      mapService(
        svc({
          clusterIP: "10.96.0.10",
          clusterIPs: ["10.96.0.10", "fd00::10"],
          selector: { app: "web" },
          ports: [
            { name: "http", port: 80, targetPort: "http", appProtocol: "http" },
            { name: "dns", port: 53, protocol: "UDP" },
          ],
        }),
        enrolled,
      ),
    );
    const r = validateDocument(d, "kube", 1);
    expect(r.ok && r.resource.kind === "Service" && r.resource.spec).toEqual({
      addresses: ["10.96.0.10"],
      selector: { app: "web" },
      ports: [{ name: "http", port: 80, targetPort: "http", protocol: "TCP", appProtocol: "http" }],
    });
  });

  test.each([
    ["headless", svc({ clusterIP: "None", ports: [{ port: 80 }] }), enrolled, /headless/],
    ["ExternalName", svc({ type: "ExternalName", externalName: "x.example" }), enrolled, /ExternalName/],
    [
      "UDP only",
      svc({ clusterIP: "10.96.0.1", ports: [{ port: 53, protocol: "UDP" }] }),
      enrolled,
      /no TCP port/,
    ],
    ["not enrolled", svc({ clusterIP: "10.96.0.1", ports: [{ port: 80 }] }), plain, /namespace not labelled/],
  ])("%s → skipped", (_n, s, ns, why) => {
    const m = mapService(s, ns);
    expect("skip" in m && m.skip).toMatch(why);
  });
});

describe("custom resources", () => {
  const ap = {
    apiVersion: "nodemesh.io/v1alpha1",
    kind: "AuthorizationPolicy",
    metadata: {
      name: "deny",
      namespace: "shop",
      uid: "u",
      generation: 3,
      resourceVersion: "9",
      annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}" },
      creationTimestamp: new Date("2026-01-01T00:00:00Z"),
    },
    spec: { action: "DENY", rules: [{}] },
    status: { conditions: [] },
  };

  test("server metadata and status are dropped; the spec is validated as is", () => {
    const d = doc(mapCustom(ap, false));
    expect(d.metadata).toEqual({ name: "deny", namespace: "shop" });
    expect(validateDocument(d, "kube", 1).ok).toBe(true);
  });

  test("routes keep creationTimestamp (it orders tied routes)", () => {
    const d = doc(
      mapCustom(
        { ...ap, metadata: { ...ap.metadata, creationTimestamp: "2026-01-01T00:00:00Z" as never } },
        true,
      ),
    );
    expect(d.metadata).toMatchObject({ creationTimestamp: "2026-01-01T00:00:00Z" });
  });

  test("an invalid policy gets a verdict naming the field and what stays in effect", () => {
    const bad = doc(mapCustom({ ...ap, spec: { action: "MAYBE" } }, false));
    const r = validateDocument(bad, "kube", 1);
    const v = verdictOf(
      r,
      ap,
      { group: "nodemesh.io", version: "v1alpha1", plural: "x", kind: "AuthorizationPolicy", route: false },
      true,
      () => true,
    );
    expect(v).toMatchObject({ accepted: false, reason: "Invalid" });
    expect(v.message).toMatch(
      /spec\.action: action must be ALLOW or DENY; the previous version stays in effect/,
    );
  });
});

describe("routes verdicts (GAMMA)", () => {
  const kind = {
    group: "gateway.networking.k8s.io",
    version: "v1",
    plural: "httproutes",
    kind: "HTTPRoute",
    route: true,
  };
  const route = (backend: Record<string, unknown>) => ({
    metadata: { name: "r", namespace: "shop" },
    spec: { parentRefs: [{ kind: "Service", group: "", name: "web" }], rules: [{ backendRefs: [backend] }] },
  });
  const ok = { ok: true as const, resource: undefined as never };
  const exists = (name: string) => name === "web" || name === "web-v2";

  test.each([
    [{ name: "web-v2", port: 80 }, true, "ResolvedRefs"],
    [{ name: "gone", port: 80 }, false, "BackendNotFound"],
    [{ name: "web", namespace: "other", port: 80 }, false, "RefNotPermitted"],
    [{ name: "web", kind: "Pod", port: 80 }, false, "InvalidKind"],
  ])("backend %j → ResolvedRefs %s (%s)", (backend, resolved, reason) => {
    const v = verdictOf(ok, route(backend), kind, false, exists);
    expect(v.accepted).toBe(true);
    expect(v.refs).toMatchObject({ resolved, reason });
  });

  test("a missing parent Service is NoMatchingParent", () => {
    const v = verdictOf(ok, route({ name: "web" }), kind, false, (n) => n !== "web");
    expect(v).toMatchObject({ accepted: false, reason: "NoMatchingParent" });
  });
});

describe("discovery", () => {
  test("an old server (no CRDs, no discovery/v1) watches nothing custom and says what is missing", () => {
    const d = kindsFor(new Set(["v1", "apps/v1", "discovery.k8s.io/v1beta1"]));
    expect(d.kinds).toEqual([]);
    expect(d.endpointSlices).toBe(false);
    expect(d.missing.join()).toMatch(/AuthorizationPolicy.*CRDs not installed/);
  });

  test("our CRDs and Gateway API v1beta1 routes, when the schema knows the kinds", () => {
    const d = kindsFor(
      new Set(["nodemesh.io/v1alpha1", "gateway.networking.k8s.io/v1beta1", "discovery.k8s.io/v1"]),
      ["AuthorizationPolicy", "HTTPRoute"],
    );
    expect(d.kinds.map((k) => `${k.kind}@${k.version}`)).toEqual([
      "AuthorizationPolicy@v1alpha1",
      "HTTPRoute@v1beta1",
    ]);
    expect(d.endpointSlices).toBe(true);
  });
});

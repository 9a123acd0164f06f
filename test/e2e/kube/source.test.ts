// The controller on a real API server (etcd + kube-apiserver 1.20, see cluster.ts) with Kubernetes
// as its only source: objects created, changed and deleted with kubectl reach an agent's config
// stream; enrolment follows the namespace label live and a pod label opts out; status conditions
// and Events on policies and routes; an invalid edit keeps the last good version; a restarted
// controller relists to the same configuration.
import type { CoreV1Event } from "@kubernetes/client-node";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ControllerClient } from "../../../agent/control/client.ts";
import { ControllerApp } from "../../../controller/app.ts";
import { MESH_CRDS, ROUTE_CRDS, crdYaml } from "../../../controller/sources/kube/crds.ts";
import { LeaderElector } from "../../../controller/sources/kube/leader.ts";
import { KubeSource } from "../../../controller/sources/kube/source.ts";
import { ControllerClient as Client } from "../../../agent/control/client.ts";
import { silent, until, waitForConfig } from "../controller/harness.ts";
import { KubeCluster } from "./cluster.ts";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const TOKEN = "token-node-a-0123456789";
const cluster = new KubeCluster();
const caDir = mkdtempSync(join(tmpdir(), "nodemesh-kube-ca-"));
let app: ControllerApp | undefined;
let agent: ControllerClient;

async function startController(): Promise<ControllerApp> {
  const source = new KubeSource({
    kubeConfig: cluster.kubeConfig(),
    log: silent,
    instance: "test",
    debounceMs: 20,
    backoffMs: { initial: 100, max: 1000 },
    rediscoverMs: 500,
  });
  const a = new ControllerApp({
    source,
    listen: { host: "127.0.0.1", port: 0 },
    monitoring: undefined,
    ca: { dir: caDir },
    trustDomain: "cluster.local",
    rootNamespace: "nodemesh-system",
    svidTtlMs: 60_000,
    nodeTokens: new Map([[TOKEN, "node-a"]]),
    serverNames: { dns: ["localhost"], ips: ["127.0.0.1"] },
    heartbeatMs: 500,
    log: silent,
    defaultMetrics: false,
  });
  await a.start();
  return a;
}

function connect(port: number): ControllerClient {
  const c = new Client({
    address: `127.0.0.1:${port}`,
    node: "node-a",
    token: TOKEN,
    trustBundle: app?.ca.trustBundle ?? [],
    log: silent,
    backoffMinMs: 50,
    backoffMaxMs: 200,
    idleTimeoutMs: 2000,
  });
  c.start();
  return c;
}

const podYaml = (name: string, labels = "app: web") => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: shop, labels: {${labels}}}
spec:
  nodeName: node-a
  serviceAccountName: web
  containers: [{name: app, image: example.invalid/web, ports: [{name: http, containerPort: 8080}]}]
`;

/** What a kubelet would report once the pod runs and passes its readiness probe. */
async function markReady(name: string, ip: string): Promise<void> {
  const status = {
    phase: "Running",
    podIP: ip,
    podIPs: [{ ip }],
    conditions: [{ type: "Ready", status: "True" }],
  };
  await cluster.kubectl([
    "-n",
    "shop",
    "patch",
    "pod",
    name,
    "--subresource=status",
    "--type=merge",
    "-p",
    JSON.stringify({ status }),
  ]);
}

const names = (list: readonly { metadata: { name: string } }[] | undefined) =>
  (list ?? []).map((x) => x.metadata.name).sort();

describe("Kubernetes source against a real API server", () => {
  beforeAll(async () => {
    await cluster.start();
    await cluster.kubectl(["apply", "-f", "-"], [...MESH_CRDS, ...ROUTE_CRDS].map(crdYaml).join("---\n"));
    await cluster.kubectl(["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"]);
    await cluster.kubectl(["create", "namespace", "shop"]);
    app = await startController();
    agent = connect(app.streamAddress?.port ?? 0);
    await waitForConfig(agent, () => true, 15_000);
  }, 600_000);

  afterAll(async () => {
    await agent?.stop();
    await app?.stop();
    await cluster.stop();
    rmSync(caDir, { recursive: true, force: true });
  });

  test("pods and services join when the namespace is labelled, and leave when the label goes", async () => {
    await cluster.kubectl(
      ["apply", "-f", "-"],
      `apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: http, appProtocol: http}]}
---
${podYaml("web-1")}`,
    );
    await markReady("web-1", "10.1.0.2");
    // Not enrolled yet: nothing of the namespace is meshed.
    await new Promise((r) => setTimeout(r, 300));
    expect(names(agent.config?.workloads)).toEqual([]);
    await cluster.kubectl(["label", "namespace", "shop", "nodemesh.io/mesh=enabled"]);
    const cfg = await waitForConfig(
      agent,
      (c) => c.workloads.length === 1 && c.services.length === 1,
      10_000,
    );
    const w = cfg.workloads[0];
    expect(w?.spec).toMatchObject({
      address: "10.1.0.2",
      node: "node-a",
      serviceAccount: "web",
      ports: { http: 8080 },
    });
    expect(w?.metadata.annotations?.["nodemesh.io/pod-uid"]).toMatch(/^[0-9a-f-]{36}$/);
    const svc = cfg.services[0];
    expect(svc?.spec.addresses[0]).toMatch(/^10\.96\./);
    expect(svc?.spec.ports).toEqual([
      { name: "http", port: 80, targetPort: "http", protocol: "TCP", appProtocol: "http" },
    ]);

    await cluster.kubectl(["label", "pod", "-n", "shop", "web-1", "nodemesh.io/mesh=disabled"]);
    await waitForConfig(agent, (c) => c.workloads.length === 0, 10_000);
    await cluster.kubectl(["label", "pod", "-n", "shop", "web-1", "nodemesh.io/mesh-"]);
    await waitForConfig(agent, (c) => c.workloads.length === 1, 10_000);
    await cluster.kubectl(["label", "namespace", "shop", "nodemesh.io/mesh-"]);
    await waitForConfig(agent, (c) => c.workloads.length === 0 && c.services.length === 0, 10_000);
    await cluster.kubectl(["label", "namespace", "shop", "nodemesh.io/mesh=enabled"]);
    await waitForConfig(agent, (c) => c.workloads.length === 1, 10_000);
  });

  test("a policy reaches the agent with an Accepted condition; an invalid edit keeps the last good one", async () => {
    const policy = (spec: string) => `apiVersion: nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web-readers, namespace: shop}
spec: ${spec}
`;
    await cluster.kubectl(
      ["apply", "-f", "-"],
      policy(
        `{selector: {matchLabels: {app: web}}, action: ALLOW, rules: [{from: [{source: {namespaces: [shop]}}]}]}`,
      ),
    );
    await waitForConfig(agent, (c) => c.authorizationPolicies.length === 1, 10_000);
    const custom = cluster.kubeConfig().makeApiClient(CustomObjectsApi);
    const get = () =>
      custom.getNamespacedCustomObject({
        group: "nodemesh.io",
        version: "v1alpha1",
        namespace: "shop",
        plural: "authorizationpolicies",
        name: "web-readers",
      }) as Promise<{
        metadata: { generation: number };
        status?: {
          conditions?: {
            type: string;
            status: string;
            reason: string;
            message: string;
            observedGeneration: number;
          }[];
        };
      }>;
    await untilAsync(async () => (await get()).status?.conditions?.[0]?.status === "True");
    expect((await get()).status?.conditions?.[0]).toMatchObject({
      type: "Accepted",
      reason: "Accepted",
      observedGeneration: 1,
    });

    // selector and targetRefs together pass the CRD schema but not the controller's rules.
    await cluster.kubectl(
      ["apply", "-f", "-"],
      policy(`{selector: {matchLabels: {app: web}}, targetRefs: [{kind: Service, name: web}], action: DENY}`),
    );
    await untilAsync(async () => (await get()).status?.conditions?.[0]?.status === "False");
    const cond = (await get()).status?.conditions?.[0];
    expect(cond).toMatchObject({ reason: "Invalid", observedGeneration: 2 });
    expect(cond?.message).toMatch(
      /spec\.targetRefs: selector and targetRefs are mutually exclusive; the previous version stays in effect/,
    );
    expect(agent.config?.authorizationPolicies[0]?.spec.action).toBe("ALLOW");
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    await untilAsync(async () =>
      (await core.listNamespacedEvent({ namespace: "shop" })).items.some(
        (e: CoreV1Event) => e.involvedObject.name === "web-readers" && e.reason === "Invalid",
      ),
    );

    await cluster.kubectl(["delete", "authorizationpolicy", "-n", "shop", "web-readers"]);
    await waitForConfig(agent, (c) => c.authorizationPolicies.length === 0, 10_000);
  });

  test("an HTTPRoute on a Service parent gets Accepted and ResolvedRefs in status.parents", async () => {
    await cluster.kubectl(
      ["apply", "-f", "-"],
      `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web-split, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
  rules: [{backendRefs: [{name: web, port: 80}, {name: web-canary, port: 80}]}]
`,
    );
    await waitForConfig(agent, (c) => c.httpRoutes.length === 1, 10_000);
    const custom = cluster.kubeConfig().makeApiClient(CustomObjectsApi);
    type Parents = {
      status?: {
        parents?: {
          controllerName: string;
          conditions: { type: string; status: string; reason: string }[];
        }[];
      };
    };
    const get = () =>
      custom.getNamespacedCustomObject({
        group: "gateway.networking.k8s.io",
        version: "v1",
        namespace: "shop",
        plural: "httproutes",
        name: "web-split",
      }) as Promise<Parents>;
    await untilAsync(async () => ((await get()).status?.parents?.length ?? 0) === 1);
    const parent = (await get()).status?.parents?.[0];
    expect(parent?.controllerName).toBe("nodemesh.io/controller");
    expect(parent?.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`)).toEqual([
      "Accepted=True/Accepted",
      "ResolvedRefs=False/BackendNotFound",
    ]);
    // The missing backend appears: the route is judged again without being touched.
    await cluster.kubectl(
      ["apply", "-f", "-"],
      "apiVersion: v1\nkind: Service\nmetadata: {name: web-canary, namespace: shop}\nspec: {ports: [{port: 80}]}\n",
    );
    await untilAsync(async () =>
      ((await get()).status?.parents?.[0]?.conditions ?? []).some(
        (c) => c.type === "ResolvedRefs" && c.status === "True",
      ),
    );
  });

  test("an API server outage keeps the configuration; the informers come back and changes flow", async () => {
    await new Promise((r) => setTimeout(r, 300)); // the previous test's last change settles
    const snapshot = () => [...(app?.hub.current?.model.entries.values() ?? [])].map((e) => e.json).sort();
    const before = snapshot();
    await cluster.restartApiServer(1500);
    expect(snapshot()).toEqual(before);
    expect(names(agent.config?.workloads)).toEqual(["web-1"]);
    await cluster.kubectl(["label", "pod", "-n", "shop", "web-1", "tier=front"]);
    await waitForConfig(agent, (c) => c.workloads[0]?.spec.labels.tier === "front", 20_000);
  });

  test("a restarted controller relists to the same configuration", async () => {
    const before = app?.hub.current?.model.entries;
    await app?.stop();
    app = await startController();
    const after = app.hub.current?.model.entries;
    expect([...(after?.keys() ?? [])].sort()).toEqual([...(before?.keys() ?? [])].sort());
    await agent.stop();
    agent = connect(app.streamAddress?.port ?? 0);
    const cfg = await waitForConfig(agent, () => true, 10_000);
    expect(names(cfg.workloads)).toEqual(["web-1"]);
    expect(names(cfg.httpRoutes)).toEqual(["web-split"]);
    // Changes keep flowing to the new controller.
    await cluster.kubectl(["delete", "pod", "-n", "shop", "web-1", "--wait=false"]);
    await waitForConfig(agent, (c) => c.workloads.length === 0, 10_000);
  });

  describe("leader election with a Lease", () => {
    const elector = (identity: string) =>
      new LeaderElector({
        kubeConfig: cluster.kubeConfig(),
        namespace: "default",
        name: "nodemesh-test",
        identity,
        log: silent,
        leaseDurationMs: 2000,
        renewDeadlineMs: 1500,
        retryPeriodMs: 100,
      });

    test("one replica leads; the standby takes over on release and when the leader dies", async () => {
      const a = elector("a");
      const b = elector("b");
      a.start();
      await until(() => a.leading, 10_000);
      b.start();
      await new Promise((r) => setTimeout(r, 500));
      expect([a.leading, b.leading]).toEqual([true, false]);
      await a.stop(); // graceful: released, so the standby does not wait for expiry
      await until(() => b.leading, 2000);
      const c = elector("c");
      c.start();
      await new Promise((r) => setTimeout(r, 300));
      expect(c.leading).toBe(false);
      await c.stop();
      await b.stop();
      // A leader that dies (SIGKILL: no release) is replaced after one lease duration.
      const child = spawn(
        process.execPath,
        [join(import.meta.dirname, "leader-child.ts"), cluster.kubeconfigPath, "d"],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      try {
        await new Promise<void>((resolve) =>
          child.stdout.on("data", (d: Buffer) => d.toString().includes("leading") && resolve()),
        );
        const e = elector("e");
        e.start();
        await new Promise((r) => setTimeout(r, 300));
        expect(e.leading).toBe(false);
        child.kill("SIGKILL");
        const killed = Date.now();
        await until(() => e.leading, 6000);
        expect(Date.now() - killed).toBeGreaterThanOrEqual(1000);
        const lease = JSON.parse(
          await cluster.kubectl(["-n", "default", "get", "lease", "nodemesh-test", "-o", "json"]),
        );
        expect(lease.spec.holderIdentity).toBe("e");
        await e.stop();
      } finally {
        child.kill("SIGKILL");
      }
    });
  });
});

async function untilAsync(pred: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("condition not met in time");
}

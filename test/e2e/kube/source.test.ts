// The controller on a real API server (etcd + kube-apiserver 1.20, see cluster.ts) with Kubernetes
// as its only source: objects created, changed and deleted with kubectl reach an agent's config
// stream; enrolment follows the namespace label live and a pod label opts out; status conditions
// and Events on policies, routes and Gateways; an invalid edit keeps the last good version (a
// Secret's too); ExternalServices as CRDs; a restarted controller relists to the same configuration.
import type { CoreV1Event } from "@kubernetes/client-node";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ControllerClient } from "../../../agent/control/client.ts";
import type { NodeAddressBook } from "../../../controller/api/node-addresses.ts";
import { ControllerApp } from "../../../controller/app.ts";
import { MESH_CRDS, ROUTE_CRDS, crdYaml } from "../../../controller/sources/kube/crds.ts";
import { LeaderElector } from "../../../controller/sources/kube/leader.ts";
import { KubeSource } from "../../../controller/sources/kube/source.ts";
import { ControllerClient as Client } from "../../../agent/control/client.ts";
import { silent, until, waitForConfig } from "../controller/harness.ts";
import { KubeCluster, tlsSecretYaml } from "./cluster.ts";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { opensslRoot } from "../../helpers/openssl-certs.ts";
import { opensslServerCert } from "../../helpers/server-certs.ts";
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

  test("an ExternalService CRD reaches the agent; a cross-field error keeps the last good version", async () => {
    const ext = (spec: string) =>
      `apiVersion: nodemesh.io/v1alpha1\nkind: ExternalService\nmetadata: {name: payments, namespace: shop}\nspec: ${spec}\n`;
    await cluster.kubectl(
      ["apply", "-f", "-"],
      ext(`{hosts: [api.payments.example], ports: [{number: 443, name: https, protocol: TLS}]}`),
    );
    const cfg = await waitForConfig(agent, (c) => (c.externalServices ?? []).length === 1, 10_000);
    expect(cfg.externalServices?.[0]?.spec).toMatchObject({
      hosts: ["api.payments.example"],
      resolution: "DNS",
    });
    const accepted = async () =>
      JSON.parse(
        await cluster.kubectl(["-n", "shop", "get", "externalservice", "payments", "-o", "json"]),
      ) as {
        status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
      };
    await untilAsync(async () => (await accepted()).status?.conditions?.[0]?.status === "True");
    // STATIC without endpoints passes the CRD schema but not the controller's rules.
    await cluster.kubectl(
      ["apply", "-f", "-"],
      ext(
        `{hosts: [api.payments.example], ports: [{number: 443, name: https, protocol: TLS}], resolution: STATIC}`,
      ),
    );
    await untilAsync(async () => (await accepted()).status?.conditions?.[0]?.status === "False");
    expect((await accepted()).status?.conditions?.[0]?.message).toMatch(
      /spec\.endpoints: resolution STATIC needs at least one endpoint; the previous version stays in effect/,
    );
    expect(agent.config?.externalServices?.[0]?.spec.resolution).toBe("DNS");
    // Fixed again: a restarted controller knows only what the API server holds (see the relist test).
    await cluster.kubectl(
      ["apply", "-f", "-"],
      ext(`{hosts: [api.payments.example], ports: [{number: 443, name: https, protocol: TLS}]}`),
    );
    await untilAsync(async () => (await accepted()).status?.conditions?.[0]?.status === "True");
  });

  test("a Gateway with a TLS Secret: the gateway node gets both, Accepted and Programmed; a bad Secret keeps the last good certificate", async () => {
    const certs = mkdtempSync(join(tmpdir(), "nodemesh-kube-gw-"));
    try {
      const ca = opensslRoot(certs, "ca", "/CN=kube gateway test CA");
      const good = opensslServerCert(certs, "good", ["shop.example.com"], ca);
      const other = opensslServerCert(certs, "other", ["other.example.com"], ca);
      // Written as a user's manifest would be (kubectl create secret tls refuses a mismatched key).
      const tls = (cert: string, key: string) =>
        cluster.kubectl(["apply", "-f", "-"], tlsSecretYaml("shop", "shop-tls", cert, key));
      await tls(good.cert, good.key);
      await cluster.kubectl(
        ["apply", "-f", "-"],
        `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ingress, namespace: shop, annotations: {nodemesh.io/gateway-nodes: node-a}}
spec:
  gatewayClassName: nodemesh
  listeners:
    - {name: https, port: 8443, protocol: HTTPS, hostname: shop.example.com, tls: {certificateRefs: [{kind: Secret, name: shop-tls}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: theirs, namespace: shop}
spec: {gatewayClassName: istio, listeners: [{name: http, port: 80, protocol: HTTP}]}
`,
      );
      const cfg = await waitForConfig(
        agent,
        (c) => (c.gateways ?? []).length === 1 && (c.tlsCertificates ?? []).length === 1,
        10_000,
      );
      expect(cfg.gateways?.[0]?.spec.listeners[0]?.tls?.certificateRefs).toEqual([
        { group: "nodemesh.io", kind: "TLSCertificate", name: "shop-tls" },
      ]);
      expect(cfg.tlsCertificates?.[0]?.spec.certificatePem).toBe(readFileSync(good.cert, "utf8"));
      type Gw = {
        status?: {
          conditions?: {
            type: string;
            status: string;
            reason: string;
            message: string;
            observedGeneration?: number;
          }[];
        };
      };
      const gw = async (name: string) =>
        JSON.parse(await cluster.kubectl(["-n", "shop", "get", "gateway", name, "-o", "json"])) as Gw;
      const conds = async () =>
        ((await gw("ingress")).status?.conditions ?? []).map(
          (c) => `${c.type}=${c.status}/${c.reason}@${c.observedGeneration}`,
        );
      await untilAsync(async () => (await conds()).includes("Programmed=True/Programmed@1"));
      expect(await conds()).toEqual(["Accepted=True/Accepted@1", "Programmed=True/Programmed@1"]);
      // Another implementation's Gateway is neither served nor written to.
      expect((await gw("theirs")).status?.conditions ?? []).toEqual([]);

      // A key that does not match: the agent keeps the good certificate, the Gateway says why.
      await tls(good.cert, other.key);
      await untilAsync(async () => (await conds()).includes("Programmed=False/Invalid@1"));
      const programmed = (await gw("ingress")).status?.conditions?.find((c) => c.type === "Programmed");
      expect(programmed?.message).toMatch(
        /listener https.*Secret shop\/shop-tls: tls\.key does not match tls\.crt/,
      );
      expect(agent.config?.tlsCertificates?.[0]?.spec.certificatePem).toBe(readFileSync(good.cert, "utf8"));
      const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
      await untilAsync(async () =>
        (await core.listNamespacedEvent({ namespace: "shop" })).items.some(
          (e: CoreV1Event) => e.involvedObject.name === "ingress" && e.involvedObject.kind === "Gateway",
        ),
      );
      // A new good certificate replaces it.
      await tls(other.cert, other.key);
      await waitForConfig(
        agent,
        (c) => c.tlsCertificates?.[0]?.spec.certificatePem === readFileSync(other.cert, "utf8"),
        10_000,
      );
      await untilAsync(async () => (await conds()).includes("Programmed=True/Programmed@1"));
    } finally {
      rmSync(certs, { recursive: true, force: true });
    }
  });

  test("Node objects' InternalIPs reach the agents as declared node addresses, ahead of agent reports", async () => {
    let book: NodeAddressBook["nodes"] = {};
    const off = agent.onNodes((m) => (book = m.nodes));
    agent.reportAddresses(() => ["10.9.0.1"], 60_000);
    const node = async (name: string, ip: string) => {
      await cluster.kubectl(["apply", "-f", "-"], `apiVersion: v1\nkind: Node\nmetadata: {name: ${name}}\n`);
      const status = {
        addresses: [
          { type: "InternalIP", address: ip },
          { type: "Hostname", address: name },
        ],
      };
      await cluster.kubectl([
        "patch",
        "node",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        JSON.stringify({ status }),
      ]);
    };
    try {
      await node("node-b", "10.0.0.42");
      await until(
        () => JSON.stringify(book) === JSON.stringify({ "node-a": ["10.9.0.1"], "node-b": ["10.0.0.42"] }),
        10_000,
      );
      // A Node declaring the address node-a's agent reports takes it; gone, the report counts again.
      await node("node-c", "10.9.0.1");
      await until(
        () => JSON.stringify(book) === JSON.stringify({ "node-b": ["10.0.0.42"], "node-c": ["10.9.0.1"] }),
        10_000,
      );
      await cluster.kubectl(["delete", "node", "node-c"]);
      await until(
        () => JSON.stringify(book) === JSON.stringify({ "node-a": ["10.9.0.1"], "node-b": ["10.0.0.42"] }),
        10_000,
      );
    } finally {
      off();
    }
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
    // The Gateway's certificate comes back with it: Secrets are listed before Gateways are mapped.
    expect(names(cfg.gateways)).toEqual(["ingress"]);
    expect(names(cfg.tlsCertificates)).toEqual(["shop-tls"]);
    expect(names(cfg.externalServices)).toEqual(["payments"]);
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

// Kubernetes as the only source, end to end: a real API server (cluster.ts) in the lab's root
// namespace, the controller process beside it as the chart runs it (`--source kube --node-auth
// tokenreview`, no bootstrap token), one agent per lab node presenting a projected-style token of
// the agent ServiceAccount bound to its own (API-only) pod. Two pods are registered in the API with
// spec.nodeName and a kubelet's status; on the lab their processes run in the pods' network
// namespaces inside cgroups laid out as a kubelet with the systemd driver and containerd lays them
// out (under a scratch parent, as a nested kubelet does). The agents find them by pod UID alone,
// enroll them, and a request to the Service's ClusterIP crosses the mesh with mTLS identities.
// Ingress: a Gateway API Gateway run by n1 with a `kubernetes.io/tls` Secret as its listener's
// certificate, and an HTTPRoute to the Service: curl from outside the nodes gets the Secret's
// certificate and the echo pod's answer, across the mesh. CNI: a pod created in the API with
// spec.nodeName and no IP; the real plugin is run as a runtime runs it (env + prevResult with a lab
// pod's address, the lab pod's netns) and returns once n2's agent has enrolled it; its certificate
// goes to n2 only (the real CSR path); once the IP is published, traffic reaches it through the mesh.
// Pods that are not meshed (an unlabelled namespace, a pod labelled disabled) pass ADD with nothing
// enrolled; a UID the controller never names is held and fails at the bound; labelling the namespace
// makes its pod one that ADD holds, and removing the label lets it through again.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { pinDirOf, uninstallPins } from "../../../demo/mesh.ts";
import { Lab } from "../../../lab/index.ts";
import type { LabNode, LabPod, LabProcess } from "../../../lab/index.ts";
import { cgroup2Mount, requireRoot } from "../../helpers/privileges.ts";
import { eventually } from "../../helpers/mesh-fixture.ts";
import { MESH_CRDS, ROUTE_CRDS, crdYaml } from "../../../controller/sources/kube/crds.ts";
import { opensslRoot } from "../../helpers/openssl-certs.ts";
import { opensslServerCert } from "../../helpers/server-certs.ts";
import { cniAdd, cniRun } from "../../helpers/cni-plugin.ts";
import { KubeCluster, tlsSecretYaml } from "./cluster.ts";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "../../..");
const CLI = join(ROOT, "bin/nodemesh.js");
const NS = "nodemesh-system";
const SA = "nodemesh-agent";
const dir = mkdtempSync(join(tmpdir(), "nodemesh-kube-mesh-"));
const scratch = join(cgroup2Mount(), `nodemesh-test-kubemesh-${process.pid}`);
let lab: Lab;
let cluster: KubeCluster;
const procs: LabProcess[] = [];
const agents: { node: LabNode; process: LabProcess }[] = [];
let vip = "";

const yaml = (docs: string[]) => docs.join("---\n");
const apiPod = (ns: string, name: string, node: string, sa: string, ports = "") => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}, labels: {app: ${name}}}
spec: {nodeName: ${node}, serviceAccountName: ${sa}, containers: [{name: c, image: example.invalid/c${ports}}]}
`;

async function markReady(name: string, ip: string): Promise<string> {
  const status = {
    phase: "Running",
    podIP: ip,
    podIPs: [{ ip }],
    conditions: [{ type: "Ready", status: "True" }],
  };
  const patch = ["-n", "shop", "patch", "pod", name, "--subresource=status", "--type=merge"];
  await cluster.kubectl([...patch, "-p", JSON.stringify({ status })]);
  const pod = JSON.parse(await cluster.kubectl(["-n", "shop", "get", "pod", name, "-o", "json"])) as {
    metadata: { uid: string };
    status: { qosClass: string };
  };
  expect(pod.status.qosClass).toBe("BestEffort");
  return pod.metadata.uid;
}

/** Runs argv in the lab pod's network namespace inside the kubelet's cgroup for pod `uid`. */
function inKubeletCgroup(pod: LabPod, uid: string, argv: string[], env?: NodeJS.ProcessEnv): LabProcess {
  const slice = `kubepods-besteffort-pod${uid.replaceAll("-", "_")}.slice`;
  const scope = join(
    scratch,
    "kubepods.slice/kubepods-besteffort.slice",
    slice,
    `cri-containerd-${pod.name}.scope`,
  );
  mkdirSync(scope, { recursive: true });
  const p = lab.spawn({ ...pod, cgroupPath: scope }, argv, { env: env ?? process.env });
  procs.push(p);
  return p;
}

async function agentToken(pod: string): Promise<string> {
  const args = ["-n", NS, "create", "token", SA, "--duration=1h", "--audience=nodemesh"];
  return (await cluster.kubectl([...args, "--bound-object-kind=Pod", `--bound-object-name=${pod}`])).trim();
}

async function ready(host: string, port: number, path: string, p: LabProcess, what: string): Promise<void> {
  await eventually(
    `${what} ready`,
    async () => {
      if (p.exitStatus !== undefined) throw new Error(`${what} exited:\n${p.output.slice(-4000)}`);
      const r = await lab.exec(host, [
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        `127.0.0.1:${port}${path}`,
      ]);
      return r.stdout === "200";
    },
    60_000,
  );
}

describe("a mesh fed only by Kubernetes", () => {
  beforeAll(async () => {
    requireRoot("the Kubernetes mesh test");
    // n2's second pod is the one the CNI test enrolls at ADD.
    lab = await Lab.up({ name: "kmesh", nodes: 2, podsPerNode: 2 });
    cluster = new KubeCluster({ netns: lab.root.netnsPath });
    await cluster.start();
    const [n1, n2] = lab.nodes as [LabNode, LabNode];
    const [client, echo] = [lab.pod(1, 1), lab.pod(2, 1)];
    await cluster.kubectl(["apply", "-f", "-"], [...MESH_CRDS, ...ROUTE_CRDS].map(crdYaml).join("---\n"));
    await cluster.kubectl(["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"]);
    for (const ns of [NS, "shop"]) await cluster.kubectl(["create", "namespace", ns]);
    await cluster.kubectl(["label", "namespace", "shop", "nodemesh.io/mesh=enabled"]);
    await cluster.kubectl(["-n", NS, "create", "serviceaccount", SA]);
    for (const sa of ["client", "echo"])
      await cluster.kubectl(["-n", "shop", "create", "serviceaccount", sa]);
    const http = ", ports: [{name: http, containerPort: 8080}]";
    await cluster.kubectl(
      ["apply", "-f", "-"],
      yaml([
        apiPod(NS, "agent-n1", n1.name, SA),
        apiPod(NS, "agent-n2", n2.name, SA),
        apiPod("shop", "client", n1.name, "client"),
        apiPod("shop", "echo", n2.name, "echo", http),
        `apiVersion: v1
kind: Service
metadata: {name: echo, namespace: shop}
spec: {selector: {app: echo}, ports: [{name: http, port: 80, targetPort: http, appProtocol: http}]}
`,
      ]),
    );
    vip = (
      await cluster.kubectl(["-n", "shop", "get", "svc", "echo", "-o", "jsonpath={.spec.clusterIP}"])
    ).trim();
    // The processes first, then Ready: a kubelet reports Ready once the containers run.
    const echoUid = (
      await cluster.kubectl(["-n", "shop", "get", "pod", "echo", "-o", "jsonpath={.metadata.uid}"])
    ).trim();
    const clientUid = (
      await cluster.kubectl(["-n", "shop", "get", "pod", "client", "-o", "jsonpath={.metadata.uid}"])
    ).trim();
    const server = inKubeletCgroup(
      echo,
      echoUid,
      [process.execPath, join(ROOT, "demo/apps/echo-server.ts")],
      {
        ...process.env,
        POD_NAME: "echo",
        PORT: "8080",
        GRPC_PORT: "off",
      },
    );
    await server.waitForOutput("listening");
    inKubeletCgroup(client, clientUid, ["sleep", "600"]);
    expect(await markReady("echo", echo.address)).toBe(echoUid);
    expect(await markReady("client", client.address)).toBe(clientUid);

    const controller = lab.spawn(
      lab.root,
      [
        process.execPath,
        CLI,
        "controller",
        ...["--source", "kube", "--kubeconfig", cluster.kubeconfigPath],
        ...["--node-auth", "tokenreview", "--agent-service-account", `${NS}/${SA}`],
        ...["--listen", `${lab.controllerAddress}:15012`, "--monitoring", "127.0.0.1:15014"],
        ...["--ca-dir", join(dir, "ca"), "--server-name", lab.controllerAddress, "--root-namespace", NS],
      ],
      { env: { ...process.env, POD_NAMESPACE: NS, POD_NAME: "controller-0" } },
    );
    procs.push(controller);
    await ready(lab.root.name, 15014, "/readyz", controller, "controller");
    for (const node of [n1, n2]) {
      const tokenFile = join(dir, `token-${node.name}`);
      writeFileSync(tokenFile, await agentToken(`agent-${node.name}`), { mode: 0o600 });
      const pinDir = pinDirOf(lab, node);
      await uninstallPins(lab, node, pinDir);
      const p = lab.spawn(node, [
        process.execPath,
        CLI,
        "agent",
        ...["--node", node.name, "--controller", `${lab.controllerAddress}:15012`],
        ...["--token-file", tokenFile, "--ca-file", join(dir, "ca/ca-cert.pem"), "--pin-dir", pinDir],
        ...["--cni-socket", join(dir, `cni-${node.name}.sock`)],
      ]);
      agents.push({ node, process: p });
    }
    for (const a of agents)
      await ready(a.node.name, 15021, "/healthz/ready", a.process, `agent ${a.node.name}`);
  }, 900_000);

  afterAll(async () => {
    for (const a of agents) a.process.kill("SIGTERM");
    await Promise.all(agents.map((a) => a.process.exited));
    for (const a of agents) await uninstallPins(lab, a.node, pinDirOf(lab, a.node)).catch(() => undefined);
    for (const p of procs) p.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
    await cluster?.stop();
    await lab?.down();
    await run("find", [scratch, "-depth", "-type", "d", "-exec", "rmdir", "{}", ";"]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  test("the agents find the pods by UID and enroll them; the ClusterIP carries traffic with mTLS identities", async () => {
    const dump = async (node: string) =>
      JSON.parse((await lab.exec(node, ["curl", "-s", "127.0.0.1:15000/config_dump"])).stdout) as {
        workloads: { uid: string; identity: string; mtls: string }[];
      };
    await eventually("both pods enrolled", async () => {
      const [d1, d2] = [await dump("n1"), await dump("n2")];
      return (
        d1.workloads.some((w) => w.uid === "shop/client") && d2.workloads.some((w) => w.uid === "shop/echo")
      );
    });
    expect((await dump("n2")).workloads).toEqual([
      expect.objectContaining({ uid: "shop/echo", identity: "spiffe://cluster.local/ns/shop/sa/echo" }),
    ]);
    const r = await lab.exec(lab.pod(1, 1), ["curl", "-sS", "--max-time", "5", `http://${vip}/hello`]);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toMatchObject({ pod: "echo" });
    // The destination agent counts the request from the client workload over mutual TLS.
    const counted =
      /nodemesh_requests_total\{reporter="destination",source_workload_namespace="shop",source_workload="client",[^}]*destination_workload="echo",[^}]*response_code="200",[^}]*connection_security_policy="mutual_tls"\} 1/;
    let metrics = "";
    await eventually("the destination agent's request metric", async () => {
      metrics = (await lab.exec("n2", ["curl", "-s", "127.0.0.1:15020/metrics"])).stdout;
      return counted.test(metrics);
    });
  });

  test("a Gateway on n1 serves HTTPS with the Secret's certificate and routes across the mesh to the echo pod", async () => {
    const ca = opensslRoot(dir, "ingress-ca", "/CN=kube ingress test CA");
    const cert = opensslServerCert(dir, "shop", ["shop.example.com"], ca);
    await cluster.kubectl(
      ["apply", "-f", "-"],
      yaml([
        tlsSecretYaml("shop", "shop-tls", cert.cert, cert.key),
        `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ingress, namespace: shop, annotations: {nodemesh.io/gateway-nodes: n1}}
spec:
  gatewayClassName: nodemesh
  listeners:
    - {name: https, port: 8443, protocol: HTTPS, hostname: shop.example.com, tls: {certificateRefs: [{kind: Secret, name: shop-tls}]}}
`,
        `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop-ingress, namespace: shop}
spec:
  parentRefs: [{name: ingress, sectionName: https}]
  hostnames: [shop.example.com]
  rules: [{backendRefs: [{name: echo, port: 80}]}]
`,
      ]),
    );
    await eventually("the Gateway Accepted and Programmed", async () => {
      const gw = JSON.parse(
        await cluster.kubectl(["-n", "shop", "get", "gateway", "ingress", "-o", "json"]),
      ) as {
        status?: { conditions?: { type: string; status: string }[] };
      };
      const on = (t: string) => gw.status?.conditions?.some((c) => c.type === t && c.status === "True");
      return on("Accepted") === true && on("Programmed") === true;
    });
    // From the lab's root namespace, outside every node, as an external client.
    const n1 = lab.nodes[0] as LabNode;
    const curl = [
      ...["curl", "-sS", "--max-time", "5", "--cacert", ca.cert],
      ...["--resolve", `shop.example.com:8443:${n1.address}`, "https://shop.example.com:8443/hello"],
    ];
    let body = "";
    await eventually("the ingress answers over TLS", async () => {
      const r = await lab.exec(lab.root.name, curl);
      body = r.stdout;
      return r.stdout.includes('"pod"');
    });
    expect(JSON.parse(body)).toMatchObject({ pod: "echo" });
    // The gateway's agent serves the Secret's certificate, which it got inline, and never shows the key.
    const dump = (await lab.exec("n1", ["curl", "-s", "127.0.0.1:15000/config_dump"])).stdout;
    expect(dump).toContain("inline PEM from the controller");
    expect(dump).not.toContain("PRIVATE KEY");
  });

  test("a Node object's InternalIP reaches the lab's agents in their node book", async () => {
    // n3 has no agent: only its Node object declares it.
    await cluster.kubectl(["apply", "-f", "-"], "apiVersion: v1\nkind: Node\nmetadata: {name: n3}\n");
    const status = { addresses: [{ type: "InternalIP", address: "10.0.0.3" }] };
    await cluster.kubectl([
      "patch",
      "node",
      "n3",
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({ status }),
    ]);
    for (const node of ["n1", "n2"])
      await eventually(`${node}'s node book has n3`, async () => {
        const d = JSON.parse(
          (await lab.exec(node, ["curl", "-s", "127.0.0.1:15000/config_dump"])).stdout,
        ) as {
          nodeAddresses?: Record<string, string[]>;
        };
        return d.nodeAddresses?.n3?.includes("10.0.0.3") === true && (d.nodeAddresses.n1?.length ?? 0) > 0;
      });
  });

  test("CNI ADD for a pod in the API without an IP blocks until n2 enrolls it; its certificate goes to n2 only; then it serves", async () => {
    const late = lab.pod(2, 2);
    const LATE = "spiffe://cluster.local/ns/shop/sa/late";
    await cluster.kubectl(["-n", "shop", "create", "serviceaccount", "late"]);
    await cluster.kubectl(
      ["apply", "-f", "-"],
      yaml([
        apiPod("shop", "late", "n2", "late", ", ports: [{name: http, containerPort: 8080}]"),
        `apiVersion: v1
kind: Service
metadata: {name: late, namespace: shop}
spec: {selector: {app: late}, ports: [{name: http, port: 80, targetPort: http, appProtocol: http}]}
`,
      ]),
    );
    const get = (path: string) => cluster.kubectl(["-n", "shop", "get", ...path.split(" ")]);
    const uid = (await get("pod late -o jsonpath={.metadata.uid}")).trim();
    const lateVip = (await get("svc late -o jsonpath={.spec.clusterIP}")).trim();

    // The runtime's ADD: the previous plugin gave the sandbox the lab pod's address.
    const out = await cniAdd({
      socket: join(dir, "cni-n2.sock"),
      netns: late.netnsPath,
      address: late.address,
      pod: { uid, namespace: "shop", name: "late" },
      enrollTimeoutMs: 30_000,
    });
    expect(out.code, `${out.stdout}\n${out.stderr}`).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ ips: [{ address: `${late.address}/24` }] });
    // The API still has no IP for it (a kubelet publishes it only after ADD returns).
    expect((await get("pod late -o jsonpath={.status.podIP}")).trim()).toBe("");
    type Dump = {
      workloads: { uid: string; address: string; identity: string }[];
      certificates: { spiffeId: string; notAfter?: string }[];
    };
    const dump = async (node: string) =>
      JSON.parse((await lab.exec(node, ["curl", "-s", "127.0.0.1:15000/config_dump"])).stdout) as Dump;
    expect((await dump("n2")).workloads).toContainEqual(
      expect.objectContaining({ uid: "shop/late", address: late.address, identity: LATE }),
    );
    await eventually("n2 holds the pending pod's certificate", async () =>
      (await dump("n2")).certificates.some((c) => c.spiffeId === LATE && c.notAfter !== undefined),
    );
    expect((await dump("n1")).workloads.some((w) => w.uid === "shop/late")).toBe(false);
    // Over the real CSR path with each agent's own token: n1 is refused the identity, n2 gets it.
    const csr = async (node: string) => {
      const p = lab.spawn(lab.root, [
        ...[process.execPath, join(import.meta.dirname, "csr-child.ts"), `${lab.controllerAddress}:15012`],
        ...[node, join(dir, `token-${node}`), join(dir, "ca/ca-cert.pem"), LATE],
      ]);
      procs.push(p);
      await p.exited;
      return JSON.parse(p.output.trim().split("\n").at(-1) ?? "null") as unknown;
    };
    expect(await csr("n1")).toEqual({ status: 403, reason: "identity_not_on_node" });
    expect(await csr("n2")).toEqual({ ok: true });

    // The container starts, the kubelet publishes the IP and Ready: the ordinary entry takes over in place.
    const server = inKubeletCgroup(late, uid, [process.execPath, join(ROOT, "demo/apps/echo-server.ts")], {
      ...process.env,
      POD_NAME: "late",
      PORT: "8080",
      GRPC_PORT: "off",
    });
    await server.waitForOutput("listening");
    await markReady("late", late.address);
    let body = "";
    await eventually("the late pod answers through the mesh", async () => {
      const r = await lab.exec(lab.pod(1, 1), ["curl", "-sS", "--max-time", "5", `http://${lateVip}/hello`]);
      body = r.stdout;
      return r.stdout.includes('"pod"');
    });
    expect(JSON.parse(body)).toMatchObject({ pod: "late" });
    const n2 = agents.find((a) => a.node.name === "n2");
    // The published entry replaced the hinted one in place (logged once n2 applied it; logs are batched).
    await n2?.process.waitForOutput(/replaces the one enrolled at CNI ADD \(no re-enrolment\)/, 30_000);
    const enrolled = (n2?.process.output ?? "")
      .split("\n")
      .filter((l) => l.includes('"workload":"shop/late"') && l.includes('"msg":"workload enrolled"'));
    expect(enrolled).toHaveLength(1);
    const counted =
      /nodemesh_requests_total\{reporter="destination",source_workload_namespace="shop",source_workload="client",[^}]*destination_workload="late",[^}]*response_code="200",[^}]*connection_security_policy="mutual_tls"\} [1-9]/;
    await eventually("n2 counts the request to the late pod over mutual TLS", async () =>
      counted.test((await lab.exec("n2", ["curl", "-s", "127.0.0.1:15020/metrics"])).stdout),
    );
  });

  test("CNI ADD: pods that are not meshed pass with nothing enrolled; unknown ones are held and fail closed; labels move pods live", async () => {
    await cluster.kubectl(["create", "namespace", "plain"]);
    await cluster.kubectl(["-n", "plain", "create", "serviceaccount", "bare"]);
    await cluster.kubectl(["-n", "shop", "create", "serviceaccount", "optout"]);
    const optout = apiPod("shop", "optout", "n2", "optout").replace(
      "labels: {app: optout}",
      "labels: {app: optout, nodemesh.io/mesh: disabled}",
    );
    await cluster.kubectl(["apply", "-f", "-"], yaml([apiPod("plain", "bare", "n2", "bare"), optout]));
    const uidOf = async (ns: string, name: string) =>
      (await cluster.kubectl(["-n", ns, "get", "pod", name, "-o", "jsonpath={.metadata.uid}"])).trim();
    const sandbox = lab.pod(2, 2);
    const cni = (ns: string, name: string, uid: string, enrollTimeoutMs: number, address = "10.99.0.5") => ({
      socket: join(dir, "cni-n2.sock"),
      netns: sandbox.netnsPath,
      address,
      pod: { uid, namespace: ns, name },
      enrollTimeoutMs,
      containerId: `c-${name}`,
    });
    const bare = cni("plain", "bare", await uidOf("plain", "bare"), 60_000);
    const workloadsOf = async (node: string) =>
      (
        JSON.parse((await lab.exec(node, ["curl", "-s", "127.0.0.1:15000/config_dump"])).stdout) as {
          workloads: { uid: string }[];
        }
      ).workloads.map((w) => w.uid);

    // A minute's bound: ADD returns well before it only because the controller names them not meshed
    // (an unknown pod would be refused at the bound, a meshed one enrolled).
    for (const o of [bare, cni("shop", "optout", await uidOf("shop", "optout"), 60_000)]) {
      const out = await cniAdd(o);
      expect(out.code, `${out.stdout}\n${out.stderr}`).toBe(0);
      expect(JSON.parse(out.stdout)).toMatchObject({ ips: [{ address: `${o.address}/24` }] });
      expect((await cniRun("CHECK", o)).code).toBe(0);
    }
    const enrolled = await workloadsOf("n2");
    expect(enrolled).not.toContain("plain/bare");
    expect(enrolled).not.toContain("shop/optout");
    // DEL forgets the sandbox's hint, as a kubelet tearing the sandbox down does.
    expect((await cniRun("DEL", bare)).code).toBe(0);

    // A UID the controller never names (no such pod): held, then refused at the bound with the reason.
    const ghost = await cniAdd(cni("plain", "ghost", "00000000-dead-beef-0000-000000000000", 1_500));
    expect(ghost.code).not.toBe(0);
    expect(JSON.parse(ghost.stdout)).toMatchObject({
      code: 100,
      msg: expect.stringMatching(
        /pod plain\/ghost \(uid 00000000-dead.*\) is not enrolled in the mesh: not enrolled after 1500 ms: the controller's config does not name this pod on node n2 yet/,
      ),
    });

    // Labelled, the namespace's pod is meshed: n2's agent holds it (CHECK no longer passes), and an
    // ADD it cannot enroll (the runtime gave it no IPv4 address) fails closed at the bound.
    await cluster.kubectl(["label", "namespace", "plain", "nodemesh.io/mesh=enabled"]);
    const v6 = { ...bare, address: "fd00::5", enrollTimeoutMs: 1_500 };
    await eventually(
      "n2's agent sees plain/bare as meshed",
      async () => (await cniRun("CHECK", v6)).code !== 0,
    );
    const held = await cniAdd(v6);
    expect(held.code).not.toBe(0);
    expect(JSON.parse(held.stdout)).toMatchObject({
      code: 7,
      msg: expect.stringMatching(/pod plain\/bare .* cannot be enrolled in the mesh: .*no IPv4 address/),
      details: expect.stringMatching(/not enrolled after 1500 ms/),
    });
    expect(await workloadsOf("n2")).not.toContain("plain/bare");

    // The label removed: not meshed again, so the same ADD passes.
    await cluster.kubectl(["label", "namespace", "plain", "nodemesh.io/mesh-"]);
    await eventually(
      "n2's agent sees plain/bare as not meshed",
      async () => (await cniRun("CHECK", v6)).code === 0,
    );
    const again = await cniAdd({ ...v6, enrollTimeoutMs: 60_000 });
    expect(again.code, again.stdout).toBe(0);
    expect((await cniRun("DEL", v6)).code).toBe(0);
  });
});

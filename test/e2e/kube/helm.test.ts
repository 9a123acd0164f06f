// The Helm chart with the real helm: `helm lint --strict` and `helm template` over the ci/ values
// files, the values schema's refusals (each names the field), and `helm template | kubectl apply
// --dry-run=server` accepted by the real API server (cluster.ts), CRDs included.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { KubeCluster } from "./cluster.ts";

const CHART = join(import.meta.dirname, "../../../charts/nodemesh");
const VALUES = readdirSync(join(CHART, "ci"))
  .filter((f) => f.endsWith(".yaml"))
  .sort();
const cluster = new KubeCluster();

type Doc = { kind: string; metadata: { name: string }; spec?: Record<string, unknown> };

async function template(args: string[], namespace = "nodemesh-system"): Promise<Doc[]> {
  const out = await cluster.helm(["template", "nm", CHART, "--namespace", namespace, ...args]);
  return parseAllDocuments(out)
    .map((d) => d.toJS() as Doc | null)
    .filter((d): d is Doc => d !== null);
}

/** NODE_OPTIONS of the agent container (DaemonSet) and of the controller (Deployment). */
function nodeOptionsOf(docs: Doc[]): { agent: string | undefined; controller: string | undefined } {
  type Pod = {
    spec: {
      template: { spec: { containers: { name: string; env?: { name: string; value?: string }[] }[] } };
    };
  };
  const of = (kind: string, container: string) =>
    (docs.find((d) => d.kind === kind) as unknown as Pod | undefined)?.spec.template.spec.containers
      .find((c) => c.name === container)
      ?.env?.find((e) => e.name === "NODE_OPTIONS")?.value;
  return { agent: of("DaemonSet", "agent"), controller: of("Deployment", "controller") };
}

describe("Helm chart", () => {
  beforeAll(async () => {
    await cluster.start();
    await cluster.kubectl(["create", "namespace", "nodemesh-system"]);
  }, 600_000);
  afterAll(() => cluster.stop());

  test.each(VALUES)("helm lint --strict with ci/%s", async (file) => {
    const out = await cluster.helm(["lint", "--strict", CHART, "-f", join(CHART, "ci", file)]);
    expect(out).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  test("the default install: DaemonSet for the hand-over upgrade, 2 controllers with a PDB, no privileged container", async () => {
    const docs = await template([]);
    const kinds = docs.map((d) => d.kind).sort();
    expect(kinds).toEqual(
      [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "DaemonSet",
        "Deployment",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "Secret",
        "Service",
        "ServiceAccount",
        "ServiceAccount",
      ].sort(),
    );
    const ds = docs.find((d) => d.kind === "DaemonSet") as unknown as {
      spec: {
        updateStrategy: unknown;
        template: {
          spec: {
            hostNetwork: boolean;
            priorityClassName: string;
            containers: {
              name: string;
              securityContext: { privileged: boolean; capabilities: { add: string[] } };
              readinessProbe: { httpGet: { port: number } };
            }[];
          };
        };
      };
    };
    expect(ds.spec.updateStrategy).toEqual({
      type: "RollingUpdate",
      rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
    });
    const pod = ds.spec.template.spec;
    expect(pod).toMatchObject({ hostNetwork: true, priorityClassName: "system-node-critical" });
    const agent = pod.containers.find((c) => c.name === "agent");
    expect(pod.containers.every((c) => !c.securityContext.privileged)).toBe(true);
    expect(agent?.readinessProbe.httpGet.port).toBe(15021);
    const deploy = docs.find((d) => d.kind === "Deployment");
    expect(deploy?.spec?.replicas).toBe(2);
    // Both run with a 4 MiB young generation (docs/benchmarks.md "Young generation"), overridable.
    expect(nodeOptionsOf(docs)).toEqual({
      agent: "--max-semi-space-size=4",
      controller: "--max-semi-space-size=4",
    });
    const tuned = await template([
      "--set",
      "agent.nodeOptions=--max-semi-space-size=8",
      "--set",
      "controller.nodeOptions=",
    ]);
    expect(nodeOptionsOf(tuned)).toEqual({ agent: "--max-semi-space-size=8", controller: undefined });
  });

  test("agents authenticate by TokenReview: controller flags, projected token file on the agent", async () => {
    const docs = await template([]);
    type Pod = {
      template: {
        spec: {
          containers: { name: string; args: string[] }[];
          volumes: { name: string; projected?: { sources: { serviceAccountToken?: object }[] } }[];
        };
      };
    };
    const spec = (kind: string) => docs.find((d) => d.kind === kind)?.spec as unknown as Pod;
    expect(spec("Deployment").template.spec.containers[0]?.args).toEqual(
      expect.arrayContaining([
        "--source=kube",
        "--node-auth=tokenreview",
        "--agent-service-account=nodemesh-system/nm-nodemesh-agent",
      ]),
    );
    const agent = spec("DaemonSet").template.spec;
    expect(agent.containers.find((c) => c.name === "agent")?.args).toContain(
      "--token-file=/var/run/secrets/nodemesh/token",
    );
    const token = agent.volumes.find((v) => v.name === "token");
    expect(token?.projected?.sources[0]?.serviceAccountToken).toMatchObject({
      audience: "nodemesh",
      path: "token",
    });
    // The ServiceAccount the controller accepts is the one the DaemonSet runs as.
    const sa = docs.filter((d) => d.kind === "ServiceAccount").map((d) => d.metadata.name);
    expect(sa).toContain("nm-nodemesh-agent");
  });

  test("cni.enabled (the default): an installer init container and sidecar with only the CNI host dirs, no capability; none when off", async () => {
    type Container = {
      name: string;
      args: string[];
      env?: { name: string; value?: string }[];
      securityContext: {
        privileged: boolean;
        runAsUser: number;
        capabilities: { drop: string[]; add?: string[] };
      };
      volumeMounts: { name: string; mountPath: string }[];
    };
    type PodSpec = {
      initContainers?: Container[];
      containers: Container[];
      volumes: { name: string; hostPath?: { path: string } }[];
    };
    const podOf = (docs: Doc[]) =>
      (docs.find((d) => d.kind === "DaemonSet")?.spec as unknown as { template: { spec: PodSpec } }).template
        .spec;
    const off = podOf(await template(["-f", join(CHART, "ci", "no-cni-values.yaml")]));
    expect(off.initContainers).toBeUndefined();
    expect(off.containers.map((c) => c.name)).toEqual(["agent"]);
    expect(off.volumes.some((v) => v.hostPath?.path === "/etc/cni/net.d")).toBe(false);
    expect(off.containers[0]?.env?.some((e) => e.name === "NODEMESH_CNI_SOCKET")).toBe(false);

    // The default: on, with the release namespace (where the agents themselves run) excluded.
    const byDefault = podOf(await template([]));
    const defaults = ["--enroll-timeout-ms=10000", "--exclude-namespaces=kube-system,nodemesh-system"];
    expect(byDefault.initContainers?.map((c) => [c.name, c.args])).toEqual([
      ["install-cni", ["cni-install", "--once", ...defaults]],
    ]);
    expect(byDefault.containers.map((c) => c.name)).toEqual(["cni-install", "agent"]);
    const ds = (await template([])).find((d) => d.kind === "DaemonSet")?.spec as unknown as {
      template: { metadata: { annotations: Record<string, string> } };
    };
    expect(ds.template.metadata.annotations["kubectl.kubernetes.io/default-container"]).toBe("agent");
    const elsewhere = podOf(await template([], "mesh"));
    expect(elsewhere.initContainers?.[0]?.args).toContain(
      "--exclude-namespaces=kube-system,nodemesh-system,mesh",
    );

    const on = podOf(await template(["-f", join(CHART, "ci", "cni-values.yaml")]));
    const flags = [
      "--enroll-timeout-ms=15000",
      "--exclude-namespaces=kube-system,monitoring,nodemesh-system",
    ];
    expect(on.initContainers?.map((c) => [c.name, c.args])).toEqual([
      ["install-cni", ["cni-install", "--once", ...flags]],
    ]);
    const [sidecar, agent] = on.containers as [Container, Container];
    expect(sidecar.name).toBe("cni-install");
    expect(sidecar.args).toEqual(["cni-install", "--watch", ...flags, "--interval-ms=5000"]);
    for (const c of [...(on.initContainers ?? []), sidecar]) {
      expect(c.securityContext).toMatchObject({
        privileged: false,
        runAsUser: 0,
        capabilities: { drop: ["ALL"] },
      });
      expect(c.securityContext.capabilities.add).toBeUndefined();
      expect(c.volumeMounts).toEqual([
        { name: "cni-bin", mountPath: "/host/opt/cni/bin" },
        { name: "cni-conf", mountPath: "/host/etc/cni/net.d" },
      ]);
    }
    expect(agent.env).toContainEqual({ name: "NODEMESH_CNI_SOCKET", value: "/var/run/nodemesh/cni.sock" });
    expect(on.volumes.filter((v) => v.name.startsWith("cni-"))).toEqual([
      { name: "cni-bin", hostPath: { path: "/opt/cni/bin", type: "DirectoryOrCreate" } },
      { name: "cni-conf", hostPath: { path: "/etc/cni/net.d", type: "DirectoryOrCreate" } },
    ]);
  });

  test("Gateway TLS Secrets: read-only, cluster-wide by default, else one Role per controller.tlsSecretNamespaces", async () => {
    type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };
    type RbacDoc = Doc & { rules?: Rule[]; metadata: { name: string; namespace?: string } };
    const secretRules = (docs: RbacDoc[], kind: string) =>
      docs
        .filter((d) => d.kind === kind)
        .flatMap((d) => (d.rules ?? []).map((r) => ({ ns: d.metadata.namespace, ...r })))
        .filter((r) => r.resources.includes("secrets"));
    const all = (await template([])) as RbacDoc[];
    expect(secretRules(all, "ClusterRole")).toEqual([
      { ns: undefined, apiGroups: [""], resources: ["secrets"], verbs: ["get", "list", "watch"] },
    ]);
    expect(secretRules(all, "Role")).toEqual([]);
    const some = (await template(["-f", join(CHART, "ci", "full-values.yaml")])) as RbacDoc[];
    expect(secretRules(some, "ClusterRole")).toEqual([]);
    expect(secretRules(some, "Role")).toEqual(
      ["edge", "shop"].map((ns) => ({
        ns,
        apiGroups: [""],
        resources: ["secrets"],
        verbs: ["get", "list", "watch"],
      })),
    );
    const bindings = some.filter((d) => d.kind === "RoleBinding" && d.metadata.name.endsWith("-tls-secrets"));
    expect(bindings.map((b) => b.metadata.namespace)).toEqual(["edge", "shop"]);
    const deploy = some.find((d) => d.kind === "Deployment")?.spec as unknown as {
      template: { spec: { containers: { env: { name: string; value?: string }[] }[] } };
    };
    expect(deploy.template.spec.containers[0]?.env).toContainEqual({
      name: "NODEMESH_TLS_SECRET_NAMESPACES",
      value: "edge,shop",
    });
    // Gateways and their status, ExternalServices and theirs.
    const cluster = all.find((d) => d.kind === "ClusterRole") as RbacDoc;
    const verbsOf = (res: string) => cluster.rules?.find((r) => r.resources.includes(res))?.verbs;
    expect(verbsOf("gateways")).toEqual(["get", "list", "watch"]);
    expect(verbsOf("gateways/status")).toEqual(["update", "patch"]);
    expect(verbsOf("externalservices")).toEqual(["get", "list", "watch"]);
    expect(verbsOf("externalservices/status")).toEqual(["update", "patch"]);
  });

  test.each([
    [["--set", "controller.tlsSecretNamespaces[0]=Bad_NS"], /controller\/tlsSecretNamespaces/],
    [["--set", "agent.tokenExpirationSeconds=5"], /agent\/tokenExpirationSeconds.*minimum/],
    [["--set", "ca.existingSecret=mine"], /ca\/existingRootConfigMap/],
    [["--set", "controler.replicas=2"], /controler/],
    [["--set", "image.pullPolicy=Sometimes"], /image\/pullPolicy/],
    [["--set", "agent.seccompProfile=Off"], /agent\/seccompProfile/],
    [["--set", "cni.binDir=opt/cni/bin"], /cni\/binDir/],
    [["--set", "cni.enabled=yes"], /cni\/enabled/],
  ])("the schema refuses %j, naming the field", async (args, message) => {
    await expect(template(args)).rejects.toThrow(message);
  });

  test("helm template | kubectl apply --dry-run=server is accepted by the API server (1.20)", async () => {
    for (const file of VALUES.filter((f) => !f.startsWith("full"))) {
      const out = await cluster.helm([
        "template",
        "nm",
        CHART,
        "-n",
        "nodemesh-system",
        "--include-crds",
        "--kube-version",
        "1.20.2",
        "-f",
        join(CHART, "ci", file),
      ]);
      // CRDs first: the custom resources of the dry run are validated against them.
      const applied = await cluster.kubectl(
        ["apply", "--dry-run=server", "-n", "nodemesh-system", "-f", "-"],
        out,
      );
      expect(applied, file).toMatch(/daemonset\.apps\/nm-nodemesh-agent created \(server dry run\)/);
      expect(applied, file).toMatch(
        /customresourcedefinition\.apiextensions\.k8s\.io\/authorizationpolicies\.nodemesh\.io created/,
      );
    }
  });
});

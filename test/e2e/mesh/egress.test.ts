// Controlled egress on the lab, with the real eBPF capture: the mesh runs with the outbound traffic
// policy REGISTRY_ONLY, and the lab's `outside` host (10.0.0.250, in no mesh) stands in for the internet.
// An enrolled pod's call to it is refused while it is unknown (access log + metric), and allowed once an
// ExternalService declares it, through the egress gateway pod on node 2; a packet capture on the outside
// host and on node 1 shows the call leaves through the egress node only; the gateway's
// AuthorizationPolicy allows one source identity and denies another.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { Lab, type LabProcess } from "../../../lab/index.ts";
import { meshConfigForLab, type LabMeshSpec } from "../../../demo/mesh-config.ts";
import { startMesh, type Mesh } from "../../../demo/mesh.ts";
import { APPS, eventually } from "../../helpers/mesh-fixture.ts";
import { requireRoot } from "../../helpers/privileges.ts";

const API = "nodemesh.io/v1alpha1";
const VIP = "10.96.0.10";
const OUTSIDE_URL = "http://10.0.0.250:8080/get";
const HOST = "web.outside.test";

const SPEC: LabMeshSpec = {
  pods: {
    n1p1: { app: "client", serviceAccount: "client" },
    n1p2: { app: "other", serviceAccount: "other" },
    n2p1: { app: "echo" },
    n2p2: { app: "egress-gateway", serviceAccount: "egress-gateway" },
  },
  services: [{ name: "echo", vip: VIP, port: 80, targetPort: 8080, app: "echo" }],
};

const EXTERNAL = {
  apiVersion: API,
  kind: "ExternalService",
  metadata: { name: "outside-web", namespace: "default" },
  spec: {
    hosts: [HOST],
    ports: [{ number: 8080, name: "http", protocol: "HTTP" }],
    resolution: "STATIC",
    endpoints: [{ address: "10.0.0.250" }],
    egressGateway: { workload: "egress-gateway-n2p2" },
  },
};
const GATEWAY_POLICY = {
  apiVersion: API,
  kind: "AuthorizationPolicy",
  metadata: { name: "egress-only-client", namespace: "default" },
  spec: {
    selector: { matchLabels: { app: "egress-gateway" } },
    action: "ALLOW",
    rules: [{ from: [{ source: { principals: ["cluster.local/ns/default/sa/client"] } }] }],
  },
};

describe("egress: REGISTRY_ONLY, ExternalService, egress gateway", () => {
  let lab: Lab;
  let mesh: Mesh;
  const procs: LabProcess[] = [];

  const curl = async (pod: string, url: string, args: string[] = []) => {
    const r = await lab.exec(pod, ["curl", "-sS", "--max-time", "5", ...args, url]);
    return { code: r.code ?? -1, body: r.stdout, stderr: r.stderr };
  };
  const agentLog = (node: string) =>
    mesh
      .agent(node)
      .process.output.split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  beforeAll(async () => {
    requireRoot("the egress end-to-end test");
    lab = await Lab.up({ name: "egr", nodes: 2, podsPerNode: 2, outside: true });
    // The outside host answers the pods' addresses through their nodes (no NAT in the lab, as with
    // routable pod addresses).
    for (const n of lab.nodes)
      await lab.exec("outside", ["ip", "route", "add", n.podCidr, "via", n.address], { check: true });
    const outside = lab.spawn("outside", [process.execPath, join(APPS, "echo-server.ts")], {
      env: { ...process.env, POD_NAME: "outside", GRPC_PORT: "off" },
    });
    procs.push(outside);
    await outside.waitForOutput("listening");
    const before = process.env.NODEMESH_OUTBOUND_TRAFFIC_POLICY;
    process.env.NODEMESH_OUTBOUND_TRAFFIC_POLICY = "REGISTRY_ONLY"; // the controller's flag, by environment
    try {
      mesh = await startMesh({ lab, yaml: meshConfigForLab(lab, SPEC) });
    } finally {
      if (before === undefined) delete process.env.NODEMESH_OUTBOUND_TRAFFIC_POLICY;
      else process.env.NODEMESH_OUTBOUND_TRAFFIC_POLICY = before;
    }
    const echo = lab.spawn("n2p1", [process.execPath, join(APPS, "echo-server.ts")], {
      env: { ...process.env, POD_NAME: "n2p1", GRPC_PORT: "off" },
    });
    procs.push(echo);
    await echo.waitForOutput("listening");
  }, 120_000);

  afterAll(async () => {
    for (const p of procs) p.kill("SIGTERM");
    await mesh?.stop();
    await lab?.down();
  }, 60_000);

  it("refuses an unknown outside destination with a reason and a metric, and keeps the mesh working", async () => {
    expect((await curl("root", OUTSIDE_URL)).code).toBe(0); // reachable for a host in no mesh
    const refused = await curl("n1p1", OUTSIDE_URL, ["-H", `host: ${HOST}`]);
    expect(refused.code).not.toBe(0);
    await eventually("the refusal in node 1's access log", () =>
      agentLog("n1").some(
        (l) =>
          l["response_flags"] === "RegistryOnlyDenied" &&
          l["dst.service"] === "BlackHoleCluster" &&
          l["dst.addr"] === "10.0.0.250:8080" &&
          /REGISTRY_ONLY/.test(String(l["error"])),
      ),
    );
    const metrics = await mesh.agentHttp("n1", 15020, "/metrics");
    expect(metrics).toMatch(
      /nodemesh_tcp_connections_failed_total\{[^}]*source_workload="client-n1p1"[^}]*destination_service="BlackHoleCluster"[^}]*response_flags="RegistryOnlyDenied"\} [1-9]/,
    );
    const meshed = await curl("n1p1", `http://${VIP}/`);
    expect(meshed.code, meshed.stderr).toBe(0);
    expect(meshed.body).toContain("n2p1");
  });

  it("allows it once declared, through the egress node only, for the identity the gateway's policy allows", async () => {
    const gatewayPod = lab.pods.find((p) => p.name === "n2p2")!;
    const syns = lab.spawn("outside", [
      "tshark",
      "-l",
      "-n",
      "-i",
      "eth0",
      "-f",
      "tcp dst port 8080 and tcp[13] & 2 != 0",
      "-T",
      "fields",
      "-e",
      "ip.src",
    ]);
    const node1 = lab.spawn("n1", [
      "tshark",
      "-l",
      "-n",
      "-i",
      "eth0",
      "-f",
      "host 10.0.0.250",
      "-T",
      "fields",
      "-e",
      "ip.src",
    ]);
    procs.push(syns, node1);
    await Promise.all([syns.waitForOutput("Capturing on"), node1.waitForOutput("Capturing on")]);
    mesh.writeConfig(meshConfigForLab(lab, { ...SPEC, extra: [EXTERNAL, GATEWAY_POLICY] }));
    let ok: Awaited<ReturnType<typeof curl>> | undefined;
    await eventually(
      "the external call to succeed",
      async () => {
        ok = await curl("n1p1", OUTSIDE_URL, ["-H", `host: ${HOST}`]);
        return ok.code === 0 && ok.body.includes('"outside"');
      },
      20_000,
    );
    expect(JSON.parse(ok!.body)).toMatchObject({ headers: { host: HOST } });
    const denied = await curl("n1p2", OUTSIDE_URL, [
      "-H",
      `host: ${HOST}`,
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
    ]);
    expect(denied.body).toBe("403");
    await eventually("the gateway's access lines", () => {
      const lines = agentLog("n2");
      return (
        lines.some((l) => l["dst.service"] === HOST && String(l["src.identity"]).endsWith("/sa/client")) &&
        lines.some(
          (l) =>
            l["response_flags"] === "AuthorizationPolicyDenied" &&
            String(l["src.identity"]).endsWith("/sa/other"),
        )
      );
    });
    await new Promise((r) => setTimeout(r, 500)); // let the captures print the last packets
    syns.kill("SIGINT");
    node1.kill("SIGINT");
    await Promise.all([syns.exited, node1.exited]);
    const sources = syns.output.split("\n").filter((l) => /^\d+\.\d+\.\d+\.\d+$/.test(l.trim()));
    expect(sources.length).toBeGreaterThan(0);
    expect(new Set(sources.map((s) => s.trim()))).toEqual(new Set([gatewayPod.address]));
    expect(node1.output.split("\n").filter((l) => /^\d+\.\d+\.\d+\.\d+$/.test(l.trim()))).toEqual([]);
  }, 60_000);

  it("refuses again when the ExternalService is removed (live, REGISTRY_ONLY)", async () => {
    mesh.writeConfig(meshConfigForLab(lab, { ...SPEC, extra: [GATEWAY_POLICY] }));
    await eventually(
      "the call to be refused again",
      async () => {
        const r = await curl("n1p1", OUTSIDE_URL, ["-H", `host: ${HOST}`]);
        return r.code !== 0;
      },
      20_000,
    );
  }, 30_000);
});

// The registry of external destinations and the outbound decisions that rest on it, as tables: through an
// egress gateway (a forward plan to the gateway workload, L7 for HTTP ports), direct (an egress plan),
// REGISTRY_ONLY refusals, DNS answers, and what the datapath is told to capture.
import { describe, expect, it } from "vitest";
import { planOutbound } from "../../../../agent/proxy/plan.ts";
import { MeshView } from "../../../../agent/state/view.ts";
import { ExternalService, type MeshConfig } from "../../../../controller/api/index.ts";
import { baseConfig, workload } from "../../../integration/agent/harness.ts";

const api = "nodemesh.io/v1alpha1";
const ext = (name: string, spec: Record<string, unknown>) =>
  ExternalService.parse({
    apiVersion: api,
    kind: "ExternalService",
    metadata: { name, namespace: "default" },
    spec,
  });

function config(mode: "ALLOW_ANY" | "REGISTRY_ONLY"): MeshConfig {
  const c = baseConfig("1", ["pem"]);
  c.workloads.push(workload("egress", "node-b", "127.0.2.9", { app: "egress" }, "egress-gateway"));
  c.outboundTrafficPolicy = { mode };
  c.externalServices = [
    ext("httpbin", {
      hosts: ["httpbin.example.test"],
      addresses: ["240.0.0.1"],
      ports: [
        { number: 80, name: "http", protocol: "HTTP", targetPort: 8080 },
        { number: 9000, name: "raw", protocol: "TCP" },
      ],
      resolution: "STATIC",
      endpoints: [{ address: "198.51.100.7", ports: { raw: 9001 } }],
      egressGateway: { workload: "egress" },
    }),
    ext("pg", {
      hosts: ["db.example.test"],
      ports: [{ number: 5432, name: "pg", protocol: "TCP" }],
      resolution: "DNS",
    }),
    ext("lost", {
      hosts: ["lost.example.test"],
      ports: [{ number: 80, name: "http", protocol: "HTTP" }],
      resolution: "STATIC",
      endpoints: [{ address: "198.51.100.9" }],
      egressGateway: { workload: "nobody" },
    }),
  ];
  return c;
}

const settings = { connectTimeoutMs: 2000 };
const resolved = new Map([["db.example.test", ["203.0.113.5", "203.0.113.6"]]]);

describe("planOutbound for destinations outside the mesh", () => {
  const view = new MeshView(config("REGISTRY_ONLY"), { nodeName: "node-a", resolved });
  const allowAny = new MeshView(config("ALLOW_ANY"), { nodeName: "node-a" });
  it.each([
    [
      "an HTTP port through the egress gateway: L7, to the gateway workload",
      view,
      { address: "240.0.0.1", port: 80 },
      {
        kind: "forward",
        protocol: "http",
        serviceHost: "httpbin.example.test",
        destination: "external:default/httpbin:80",
        endpoints: [
          { key: "127.0.2.9:80", address: "127.0.2.9", port: 80, workload: { uid: "default/egress" } },
        ],
      },
    ],
    [
      "a TCP port through the gateway, reached at the endpoint's own address",
      view,
      { address: "198.51.100.7", port: 9000 },
      { kind: "forward", protocol: "tcp", destination: "external:default/httpbin:9000" },
    ],
    [
      "a DNS service without gateway: direct egress, at a resolved address",
      view,
      { address: "203.0.113.6", port: 5432 },
      {
        kind: "egress",
        destination: { address: "203.0.113.6", port: 5432 },
        external: { host: "db.example.test" },
      },
    ],
    [
      "a gateway that is not in the mesh: refused, never around it",
      view,
      { address: "198.51.100.9", port: 80 },
      { kind: "fail", flag: "NoHealthyUpstream", service: "lost.example.test" },
    ],
    [
      "an unknown destination under REGISTRY_ONLY",
      view,
      { address: "192.0.2.1", port: 443 },
      {
        kind: "fail",
        flag: "RegistryOnlyDenied",
        service: "BlackHoleCluster",
        reason:
          "outbound traffic policy REGISTRY_ONLY: 192.0.2.1:443 is no service, workload or ExternalService",
      },
    ],
    [
      "a known address on an undeclared port under REGISTRY_ONLY",
      view,
      { address: "240.0.0.1", port: 81 },
      { kind: "fail", flag: "RegistryOnlyDenied" },
    ],
    [
      "an unresolved DNS host's address: unknown (fail closed)",
      allowAny,
      { address: "203.0.113.5", port: 5432 },
      { kind: "fail", flag: "NoRoute" },
    ],
  ])("%s", (_name, v, dst, want) => {
    expect(planOutbound(v, "default/client", dst, settings)).toMatchObject(want);
  });
});

describe("ExternalRegistry", () => {
  const view = new MeshView(config("ALLOW_ANY"), { nodeName: "node-b", resolved });

  it("captures the VIPs, STATIC endpoints and resolved addresses on the declared ports", () => {
    const captured = view.meshedDestinations().filter((d) => d.port !== 0 && !d.address.startsWith("10."));
    expect(captured.map((d) => `${d.address}:${d.port}`).sort()).toEqual(
      [
        "198.51.100.7:80",
        "198.51.100.7:9000",
        "198.51.100.9:80",
        "203.0.113.5:5432",
        "203.0.113.6:5432",
        "240.0.0.1:80",
        "240.0.0.1:9000",
      ].sort(),
    );
  });

  it("finds a gateway's service by host and port, with the targets to originate to", () => {
    const e = view.external.byHost("httpbin.example.test", 9000);
    expect(e?.targets).toEqual([{ address: "198.51.100.7", port: 9001 }]);
    expect(view.external.byHost("httpbin.example.test", 80)?.targets).toEqual([
      { address: "198.51.100.7", port: 8080 },
    ]);
    expect(view.external.isGateway("default/egress")).toBe(true);
    expect(view.external.isGateway("default/client")).toBe(false);
    expect(view.external.dnsHosts()).toEqual(["db.example.test"]);
    expect(view.servicePort("external:default/pg:5432")?.protocol).toBe("tcp");
    expect(view.external.mode).toBe("ALLOW_ANY");
  });

  it("defaults to ALLOW_ANY and no external service for a sender that predates egress", () => {
    const old = baseConfig("1", ["pem"]);
    const v = new MeshView(old, { nodeName: "node-a" });
    expect(v.external.mode).toBe("ALLOW_ANY");
    expect(v.external.capturedDestinations()).toEqual([]);
  });
});

// ExternalService and the outbound traffic policy on the controller side: the schema and its errors, the
// model's cross-document checks, the delta, the controller flag and the snapshot on the wire.
import { describe, expect, it } from "vitest";
import {
  applyDelta,
  ExternalService,
  MeshConfig,
  ServerMessage,
  validateDocument,
  formatIssue,
  type Resource,
} from "../../../controller/api/index.ts";
import { buildModel, sourced } from "../../../controller/model/model.ts";
import { ConfigHub } from "../../../controller/distribution/hub.ts";
import { parseControllerArgs } from "../../../controller/main.ts";

const api = "nodemesh.io/v1alpha1";
function ext(spec: Record<string, unknown>, name = "httpbin", namespace = "default") {
  return { apiVersion: api, kind: "ExternalService", metadata: { name, namespace }, spec };
}
const staticSpec = {
  hosts: ["httpbin.example.test"],
  ports: [{ number: 80, name: "http", protocol: "HTTP" }],
  resolution: "STATIC",
  endpoints: [{ address: "198.51.100.7" }],
};

/** The schema's messages for a document, as the operator reads them. */
function problems(doc: unknown): string[] {
  const r = validateDocument(doc, "mesh.yaml", 1);
  return r.ok ? [] : r.issues.map(formatIssue);
}

describe("ExternalService schema", () => {
  it("accepts a STATIC service with a gateway and TLS origination, defaults filled", () => {
    const r = ExternalService.parse(
      ext({
        ...staticSpec,
        ports: [{ number: 80, name: "http", protocol: "HTTP", targetPort: 443 }],
        egressGateway: { workload: "egress" },
        tls: { mode: "SIMPLE", caCertificates: "/etc/nodemesh/outside-ca.pem" },
      }),
    );
    expect(r.spec.resolution).toBe("STATIC");
    expect(ExternalService.parse(r)).toEqual(r); // the wire form re-parses to itself
    expect(
      ExternalService.parse(ext({ hosts: ["a.example.test"], ports: [{ number: 5432, name: "pg" }] })).spec,
    ).toMatchObject({ resolution: "DNS", ports: [{ protocol: "TCP" }] });
  });

  it.each([
    [{ ...staticSpec, endpoints: [] }, /spec\.endpoints: resolution STATIC needs at least one endpoint/],
    [{ ...staticSpec, resolution: "DNS" }, /resolution DNS takes no endpoints/],
    [{ ...staticSpec, resolution: "NONE" }, /resolution must be DNS or STATIC/],
    [{ ...staticSpec, hosts: ["*.example.test"] }, /spec\.hosts\[0\]: .*wildcards are not supported/],
    [{ ...staticSpec, hosts: [] }, /at least one host/],
    [
      { ...staticSpec, ports: [staticSpec.ports[0], { number: 80, name: "other" }] },
      /spec\.ports\[1\]\.number: port 80 is listed twice/,
    ],
    [
      { ...staticSpec, ports: [{ number: 80, name: "http", protocol: "UDP" }] },
      /protocol must be one of HTTP/,
    ],
    [{ ...staticSpec, endpoints: [{ address: "198.51.100.7", ports: { web: 8080 } }] }, /no port named web/],
    [{ ...staticSpec, endpoints: [{ address: "example.test" }] }, /must be an IPv4 address/],
    [
      { ...staticSpec, ports: [{ number: 443, name: "https", protocol: "HTTPS" }], tls: { mode: "SIMPLE" } },
      /tls origination wraps plaintext; port 443 is already HTTPS/,
    ],
    [{ ...staticSpec, tls: { mode: "MUTUAL" } }, /tls\.mode must be "SIMPLE"/],
    [{ ...staticSpec, tls: { mode: "SIMPLE", caCertificates: "ca.pem" } }, /must be an absolute file path/],
    [{ ...staticSpec, egressGateway: { node: "n3" } }, /egressGateway/],
  ])("rejects %j", (spec, message) => {
    expect(problems(ext(spec)).join("\n")).toMatch(message);
  });
});

function model(resources: unknown[], opts = {}) {
  return buildModel(
    resources.map((r, i) => sourced(r as Resource, "mesh.yaml", i + 1)),
    opts,
  );
}
const workload = (name: string, address: string) => ({
  apiVersion: api,
  kind: "WorkloadEntry",
  metadata: { name, namespace: "default" },
  spec: { address, node: "n1", netns: name, serviceAccount: "default", labels: {} },
});
const service = {
  apiVersion: api,
  kind: "Service",
  metadata: { name: "web", namespace: "default" },
  spec: { addresses: ["10.96.0.10"], ports: [{ port: 80, protocol: "TCP" }] },
};
const parse = (r: unknown) => ExternalService.parse(r);

describe("model checks", () => {
  it("rejects two external services on one host:port or one address:port", () => {
    const r = model([
      parse(ext(staticSpec)),
      parse(ext({ ...staticSpec, endpoints: [{ address: "198.51.100.8" }] }, "b")),
    ]);
    expect(r.errors.map((e) => `${e.path}: ${e.message}`)).toEqual([
      "spec.hosts[0]: httpbin.example.test:80 is already declared by ExternalService default/httpbin",
    ]);
    const a = model([
      parse(ext(staticSpec)),
      parse(ext({ ...staticSpec, hosts: ["other.example.test"] }, "b")),
    ]);
    expect(a.errors[0]?.message).toBe(
      "198.51.100.7:80 is already claimed by ExternalService default/httpbin",
    );
  });

  it("rejects an external address that is a Service VIP or a workload address", () => {
    const vip = model([service, parse(ext({ ...staticSpec, addresses: ["10.96.0.10"] }))]);
    expect(vip.errors[0]?.message).toMatch(/10\.96\.0\.10:80 is a Service address/);
    const pod = model([workload("w", "198.51.100.7"), parse(ext(staticSpec))]);
    expect(pod.errors[0]?.message).toMatch(/198\.51\.100\.7 is a workload address/);
  });

  it("warns about a gateway that names no workload, and carries the outbound policy", () => {
    const r = model(
      [parse(ext({ ...staticSpec, egressGateway: { workload: "egress", namespace: "egress" } }))],
      {
        outboundTrafficPolicy: { mode: "REGISTRY_ONLY" },
      },
    );
    expect(r.errors).toEqual([]);
    expect(r.warnings.map((w) => w.message)).toEqual([
      "workload egress/egress does not exist; connections to this service fail until it does (no direct fallback)",
    ]);
    expect(r.model?.externalServices).toHaveLength(1);
    expect(r.model?.outboundTrafficPolicy).toEqual({ mode: "REGISTRY_ONLY" });
  });
});

describe("wire", () => {
  it("sends the external services and the outbound policy in every node's snapshot", () => {
    const built = model([workload("w", "10.0.0.1"), parse(ext(staticSpec))], {
      outboundTrafficPolicy: { mode: "REGISTRY_ONLY" },
    });
    const hub = new ConfigHub();
    const v = hub.publish(built.model!, ["pem"]);
    const msg = ServerMessage.parse(JSON.parse(hub.snapshotMessage(v, "n2")));
    if (msg.type !== "snapshot") throw new Error("expected a snapshot");
    expect(msg.config.outboundTrafficPolicy).toEqual({ mode: "REGISTRY_ONLY" });
    expect(msg.config.externalServices?.map((s) => s.metadata.name)).toEqual(["httpbin"]);
  });

  it("applies ExternalService upserts and removals in a delta", () => {
    const base = MeshConfig.parse({
      version: "1",
      trustDomain: "td",
      rootNamespace: "nodemesh-system",
      trustBundle: [],
      services: [],
      workloads: [],
      authorizationPolicies: [],
      peerAuthentications: [],
      trafficPolicies: [],
    });
    const up = applyDelta(base, {
      fromVersion: "1",
      toVersion: "2",
      upserts: [parse(ext(staticSpec))],
      removals: [],
    });
    expect(up.externalServices).toHaveLength(1);
    const down = applyDelta(up, {
      fromVersion: "2",
      toVersion: "3",
      upserts: [],
      removals: [{ kind: "ExternalService", namespace: "default", name: "httpbin" }],
    });
    expect(down.externalServices).toEqual([]);
  });

  it("takes the mode from --outbound-traffic-policy or the environment, and refuses a typo", () => {
    const base = ["--config", "/dev/null", "--node-token", "n1=0123456789abcdef"];
    expect(parseControllerArgs(base, {}).outboundTrafficPolicy).toEqual({ mode: "ALLOW_ANY" });
    expect(
      parseControllerArgs([...base, "--outbound-traffic-policy", "REGISTRY_ONLY"], {}).outboundTrafficPolicy,
    ).toEqual({
      mode: "REGISTRY_ONLY",
    });
    expect(
      parseControllerArgs(base, { NODEMESH_OUTBOUND_TRAFFIC_POLICY: "REGISTRY_ONLY" }).outboundTrafficPolicy
        ?.mode,
    ).toBe("REGISTRY_ONLY");
    expect(() => parseControllerArgs([...base, "--outbound-traffic-policy", "registry_only"], {})).toThrow(
      /--outbound-traffic-policy must be ALLOW_ANY or REGISTRY_ONLY, got "registry_only"/,
    );
  });
});

// The ingress bench's pure parts: the mesh it builds (a Gateway on n1 with one HTTPS listener and a
// catch-all route to the backend Service), the certificate's SAN, and the table it prints.
import { describe, expect, it } from "vitest";
import {
  BACKEND_SERVICE,
  GATEWAY_NAME,
  GATEWAY_PORT,
  INGRESS_PATHS,
  INGRESS_QUICK_DURATIONS,
  INGRESS_RATES,
  ingressMeshSpec,
  ingressSan,
} from "../../../bench/ingress-spec.ts";
import { emptyResult, type PathResult } from "../../../bench/measure.ts";
import { renderIngress } from "../../../bench/report.ts";

const cert = { certFile: "/tmp/i/ingress.crt", keyFile: "/tmp/i/ingress.key" };

interface Doc {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec: Record<string, unknown>;
}

describe("the ingress bench mesh", () => {
  it("a Gateway on n1 serving HTTPS on the edge address with the bench certificate", () => {
    const spec = ingressMeshSpec(cert, "10.0.0.1");
    expect(spec.pods).toEqual({ n2p1: { app: BACKEND_SERVICE } });
    expect(spec.services).toEqual([expect.objectContaining({ name: BACKEND_SERVICE, appProtocol: "http" })]);
    const docs = spec.extra as Doc[];
    const gw = docs.find((d) => d.kind === "Gateway");
    expect(gw?.metadata.annotations).toEqual({ "nodemesh.io/gateway-nodes": "n1" });
    expect(gw?.spec).toMatchObject({
      gatewayClassName: "nodemesh",
      addresses: [{ value: "10.0.0.1" }],
      listeners: [{ name: "https", port: GATEWAY_PORT, protocol: "HTTPS" }],
    });
    // No hostname on the listener: the clients dial the address and send no SNI.
    expect((gw?.spec["listeners"] as object[])[0]).not.toHaveProperty("hostname");
    expect(docs.find((d) => d.kind === "TLSCertificate")).toMatchObject({
      metadata: { name: GATEWAY_NAME },
      spec: cert,
    });
    expect(docs.find((d) => d.kind === "HTTPRoute")?.spec).toMatchObject({
      parentRefs: [{ name: GATEWAY_NAME, sectionName: "https" }],
      rules: [{ backendRefs: [{ name: BACKEND_SERVICE, port: 8080 }] }],
    });
  });

  it("refuses relative certificate paths and a non-IPv4 edge address, naming them", () => {
    expect(() => ingressMeshSpec({ ...cert, keyFile: "ingress.key" }, "10.0.0.1")).toThrow(
      /ingress bench keyFile: expected an absolute path/,
    );
    expect(ingressSan("10.0.0.1")).toBe("IP:10.0.0.1,DNS:ingress.bench.example");
    expect(() => ingressSan("n1")).toThrow(/edge address must be an IPv4 address, got "n1"/);
  });

  it("a quick run fits the 2-minute budget: one fixed rate, short runs, no held connections", () => {
    expect(INGRESS_RATES).toEqual([500]);
    expect(INGRESS_QUICK_DURATIONS.warmup + INGRESS_QUICK_DURATIONS.duration).toBeLessThanOrEqual(3);
    expect(INGRESS_PATHS).toEqual(["direct", "haproxy-ingress", "mesh-gateway"]);
  });
});

function result(name: string, p50: number, perCoreRps: number, cpuPer10k: number): PathResult {
  return {
    ...emptyResult(name, true),
    fixed: [
      {
        conn: "keepalive",
        rate: 500,
        p50,
        p90: p50 * 2,
        p99: p50 * 4,
        max: p50 * 8,
        achievedRps: 500,
        errors: 0,
        sendLagP99: 0.1,
        cpuPer10k,
      },
    ],
    max: [{ conn: "keepalive", rps: 4000, errors: 0, proxyCpuS: 1, perCoreRps }],
  };
}

describe("the ingress table", () => {
  it("shows the added p50, per-core throughput and CPU per 1k, with mesh/HAProxy ratios", () => {
    const out = renderIngress([
      result("direct", 0.5, Number.NaN, Number.NaN),
      result("haproxy-ingress", 0.7, 10000, 2),
      result("mesh-gateway", 2.5, 2000, 10),
    ]);
    const line = (label: string) => out.split("\n").find((l) => l.startsWith(label)) ?? "";
    expect(out.split("\n")[0]).toMatch(/^Ingress: HTTPS keep-alive/);
    expect(line("keep-alive 500 rps: p50 added over direct ms")).toMatch(/ - +2 +0\.200 .* 10\.00x$/);
    expect(line("max keep-alive: rps per proxy core")).toMatch(/- +2000 +10000 .* 0\.20x$/);
    expect(line("keep-alive 500 rps: proxy CPU s / 1k req")).toMatch(/ - +1 +0\.200 .* 5\.00x$/);
  });

  it("says why the gateway path is missing", () => {
    const out = renderIngress([
      result("direct", 0.5, Number.NaN, Number.NaN),
      { ...emptyResult("mesh-gateway"), reason: "startMesh() did not finish" },
    ]);
    expect(out).toContain("mesh-gateway: not available (startMesh() did not finish)");
  });
});

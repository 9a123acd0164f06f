// A Gateway's trusted proxy hops: the annotation's validation (field-named), the plan the agent compiles,
// and which X-Forwarded-For entry is the original client (Envoy's xff_num_trusted_hops).
import { describe, expect, it } from "vitest";
import { formatIssue, validateDocument, type Gateway } from "../../../../controller/api/index.ts";
import { originalClient } from "../../../../agent/gateway/layer.ts";
import { gatewaysForNode } from "../../../../agent/gateway/routes.ts";
import type { MeshConfig } from "../../../../controller/api/index.ts";

const gateway = (annotations: Record<string, string>) => ({
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "Gateway",
  metadata: {
    name: "ingress",
    namespace: "edge",
    annotations: { "nodemesh.io/gateway-nodes": "n1", ...annotations },
  },
  spec: { gatewayClassName: "nodemesh", listeners: [{ name: "http", port: 80, protocol: "HTTP" }] },
});

describe("nodemesh.io/num-trusted-proxies", () => {
  it.each(["0", "1", "16"])("accepts %s", (hops) => {
    expect(validateDocument(gateway({ "nodemesh.io/num-trusted-proxies": hops }), "g.yaml", 1).ok).toBe(true);
  });

  it.each(["-1", "17", "1.5", "one", "", " 1", "007"])("refuses %j, naming the annotation", (hops) => {
    const r = validateDocument(gateway({ "nodemesh.io/num-trusted-proxies": hops }), "g.yaml", 1);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.map(formatIssue).join("\n")).toMatch(
      /metadata\.annotations\.nodemesh\.io\/num-trusted-proxies: must be a whole number of proxies from 0 to 16/,
    );
  });

  it("is compiled into the node's gateway plan (0 when absent)", () => {
    const plan = (annotations: Record<string, string>) => {
      const r = validateDocument(gateway(annotations), "g.yaml", 1);
      if (!r.ok) throw new Error(r.issues.map(formatIssue).join("\n"));
      const config = {
        version: "1",
        trustDomain: "cluster.local",
        services: [],
        gateways: [r.resource as Gateway],
      } as unknown as MeshConfig;
      return gatewaysForNode(config, "n1")[0]!;
    };
    expect(plan({}).trustedProxies).toBe(0);
    expect(plan({ "nodemesh.io/num-trusted-proxies": "2" }).trustedProxies).toBe(2);
  });
});

describe("originalClient", () => {
  const peer = "10.0.0.9";
  it.each([
    ["no trusted proxy ignores the header", "203.0.113.7", 0, peer],
    ["no header: the peer", "", 1, peer],
    ["one hop: the last entry", "203.0.113.7, 198.51.100.2", 1, "198.51.100.2"],
    ["two hops: the second from the right", "203.0.113.7, 198.51.100.2", 2, "203.0.113.7"],
    ["fewer entries than hops: the peer", "198.51.100.2", 2, peer],
    ["spaces around entries", " 203.0.113.7 ,198.51.100.2 ", 2, "203.0.113.7"],
    ["not IPv4: the peer", "unknown, 2001:db8::1", 1, peer],
    ["garbage: the peer", "203.0.113.7; drop", 1, peer],
  ])("%s", (_name, xff, hops, want) => {
    expect(originalClient(xff, hops, peer)).toBe(want);
  });
});

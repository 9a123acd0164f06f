// The source check of an inbound tunnel stream: peer node (from the tunnel's address), peer identity
// on that node, and the claimed `for=` address must agree; every refusal names its reason.
import { describe, expect, it } from "vitest";
import { authenticateSource, parseForwarded } from "../../../../../agent/proxy/tunnel/source-check.ts";
import type { PeerNodeResolver } from "../../../../../agent/state/peer-nodes.ts";
import type { MeshConfig } from "../../../../../controller/api/index.ts";
import { MeshView } from "../../../../../agent/state/view.ts";
import { baseConfig, workload } from "../../../../integration/agent/harness.ts";

const id = (sa: string) => `spiffe://cluster.local/ns/default/sa/${sa}`;
const config: MeshConfig = {
  ...baseConfig("1", ["pem"]),
  workloads: [
    workload("client", "n1", "10.1.1.2", { app: "client" }),
    workload("web-1", "n1", "10.1.1.3", { app: "web" }, "web"),
    workload("web-2", "n2", "10.1.2.2", { app: "web" }, "web"),
    workload("echo", "n2", "10.1.2.3", { app: "echo" }),
  ],
  gateways: [
    {
      apiVersion: "gateway.networking.k8s.io/v1" as const,
      kind: "Gateway" as const,
      metadata: {
        name: "ingress",
        namespace: "default",
        annotations: { "nodemesh.io/gateway-nodes": "n1" },
      },
      spec: {
        gatewayClassName: "nodemesh",
        listeners: [
          { name: "http", port: 8080, protocol: "HTTP", allowedRoutes: { namespaces: { from: "Same" } } },
        ],
      },
    },
  ],
};

const view = new MeshView(config, { nodeName: "n2" });
/** Node 1's agent connects from 10.0.0.1, node 2's own from 10.1.2.1; anything else is unknown. */
const nodes: PeerNodeResolver = {
  nodesOf: (_v, a) => ({ "10.0.0.1": ["n1"], "10.1.2.1": ["n2"] })[a] ?? [],
};
const check = (principal: string | undefined, tunnelSource: string, forwardedFor: string | undefined) =>
  authenticateSource(view, nodes, { principal, tunnelSource, forwardedFor });

describe("authenticateSource", () => {
  it("accepts a workload of the peer identity on the peer's node and returns its address", () => {
    const r = check(id("client"), "10.0.0.1", "10.1.1.2");
    expect(r).toMatchObject({ ok: true, address: "10.1.1.2", workload: { uid: "default/client" } });
    expect(check(id("web"), "10.1.2.1", "10.1.2.2")).toMatchObject({ ok: true, address: "10.1.2.2" });
  });

  it("refuses a for= of the same identity placed on another node (forged by a real agent)", () => {
    const r = check(id("web"), "10.0.0.1", "10.1.2.2");
    expect(r).toMatchObject({ ok: false, reason: "forged_source_address" });
    if (!r.ok)
      expect(r.message).toContain("default/web-2, spiffe://cluster.local/ns/default/sa/web on node n2");
  });

  it("refuses a for= of another identity, or of no workload", () => {
    expect(check(id("web"), "10.0.0.1", "10.1.1.2")).toMatchObject({ reason: "forged_source_address" });
    expect(check(id("web"), "10.0.0.1", "10.9.9.9")).toMatchObject({ reason: "forged_source_address" });
  });

  it("refuses a peer identity that has no workload on the calling node (a key used elsewhere)", () => {
    const r = check(id("echo"), "10.0.0.1", "10.1.2.3");
    expect(r).toMatchObject({ ok: false, reason: "identity_not_on_node" });
    if (!r.ok)
      expect(r.message).toBe(
        `peer identity ${id("echo")} has no workload on node n1, where the tunnel comes from`,
      );
  });

  it("refuses a tunnel from an address no node has, a stream without for=, a peer without identity", () => {
    expect(check(id("client"), "10.7.7.7", "10.1.1.2")).toMatchObject({ reason: "unknown_peer_node" });
    expect(check(id("client"), "10.0.0.1", undefined)).toMatchObject({ reason: "no_source_address" });
    expect(check(id("client"), "10.0.0.1", "")).toMatchObject({ reason: "no_source_address" });
    expect(check(undefined, "10.0.0.1", "10.1.1.2")).toMatchObject({ reason: "no_identity" });
  });

  it("takes a Gateway's for= (its external client) only from the Gateway's own nodes", () => {
    expect(check(id("ingress"), "10.0.0.1", "203.0.113.7")).toEqual({
      ok: true,
      address: "203.0.113.7",
      workload: undefined,
    });
    expect(check(id("ingress"), "10.1.2.1", "203.0.113.7")).toMatchObject({ reason: "identity_not_on_node" });
    expect(check(id("ingress"), "10.0.0.1", "not-an-ip")).toMatchObject({ reason: "forged_source_address" });
  });

  it("with several candidate nodes (loopback datapath) the claimed workload must be on one of them", () => {
    const shared: PeerNodeResolver = { nodesOf: () => ["n1", "n2"] };
    const r = authenticateSource(view, shared, {
      principal: id("web"),
      tunnelSource: "127.0.0.1",
      forwardedFor: "10.1.2.2",
    });
    expect(r).toMatchObject({ ok: true, address: "10.1.2.2" });
    const bad = authenticateSource(view, shared, {
      principal: id("web"),
      tunnelSource: "127.0.0.1",
      forwardedFor: "10.1.2.3",
    });
    expect(bad).toMatchObject({ ok: false, reason: "forged_source_address" });
  });
});

describe("parseForwarded", () => {
  it("reads for= (port stripped, quotes removed) and host= of the first element", () => {
    expect(parseForwarded('for="10.1.1.2:5000";host="echo.default"')).toEqual({
      for: "10.1.1.2",
      host: "echo.default",
    });
    expect(parseForwarded('for=10.1.1.2, for="10.9.9.9"')).toEqual({ for: "10.1.1.2" });
    expect(parseForwarded(["for=10.1.1.2", "for=10.9.9.9"])).toEqual({ for: "10.1.1.2" });
    expect(parseForwarded(undefined)).toEqual({});
    expect(parseForwarded("garbage")).toEqual({});
  });

  it("parses a repeated value once and never hands out a result a caller could change", () => {
    const a = parseForwarded('for="10.1.1.2";host="a.default"');
    expect(parseForwarded('for="10.1.1.2";host="a.default"')).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(parseForwarded('for="10.1.1.3";host="b.default"')).toEqual({ for: "10.1.1.3", host: "b.default" });
    expect(parseForwarded('for="10.1.1.2";host="a.default"')).toEqual({ for: "10.1.1.2", host: "a.default" });
    expect(Object.isFrozen(parseForwarded(undefined))).toBe(true);
  });
});

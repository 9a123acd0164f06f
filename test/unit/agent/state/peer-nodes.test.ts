// The tunnel-source → node book: workload addresses, this host's addresses, next hops of the routes to
// each node's workloads (a hop shared by two nodes is nobody's), loopback only for loopback workloads.
import { describe, expect, it } from "vitest";
import {
  HostPeerNodes,
  parseProcRoutes,
  type HostFacts,
  type Route,
} from "../../../../agent/state/peer-nodes.ts";
import { MeshView } from "../../../../agent/state/view.ts";
import { baseConfig, workload } from "../../../integration/agent/harness.ts";

const ip = (s: string) => s.split(".").reduce((n, p) => n * 256 + Number(p), 0);
const route = (cidr: string, gateway: string): Route => {
  const [net, bits] = cidr.split("/");
  const mask = Number(bits) === 0 ? 0 : (0xffffffff << (32 - Number(bits))) >>> 0;
  return { network: ip(net ?? ""), mask, gateway: gateway === "0.0.0.0" ? 0 : ip(gateway) };
};
// Node 2 of the lab: its own pods behind /32s, node 1 and node 3 behind their node addresses, and a
// default route whose gateway leads to node 4's and node 5's workloads alike.
const routes = [
  route("10.0.0.0/24", "0.0.0.0"),
  route("10.1.2.2/32", "0.0.0.0"),
  route("10.1.1.0/24", "10.0.0.1"),
  route("10.1.3.0/24", "10.0.0.3"),
  route("0.0.0.0/0", "10.0.0.254"),
];
const config = {
  ...baseConfig("1", ["pem"]),
  workloads: [
    workload("a", "n1", "10.1.1.2", {}),
    workload("b", "n2", "10.1.2.2", {}),
    workload("c", "n3", "10.1.3.2", {}),
    workload("d", "n4", "10.1.4.2", {}),
    workload("e", "n5", "10.1.5.2", {}),
  ],
};
const host = (over: Partial<HostFacts> = {}): HostFacts => ({
  addresses: () => ["127.0.0.1", "10.0.0.2", "10.1.2.1", "::ffff:10.9.0.1"],
  routes: () => routes,
  ...over,
});

describe("HostPeerNodes", () => {
  const view = new MeshView(config, { nodeName: "n2" });
  const book = new HostPeerNodes({ host: host() });

  it("names a workload's address by its node, this host's addresses by this node", () => {
    expect(book.nodesOf(view, "10.1.3.2")).toEqual(["n3"]);
    expect(book.nodesOf(view, "::ffff:10.1.1.2")).toEqual(["n1"]);
    expect(book.nodesOf(view, "10.1.2.1")).toEqual(["n2"]);
    expect(book.nodesOf(view, "10.9.0.1")).toEqual(["n2"]);
  });

  it("names another node by the next hop of the route to its workloads", () => {
    expect(book.nodesOf(view, "10.0.0.1")).toEqual(["n1"]);
    expect(book.nodesOf(view, "::ffff:10.0.0.3")).toEqual(["n3"]);
  });

  it("names nobody for a hop shared by two nodes, an unknown address, or loopback without loopback workloads", () => {
    expect(book.nodesOf(view, "10.0.0.254")).toEqual([]);
    expect(book.nodesOf(view, "10.0.0.77")).toEqual([]);
    expect(book.nodesOf(view, "127.0.0.1")).toEqual([]);
  });

  it("on the loopback datapath, a loopback source may be any node with loopback workloads", () => {
    const loop = new MeshView(baseConfig("1", ["pem"]), { nodeName: "node-b" });
    const b = new HostPeerNodes({ host: host({ routes: () => [] }) });
    expect([...b.nodesOf(loop, "127.0.0.1")].sort()).toEqual(["node-a", "node-b"]);
    expect(b.nodesOf(loop, "127.0.1.1")).toEqual(["node-a"]);
  });

  it("re-reads the host at most every refreshMs and rebuilds the book for a new view", () => {
    let reads = 0;
    const counted = new HostPeerNodes({
      host: host({ routes: () => (reads++, routes) }),
      refreshMs: 60_000,
    });
    counted.nodesOf(view, "10.0.0.1");
    counted.nodesOf(view, "10.0.0.3");
    expect(reads).toBe(1);
    const next = new MeshView(
      { ...config, version: "2", workloads: config.workloads.slice(1) },
      { nodeName: "n2" },
    );
    expect(counted.nodesOf(next, "10.0.0.1")).toEqual([]);
    expect(reads).toBe(1);
  });
});

describe("parseProcRoutes", () => {
  it("reads /proc/net/route (little-endian hex) and skips malformed lines", () => {
    const text = [
      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
      "eth0\t00000000\tFE00000A\t0003\t0\t0\t0\t00000000\t0\t0\t0",
      "eth0\t0001010A\t0100000A\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0",
      "eth0\tnothex\t0100000A\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0",
      "",
    ].join("\n");
    expect(parseProcRoutes(text)).toEqual([
      { network: 0, mask: 0, gateway: ip("10.0.0.254") },
      { network: ip("10.1.1.0"), mask: ip("255.255.255.0"), gateway: ip("10.0.0.1") },
    ]);
  });
});

describe("HostPeerNodes with the controller's node address book", () => {
  const view = new MeshView(config, { nodeName: "n2" });

  it("names a node by an address it reported, where no route says (an overlay's interface address)", () => {
    const book = new HostPeerNodes({ host: host() });
    expect(book.nodesOf(view, "10.244.1.0")).toEqual([]);
    book.setNodeBook({ n1: ["10.244.1.0"], n3: ["10.244.3.0"] });
    expect(book.nodesOf(view, "10.244.1.0")).toEqual(["n1"]);
    expect(book.nodesOf(view, "::ffff:10.244.3.0")).toEqual(["n3"]);
    // A newer book replaces the old one whole.
    book.setNodeBook({ n3: ["10.244.3.0"] });
    expect(book.nodesOf(view, "10.244.1.0")).toEqual([]);
  });

  it("does not let the book rename a workload's address or this host's own", () => {
    const book = new HostPeerNodes({ host: host() });
    book.setNodeBook({ n4: ["10.1.3.2", "10.0.0.2"] });
    expect(book.nodesOf(view, "10.1.3.2")).toEqual(["n3"]);
    expect(book.nodesOf(view, "10.0.0.2")).toEqual(["n2"]);
  });
});

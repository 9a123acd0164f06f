import { describe, expect, it } from "vitest";
import { LabError } from "../../../lab/errors.ts";
import {
  MAX_NODES,
  createBatch,
  findHost,
  netnsName,
  nodeBatch,
  parseNetnsName,
  planLab,
  podBatch,
  rootBatch,
  validateLabName,
} from "../../../lab/plan.ts";
import { wrap } from "../../../lab/lab.ts";

const CG = "/sys/fs/cgroup/unified";
const plan = planLab({ name: "t1", nodes: 2, podsPerNode: 2 }, CG);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(LabError);
    return (err as LabError).code;
  }
  return undefined;
}

describe("lab names", () => {
  it.each(["a", "demo", "e2e1", "abc123"])("accepts %j", (name) => {
    expect(validateLabName(name)).toBe(name);
  });

  it.each([
    ["", "empty"],
    ["abcdefg", "7 chars"],
    ["Demo", "upper case"],
    ["a-b", "dash"],
    ["a_b", "underscore"],
    ["a b", "space"],
  ])("rejects %j (%s) with a clear error", (name) => {
    expect(codeOf(() => validateLabName(name))).toBe("NODEMESH_ERR_LAB_BAD_NAME");
    expect(() => validateLabName(name)).toThrow(/bad lab name .*1 to 6 characters of \[a-z0-9\]/);
  });

  it("rejects non-strings", () => {
    expect(codeOf(() => validateLabName(undefined))).toBe("NODEMESH_ERR_LAB_BAD_NAME");
    expect(codeOf(() => validateLabName(12))).toBe("NODEMESH_ERR_LAB_BAD_NAME");
  });

  it("rejects bad counts", () => {
    for (const [nodes, podsPerNode] of [
      [0, 1],
      [MAX_NODES + 1, 1],
      [1.5, 1],
      [2, -1],
      [2, 1000],
    ] as const) {
      expect(codeOf(() => planLab({ name: "x", nodes, podsPerNode }, CG))).toBe("NODEMESH_ERR_LAB_BAD_SPEC");
    }
  });

  it("names namespaces nm-<lab>-<host> and parses only lab names back", () => {
    expect(netnsName("t1", "n2p1")).toBe("nm-t1-n2p1");
    expect(parseNetnsName("nm-t1-root")).toEqual({ lab: "t1", host: "root" });
    expect(parseNetnsName("nm-t1-n2")).toEqual({ lab: "t1", host: "n2", node: 2 });
    expect(parseNetnsName("nm-t1-n12p3")).toEqual({ lab: "t1", host: "n12p3", node: 12, pod: 3 });
    for (const other of [
      "nm-t1-x",
      "nm-toolong7-n1",
      "cni-1234",
      "nm-t1-n0",
      "nm-t1-n1p",
      "xnm-t1-n1",
      "nm-t1-n1-extra",
    ]) {
      expect(parseNetnsName(other)).toBeUndefined();
    }
  });
});

describe("address plan", () => {
  it("is deterministic", () => {
    expect(planLab({ name: "t1", nodes: 2, podsPerNode: 2 }, CG)).toEqual(plan);
  });

  it("gives the root namespace the controller address", () => {
    expect(plan.root).toEqual({
      kind: "root",
      name: "root",
      netns: "nm-t1-root",
      netnsPath: "/run/netns/nm-t1-root",
      address: "10.0.0.254",
    });
    expect(plan.cgroupPath).toBe(`${CG}/nodemesh-lab/t1`);
  });

  it("numbers nodes from 1 on the bridge subnet, each with its own pod /24", () => {
    expect(
      plan.nodes.map((n) => [n.name, n.netns, n.address, n.podCidr, n.podGateway, n.cgroupPath]),
    ).toEqual([
      ["n1", "nm-t1-n1", "10.0.0.1", "10.1.1.0/24", "10.1.1.1", `${CG}/nodemesh-lab/t1/n1`],
      ["n2", "nm-t1-n2", "10.0.0.2", "10.1.2.0/24", "10.1.2.1", `${CG}/nodemesh-lab/t1/n2`],
    ]);
  });

  it("gives each pod its own netns, cgroup and address in its node's CIDR", () => {
    expect(
      plan.pods.map((p) => [p.name, p.node, p.index, p.netns, p.address, p.cgroupPath, p.hostInterface]),
    ).toEqual([
      ["n1p1", 1, 1, "nm-t1-n1p1", "10.1.1.2", `${CG}/nodemesh-lab/t1/n1/p1`, "veth-p1"],
      ["n1p2", 1, 2, "nm-t1-n1p2", "10.1.1.3", `${CG}/nodemesh-lab/t1/n1/p2`, "veth-p2"],
      ["n2p1", 2, 1, "nm-t1-n2p1", "10.1.2.2", `${CG}/nodemesh-lab/t1/n2/p1`, "veth-p1"],
      ["n2p2", 2, 2, "nm-t1-n2p2", "10.1.2.3", `${CG}/nodemesh-lab/t1/n2/p2`, "veth-p2"],
    ]);
  });

  it("keeps every address unique across the largest lab", () => {
    const big = planLab({ name: "big", nodes: MAX_NODES, podsPerNode: 64 }, CG);
    const addrs = [big.root.address, ...big.nodes.map((n) => n.address), ...big.pods.map((p) => p.address)];
    expect(new Set(addrs).size).toBe(addrs.length);
    expect(
      addrs.every(
        (a) => /^10\.[01]\.\d{1,3}\.\d{1,3}$/.test(a) && a.split(".").every((o) => Number(o) < 255),
      ),
    ).toBe(true);
  });

  it("finds hosts by short name", () => {
    expect(findHost(plan, "root")).toBe(plan.root);
    expect(findHost(plan, "n2")).toBe(plan.nodes[1]);
    expect(findHost(plan, "n2p1")).toBe(plan.pods[2]);
    expect(findHost(plan, "n3")).toBeUndefined();
  });
});

describe("ip batches", () => {
  it("creates every link directly inside lab namespaces, never in the host", () => {
    const lines = createBatch(plan).trim().split("\n");
    expect(lines.filter((l) => l.startsWith("netns add"))).toHaveLength(7);
    for (const l of lines.filter((l) => l.startsWith("link add")))
      expect(l).toMatch(/^link add \S+ netns nm-t1-/);
    for (const l of lines.filter((l) => l.includes("type veth")))
      expect(l).toMatch(/peer name eth0 netns nm-t1-/);
    expect(lines).toContain("link add veth-n2 netns nm-t1-root type veth peer name eth0 netns nm-t1-n2");
    expect(lines).toContain("link add veth-p2 netns nm-t1-n1 type veth peer name eth0 netns nm-t1-n1p2");
  });

  it("bridges the nodes in the root namespace and routes pod CIDRs to their nodes", () => {
    const root = rootBatch(plan);
    expect(root).toContain("address add 10.0.0.254/24 dev br0");
    expect(root).toContain("link set veth-n1 master br0");
    expect(root).toContain("route add 10.1.2.0/24 via 10.0.0.2 dev br0 onlink");
  });

  it("routes local pods by /32 and remote pods via their node; nothing for service VIPs", () => {
    const n1 = nodeBatch(plan, plan.nodes[0]!);
    expect(n1).toContain("address add 10.0.0.1/24 dev eth0");
    expect(n1).toContain("address add 10.1.1.1/32 dev veth-p2");
    expect(n1).toContain("route add 10.1.1.3/32 dev veth-p2 scope link src 10.1.1.1");
    expect(n1).toContain("route add 10.1.2.0/24 via 10.0.0.2 dev eth0 onlink");
    expect(n1).not.toContain("10.1.1.0/24 via");
    expect(n1).not.toMatch(/default|10\.96\./);
  });

  it("gives a pod lo, its /32 and a default route via its node", () => {
    expect(podBatch(plan, plan.pods[3]!).trim().split("\n")).toEqual([
      "link set lo up",
      "address add 10.1.2.3/32 dev eth0",
      "link set eth0 up",
      "route add 10.1.2.1/32 dev eth0 scope link",
      "route add default via 10.1.2.1 dev eth0",
    ]);
  });

  it("brings lo up in every namespace", () => {
    expect(rootBatch(plan)).toMatch(/^link set lo up$/m);
    for (const n of plan.nodes) expect(nodeBatch(plan, n)).toMatch(/^link set lo up$/m);
  });
});

describe("command wrapping", () => {
  it("runs node commands with nsenter --net, keeping the host's mounts (bpffs, cgroup2)", () => {
    expect(wrap(plan.nodes[0]!, ["curl", "-s", "x"])).toEqual([
      "nsenter",
      "--net=/run/netns/nm-t1-n1",
      "--",
      "curl",
      "-s",
      "x",
    ]);
  });

  it("joins the pod's cgroup before exec'ing into the pod's namespace", () => {
    const argv = wrap(plan.pods[0]!, ["node", "-e", "x"]);
    expect(argv.slice(0, 2)).toEqual(["sh", "-c"]);
    expect(argv[2]).toBe(
      'echo $$ > "$0/cgroup.procs" && ns="$1" && shift && exec nsenter --net="$ns" -- "$@"',
    );
    expect(argv.slice(3)).toEqual([
      `${CG}/nodemesh-lab/t1/n1/p1`,
      "/run/netns/nm-t1-n1p1",
      "node",
      "-e",
      "x",
    ]);
  });

  it("refuses an empty command", () => {
    expect(codeOf(() => wrap(plan.root, []))).toBe("NODEMESH_ERR_LAB_BAD_ARGS");
  });
});

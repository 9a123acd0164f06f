// The lab's address plan and naming: pure functions, no I/O. Given a spec and the cgroup v2 mount,
// `planLab()` decides every namespace name, interface, address, route and cgroup path, and
// `*Batch()` render them as `ip -batch` scripts. `lab.ts` only runs what this module decides
// (ztunnel's src/test_helpers/netns.rs: deterministic addresses, namespaces named after the test).
//
// Topology of lab `x` with nodes 1..N and pods 1..M per node:
//   nm-x-root   br0 10.0.0.254/24 ("controller host"), bridge ports veth-n<i>
//   nm-x-n<i>   eth0 10.0.0.<i>/24 (peer of veth-n<i>), ip_forward=1,
//               veth-p<j> 10.1.<i>.1/32 (gateway of every local pod, point-to-point),
//               10.1.<i>.<j+1>/32 dev veth-p<j>; 10.1.<k>.0/24 via 10.0.0.<k> for other nodes
//   nm-x-n<i>p<j> eth0 10.1.<i>.<j+1>/32, 10.1.<i>.1 dev eth0 scope link, default via 10.1.<i>.1
//   nm-x-outside eth0 10.0.0.250/24 on br0 (peer of veth-outside), only with `outside: true`: a host
//               that is in no mesh, standing in for the internet and external clients (ingress, egress)
// Service VIPs (10.96.0.0/16) are routed nowhere: only the mesh's redirection reaches them.
// Nothing lives in the host namespace: every link is created directly inside a lab namespace.
import { LabError } from "./errors.ts";

export const NETNS_PREFIX = "nm-";
export const CGROUP_DIR = "nodemesh-lab";
export const NETNS_DIR = "/run/netns";
export const CONTROLLER_ADDRESS = "10.0.0.254";
export const NODE_SUBNET = "10.0.0.0/24";
export const POD_SUPERNET = "10.1.0.0/16";
export const SERVICE_CIDR = "10.96.0.0/16";
/** The `outside` host's address: on the nodes' bridge, below the controller's .254, far above the nodes. */
export const OUTSIDE_ADDRESS = "10.0.0.250";
// Node addresses 10.0.0.1..N must stay below the controller's .254; pods use .2..M+1 of their
// node's /24. Far larger labs than a laptop can usefully run are allowed; the cap only keeps a
// typo (`--nodes 300`) from building thousands of namespaces.
export const MAX_NODES = 64;
export const MAX_PODS_PER_NODE = 64;
// Lab names end up in namespace and cgroup names; kept short so that tools which put the lab name
// into an interface name (IFNAMSIZ is 16 bytes including NUL) still fit.
const LAB_NAME = /^[a-z0-9]{1,6}$/;

export interface LabSpec {
  /** [a-z0-9]{1,6}; namespaces are `nm-<name>-*`, cgroups `<cgroup2>/nodemesh-lab/<name>/...`. */
  name: string;
  nodes: number;
  podsPerNode: number;
  /** Adds the `outside` host (a namespace on the bridge that is in no mesh); default false. */
  outside?: boolean;
}

export interface LabRoot {
  readonly kind: "root";
  readonly name: "root";
  readonly netns: string;
  readonly netnsPath: string;
  /** The controller host's address on the bridge. */
  readonly address: string;
}

export interface LabNode {
  readonly kind: "node";
  /** `n<i>` */
  readonly name: string;
  /** 1-based */
  readonly index: number;
  readonly netns: string;
  readonly netnsPath: string;
  /** 10.0.0.<i>, on `eth0` in the node namespace. */
  readonly address: string;
  /** 10.1.<i>.0/24: the addresses of this node's pods. */
  readonly podCidr: string;
  /** 10.1.<i>.1: the pods' default gateway (held by the node on each pod veth). */
  readonly podGateway: string;
  /** Parent cgroup of this node's pods (attach per-node BPF here); no process is put in it. */
  readonly cgroupPath: string;
}

export interface LabPod {
  readonly kind: "pod";
  /** `n<i>p<j>` */
  readonly name: string;
  /** index of the node that hosts the pod (1-based) */
  readonly node: number;
  /** 1-based within its node */
  readonly index: number;
  readonly netns: string;
  readonly netnsPath: string;
  /** Every process the lab runs in this pod is put in this cgroup before it executes. */
  readonly cgroupPath: string;
  /** 10.1.<node>.<index+1>/32 on `eth0` in the pod namespace. */
  readonly address: string;
  /** The pod-facing veth's name inside the node namespace (`veth-p<j>`). */
  readonly hostInterface: string;
}

/** A host on the bridge that runs no agent and no workload: the internet, an external client. */
export interface LabOutside {
  readonly kind: "outside";
  readonly name: "outside";
  readonly netns: string;
  readonly netnsPath: string;
  /** 10.0.0.250, on `eth0` in the outside namespace. */
  readonly address: string;
}

export type LabHost = LabRoot | LabNode | LabPod | LabOutside;

export interface LabPlan {
  readonly name: string;
  readonly root: LabRoot;
  readonly nodes: readonly LabNode[];
  readonly pods: readonly LabPod[];
  /** Present when the spec asked for it. */
  readonly outside?: LabOutside;
  /** `<cgroup2>/nodemesh-lab/<name>`: every cgroup of the lab is below it. */
  readonly cgroupPath: string;
}

export function validateLabName(name: unknown): string {
  if (typeof name !== "string" || !LAB_NAME.test(name)) {
    throw new LabError(
      "NODEMESH_ERR_LAB_BAD_NAME",
      `bad lab name ${JSON.stringify(name)}: use 1 to 6 characters of [a-z0-9], e.g. "demo" or "e2e1"`,
    );
  }
  return name;
}

function checkCount(what: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new LabError(
      "NODEMESH_ERR_LAB_BAD_SPEC",
      `bad ${what} ${JSON.stringify(value)}: expected an integer from ${min} to ${max}`,
    );
  }
  return value;
}

export function validateSpec(spec: LabSpec): LabSpec {
  return {
    name: validateLabName(spec.name),
    nodes: checkCount("node count", spec.nodes, 1, MAX_NODES),
    podsPerNode: checkCount("pods per node", spec.podsPerNode, 0, MAX_PODS_PER_NODE),
    ...(spec.outside === undefined ? {} : { outside: spec.outside === true }),
  };
}

/** `nm-<lab>-<host>` where host is `root`, `n<i>` or `n<i>p<j>`. */
export function netnsName(lab: string, host: string): string {
  return `${NETNS_PREFIX}${lab}-${host}`;
}

const LAB_NETNS = /^nm-([a-z0-9]{1,6})-(root|outside|n([1-9][0-9]*)(?:p([1-9][0-9]*))?)$/;

/** Parses a namespace name of some lab; undefined for any namespace the lab did not name. */
export function parseNetnsName(
  netns: string,
): { lab: string; host: string; node?: number; pod?: number } | undefined {
  const m = LAB_NETNS.exec(netns);
  if (!m) return undefined;
  const [, lab, host, node, pod] = m;
  if (lab === undefined || host === undefined) return undefined;
  return {
    lab,
    host,
    ...(node === undefined ? {} : { node: Number(node) }),
    ...(pod === undefined ? {} : { pod: Number(pod) }),
  };
}

export function planLab(input: LabSpec, cgroup2Mount: string): LabPlan {
  const spec = validateSpec(input);
  const ns = (host: string) => netnsName(spec.name, host);
  const cgroupPath = `${cgroup2Mount}/${CGROUP_DIR}/${spec.name}`;
  const root: LabRoot = {
    kind: "root",
    name: "root",
    netns: ns("root"),
    netnsPath: `${NETNS_DIR}/${ns("root")}`,
    address: CONTROLLER_ADDRESS,
  };
  const nodes: LabNode[] = [];
  const pods: LabPod[] = [];
  for (let i = 1; i <= spec.nodes; i++) {
    const name = `n${i}`;
    nodes.push({
      kind: "node",
      name,
      index: i,
      netns: ns(name),
      netnsPath: `${NETNS_DIR}/${ns(name)}`,
      address: `10.0.0.${i}`,
      podCidr: `10.1.${i}.0/24`,
      podGateway: `10.1.${i}.1`,
      cgroupPath: `${cgroupPath}/${name}`,
    });
    for (let j = 1; j <= spec.podsPerNode; j++) {
      const podName = `n${i}p${j}`;
      pods.push({
        kind: "pod",
        name: podName,
        node: i,
        index: j,
        netns: ns(podName),
        netnsPath: `${NETNS_DIR}/${ns(podName)}`,
        cgroupPath: `${cgroupPath}/${name}/p${j}`,
        address: `10.1.${i}.${j + 1}`,
        hostInterface: `veth-p${j}`,
      });
    }
  }
  const outside: LabOutside | undefined = spec.outside
    ? {
        kind: "outside",
        name: "outside",
        netns: ns("outside"),
        netnsPath: `${NETNS_DIR}/${ns("outside")}`,
        address: OUTSIDE_ADDRESS,
      }
    : undefined;
  return { name: spec.name, root, nodes, pods, cgroupPath, ...(outside ? { outside } : {}) };
}

/** Run in the host namespace: creates the namespaces and every link, each directly in its namespace. */
export function createBatch(plan: LabPlan): string {
  const hosts: LabHost[] = [plan.root, ...plan.nodes, ...plan.pods, ...(plan.outside ? [plan.outside] : [])];
  const lines = hosts.map((h) => `netns add ${h.netns}`);
  lines.push(`link add br0 netns ${plan.root.netns} type bridge`);
  if (plan.outside)
    lines.push(
      `link add veth-outside netns ${plan.root.netns} type veth peer name eth0 netns ${plan.outside.netns}`,
    );
  for (const n of plan.nodes) {
    lines.push(`link add veth-${n.name} netns ${plan.root.netns} type veth peer name eth0 netns ${n.netns}`);
  }
  for (const p of plan.pods) {
    const node = nodeOf(plan, p);
    lines.push(`link add ${p.hostInterface} netns ${node.netns} type veth peer name eth0 netns ${p.netns}`);
  }
  return lines.join("\n") + "\n";
}

function nodeOf(plan: LabPlan, pod: LabPod): LabNode {
  const node = plan.nodes[pod.node - 1];
  if (!node) throw new Error(`pod ${pod.name} has no node ${pod.node}`);
  return node;
}

/** Run inside the root namespace (`ip -n <root> -batch -`). */
export function rootBatch(plan: LabPlan): string {
  const lines = ["link set lo up", `address add ${CONTROLLER_ADDRESS}/24 dev br0`, "link set br0 up"];
  for (const n of plan.nodes) lines.push(`link set veth-${n.name} master br0`, `link set veth-${n.name} up`);
  if (plan.outside) lines.push("link set veth-outside master br0", "link set veth-outside up");
  // So that the controller host (and a test running there) can reach pods directly.
  for (const n of plan.nodes) lines.push(`route add ${n.podCidr} via ${n.address} dev br0 onlink`);
  return lines.join("\n") + "\n";
}

/** Run inside node namespace `node` (after ip_forward is on). */
export function nodeBatch(plan: LabPlan, node: LabNode): string {
  const lines = ["link set lo up", `address add ${node.address}/24 dev eth0`, "link set eth0 up"];
  for (const p of plan.pods) {
    if (p.node !== node.index) continue;
    lines.push(
      `address add ${node.podGateway}/32 dev ${p.hostInterface}`,
      `link set ${p.hostInterface} up`,
      `route add ${p.address}/32 dev ${p.hostInterface} scope link src ${node.podGateway}`,
    );
  }
  for (const other of plan.nodes) {
    if (other.index === node.index) continue;
    lines.push(`route add ${other.podCidr} via ${other.address} dev eth0 onlink`);
  }
  return lines.join("\n") + "\n";
}

/** Run inside pod namespace `pod`. */
export function podBatch(plan: LabPlan, pod: LabPod): string {
  const gw = nodeOf(plan, pod).podGateway;
  return (
    [
      "link set lo up",
      `address add ${pod.address}/32 dev eth0`,
      "link set eth0 up",
      `route add ${gw}/32 dev eth0 scope link`,
      `route add default via ${gw} dev eth0`,
    ].join("\n") + "\n"
  );
}

/** Run inside the outside namespace: on the bridge, no route to pods or VIPs (it is not in the mesh). */
export function outsideBatch(outside: LabOutside): string {
  return (
    ["link set lo up", `address add ${outside.address}/24 dev eth0`, "link set eth0 up"].join("\n") + "\n"
  );
}

/** Host short names as the CLI takes them: `root`, `outside`, `n<i>` or `n<i>p<j>`. */
export function findHost(plan: LabPlan, host: string): LabHost | undefined {
  if (host === "root") return plan.root;
  if (host === "outside") return plan.outside;
  return plan.nodes.find((n) => n.name === host) ?? plan.pods.find((p) => p.name === host);
}

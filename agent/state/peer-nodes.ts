// Which node of the mesh a tunnel connection comes from, judged by its TCP source address alone (what
// the network vouches for; a header or a certificate could be replayed from anywhere). The book is
// assembled from the controller's node address book (each agent reports its interfaces' addresses,
// controller/api/node-addresses.ts; what names the peer on encapsulating overlays) and from what this
// host knows:
// - a workload's own address is that workload's node (a tunnel bound to its source workload's address,
//   as the loopback datapath does and ztunnel's in-pod mode does);
// - a loopback address that is no workload's can only be this host; with the loopback datapath (dev and
//   tests, every "node" on one host, workloads on 127/8) that is any node with a loopback workload, and
//   with a real datapath (no workload on 127/8) none: a tunnel from inside the pod itself names no peer;
// - any other address held by this host's interfaces is this node (same-node tunnels come from the pod
//   veth's gateway address);
// - an address in the controller's book is the node that reported it (the controller leaves out
//   addresses two nodes claim);
// - the next hop of this host's route to a node's workloads is that node (routed pod networks: the lab,
//   Calico BGP without encapsulation, flannel host-gw, kindnet). A next hop that leads to workloads of
//   two nodes is nobody's.
// Anything else is unknown, and the caller refuses it (fail closed). The host's addresses and routes
// are re-read at most every `refreshMs`, and the book rebuilt for each new MeshView.
import { readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import type { MeshView } from "./view.ts";

export interface PeerNodeResolver {
  /**
   * The nodes whose agent may have connected from `address`: one for a real network, several only on
   * the loopback datapath's shared host, none when no node can be named.
   */
  nodesOf(view: MeshView, address: string): readonly string[];
}

/** A resolver that takes the controller's node address book (node → addresses). */
export interface NodeBookSink {
  setNodeBook(book: Readonly<Record<string, readonly string[]>>): void;
}

export interface Route {
  /** Network and mask as unsigned 32-bit integers; gateway 0 = directly connected. */
  readonly network: number;
  readonly mask: number;
  readonly gateway: number;
}

export interface HostFacts {
  addresses(): readonly string[];
  routes(): readonly Route[];
}

export interface HostPeerNodesOptions {
  readonly host?: HostFacts;
  readonly refreshMs?: number;
}

/** Strips Node's "::ffff:" prefix of an IPv4 peer on a dual-stack socket. */
export function plainIpv4(address: string): string {
  return address.startsWith("::ffff:") ? address.slice("::ffff:".length) : address;
}

export class HostPeerNodes implements PeerNodeResolver, NodeBookSink {
  readonly #host: HostFacts;
  /** Address → node, from the controller's book. */
  #declared = new Map<string, string>();
  #nodeBook: Readonly<Record<string, readonly string[]>> = {};
  readonly #refreshMs: number;
  #readAt = -Infinity;
  #local = new Set<string>();
  #routes: readonly Route[] = [];
  #book: { view: MeshView; hops: Map<string, string>; loopbackNodes: readonly string[] } | undefined;

  constructor(opts: HostPeerNodesOptions = {}) {
    this.#host = opts.host ?? systemHost;
    this.#refreshMs = opts.refreshMs ?? 5000;
  }

  nodesOf(view: MeshView, address: string): readonly string[] {
    const ip = plainIpv4(address);
    const w = view.workloadByAddress(ip);
    if (w) return [w.node];
    this.#refresh(view);
    if (ip.startsWith("127.")) return this.#book?.loopbackNodes ?? [];
    if (this.#local.has(ip)) return [view.nodeName];
    const declared = this.#declared.get(ip);
    if (declared !== undefined) return [declared];
    const hop = this.#book?.hops.get(ip);
    return hop === undefined ? [] : [hop];
  }

  setNodeBook(book: Readonly<Record<string, readonly string[]>>): void {
    const next = new Map<string, string>();
    for (const [node, addresses] of Object.entries(book)) for (const a of addresses) next.set(a, node);
    this.#declared = next;
    this.#nodeBook = book;
  }

  /** The controller's book as last received (the config dump's `nodeAddresses`). */
  get nodeBook(): Readonly<Record<string, readonly string[]>> {
    return this.#nodeBook;
  }

  #refresh(view: MeshView): void {
    const now = performance.now();
    const stale = now - this.#readAt >= this.#refreshMs;
    if (stale) {
      this.#readAt = now;
      this.#local = new Set(this.#host.addresses().map(plainIpv4));
      this.#routes = this.#host.routes();
    }
    if (stale || this.#book?.view !== view) {
      const loopbackNodes = new Set<string>();
      for (const w of view.workloads()) if (w.address.startsWith("127.")) loopbackNodes.add(w.node);
      this.#book = { view, hops: nextHops(view, this.#routes), loopbackNodes: [...loopbackNodes] };
    }
  }
}

/** Next hop → node, from the longest route to each remote workload; shared hops are dropped. */
export function nextHops(view: MeshView, routes: readonly Route[]): Map<string, string> {
  const hops = new Map<string, string>();
  const shared = new Set<string>();
  for (const w of view.workloads()) {
    if (w.node === view.nodeName) continue;
    const addr = ipv4ToInt(w.address);
    if (addr === undefined) continue;
    const hop = longestMatch(routes, addr)?.gateway;
    if (!hop) continue;
    const key = intToIpv4(hop);
    const had = hops.get(key);
    if (had !== undefined && had !== w.node) shared.add(key);
    else hops.set(key, w.node);
  }
  for (const k of shared) hops.delete(k);
  return hops;
}

function longestMatch(routes: readonly Route[], addr: number): Route | undefined {
  let best: Route | undefined;
  for (const r of routes) {
    if ((addr & r.mask) >>> 0 !== r.network) continue;
    if (!best || r.mask >>> 0 > best.mask >>> 0) best = r;
  }
  return best;
}

/** /proc/net/route: addresses in host byte order (little-endian hex on every Linux the mesh runs on). */
export function parseProcRoutes(text: string): Route[] {
  const out: Route[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [dst, gw, mask] = [f[1], f[2], f[7]].map(leHex);
    if (dst === undefined || gw === undefined || mask === undefined) continue;
    out.push({ network: (dst & mask) >>> 0, mask, gateway: gw });
  }
  return out;
}

function leHex(h: string | undefined): number | undefined {
  if (!h || !/^[0-9A-Fa-f]{8}$/.test(h)) return undefined;
  const n = parseInt(h, 16);
  return (((n & 0xff) << 24) | ((n & 0xff00) << 8) | ((n >>> 8) & 0xff00) | (n >>> 24)) >>> 0;
}

export function ipv4ToInt(ip: string): number | undefined {
  const parts = ip.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join(".");
}

const systemHost: HostFacts = {
  addresses: () =>
    Object.values(networkInterfaces())
      .flatMap((list) => list ?? [])
      .map((i) => i.address),
  routes: () => {
    try {
      return parseProcRoutes(readFileSync("/proc/net/route", "utf8"));
    } catch {
      return []; // no procfs (not Linux): only workload and local addresses are known
    }
  },
};

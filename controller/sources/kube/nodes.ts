// Pure: Kubernetes Node objects as the node addresses the controller's node book takes as declared
// (controller/distribution/node-book.ts): each Node's `status.addresses` of type InternalIP, IPv4
// only (the mesh's tunnels are IPv4). ExternalIPs are left out: a tunnel from another node comes
// from its internal address, and a NATed external one may be shared. No I/O.
import { isIPv4 } from "node:net";
import type { V1Node } from "@kubernetes/client-node";

export function nodeAddresses(nodes: readonly V1Node[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const n of nodes) {
    const name = n.metadata?.name;
    if (!name) continue;
    const ips = (n.status?.addresses ?? [])
      .filter((a) => a.type === "InternalIP" && isIPv4(a.address))
      .map((a) => a.address);
    if (ips.length > 0) out[name] = [...new Set(ips)].sort();
  }
  return Object.fromEntries(
    Object.keys(out)
      .sort()
      .map((k) => [k, out[k] ?? []]),
  );
}

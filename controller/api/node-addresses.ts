// Node addresses on the controller stream: each agent reports the IPv4 addresses of its node's
// interfaces (`addresses`); the controller answers every agent that reports with the whole book
// (`nodes`), from which a destination agent names the node a tunnel comes from when no route says
// (encapsulating overlays: VXLAN, IPIP, Cilium tunnels, where the tunnel's source address is an
// overlay interface's). An address two live nodes claim is in neither's list: a tunnel from it names
// no node, and is refused (fail closed). Only agents that report get the book, so an agent that
// predates the message never sees one.
import { z } from "zod";

/** At most this many addresses per node (a node with more is cut, its report refused). */
export const MAX_NODE_ADDRESSES = 64;
/** How often an agent looks at its interfaces again, and reports when they changed. */
export const NODE_ADDRESS_RESCAN_MS = 30_000;

const Ipv4 = z.ipv4();

export const NodeAddressReport = z
  .object({
    type: z.literal("addresses"),
    addresses: z.array(Ipv4).max(MAX_NODE_ADDRESSES, {
      error: `a node reports at most ${MAX_NODE_ADDRESSES} addresses`,
    }),
  })
  .strict();

export const NodeAddressBook = z
  .object({
    type: z.literal("nodes"),
    /** Node name → its addresses; every address at most once in the whole book. */
    nodes: z.record(z.string().min(1), z.array(Ipv4)),
  })
  .strict();

export type NodeAddressReport = z.infer<typeof NodeAddressReport>;
export type NodeAddressBook = z.infer<typeof NodeAddressBook>;

/** Whether an interface address is worth reporting: not loopback, not link-local (every node has those). */
export function reportableAddress(ip: string): boolean {
  return Ipv4.safeParse(ip).success && !ip.startsWith("127.") && !ip.startsWith("169.254.");
}

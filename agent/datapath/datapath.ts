// The datapath contract: how the agent gets listening sockets for a workload and learns where a captured
// connection was going. Implementations: `ebpf.ts` (real: listeners opened inside the pod netns by the
// native addon, a cgroup/connect4 program redirecting to them) and `loopback.ts` (tests and dev on one
// host, 127.0.0.0/8 only).
//
// Contract for implementations:
// - enroll() returns servers already listening (or, for loopback's outbound, receiving 'connection'
//   events) but with no handler attached: the agent attaches its own. Servers are created with
//   `allowHalfOpen: true` so a client's FIN travels through the tunnel instead of closing the socket.
// - The datapath owns the servers: release() and close() close them; the agent never does.
// - originalDestination() is synchronous and cheap: it is called once per accepted outbound socket.
import type { Server, Socket } from "node:net";
import { DatapathError } from "../errors.ts";
import type { MtlsPlan } from "../policy/peer-auth.ts";

export type { MtlsPlan, PortMtls } from "../policy/peer-auth.ts";

/** A workload this node proxies, as the datapath needs to see it. */
export interface LocalWorkload {
  /** "namespace/name", the enrollment key. */
  readonly uid: string;
  /** The pod's IP (the HBONE listener's address on the pod side). */
  readonly address: string;
  /** Network namespace path or `ip netns` name; cgroup v2 path. One of them is set. */
  readonly netns: string | undefined;
  readonly cgroup: string | undefined;
  /** PeerAuthentication, per port: where STRICT, the datapath refuses plaintext reaching the workload from outside. */
  readonly mtls: MtlsPlan;
}

export interface EnrolledListeners {
  /** Outbound capture (in-pod 127.0.0.1:15001): connections redirected from the workload. */
  readonly outbound: Server;
  /** Inbound HBONE (in-pod 0.0.0.0:15008): mTLS tunnels from other agents. */
  readonly inbound: Server;
  /** Why opaque-TCP deliveries to this workload cannot come from the client pod's address (absent: they do). */
  readonly sourceUnavailable?: string;
}

export interface Destination {
  readonly address: string;
  /** 0 = every port of that address. */
  readonly port: number;
}

/** A workload's entries in the kernel maps, read back (what the BPF programs see). */
export interface KernelEnrollment {
  readonly enrolled: boolean;
  /** The default mode of its ports. */
  readonly strict: boolean;
  /** The per-port exceptions the kernel holds for it. */
  readonly ports: readonly { readonly port: number; readonly strict: boolean }[];
}

export interface Datapath {
  /**
   * Where it fails for a workload whose namespace it can reach, a datapath that can (ebpf.ts) holds the
   * workload instead: its meshed connects are refused until a later enroll() succeeds or release().
   */
  enroll(w: LocalWorkload): Promise<EnrolledListeners>;
  /** Releases an enrolled or held workload. */
  release(uid: string): Promise<void>;
  /** Workloads held because their enroll() failed (see enroll). */
  heldWorkloads?(): string[];
  /** Destinations whose connects are redirected; everything else bypasses the agent. Replaces the set. */
  setMeshedDestinations(dsts: readonly Destination[]): void;
  /**
   * REGISTRY_ONLY (docs/egress.md): true redirects every TCP connect of the enrolled workloads to the agent,
   * which refuses what it does not know; false captures only the meshed destinations. Absent = this
   * datapath cannot capture everything, and the agent reports REGISTRY_ONLY as not applied.
   */
  setCaptureAll?(on: boolean): void;
  /**
   * Changes a workload's PeerAuthentication enforcement (its default and per-port exceptions). On any
   * failure (a full kernel map, a kernel error) it rejects with an error naming the cause, and the
   * datapath still refuses plaintext on at least the ports the previous plan refused it on.
   */
  setMtls(uid: string, plan: MtlsPlan): Promise<void>;
  /**
   * A connection to the workload's application (inbound delivery), started from inside the workload's
   * own namespace, so a STRICT workload still accepts it. With `source` (the client pod's authenticated
   * address) the application sees that address as its peer, where the datapath can (see
   * EnrolledListeners.sourceUnavailable). Resolves once connect() has been issued; the socket emits
   * 'connect' or 'error' as usual.
   */
  connectApp(uid: string, address: string, port: number, source?: string): Promise<Socket>;
  /** Plaintext connection attempts refused at STRICT ports, per workload, as running totals. */
  plaintextRefused?(): { uid: string; count: number }[];
  /** The kernel's workload-map entry of an enrolled workload (`nodemesh explain`); undefined = not enrolled here. */
  kernelEnrollment?(uid: string): KernelEnrollment | undefined;
  /** The destination the workload connected to, for a socket accepted on an outbound server. */
  originalDestination(socket: Socket): Destination | undefined;
  close(): Promise<void>;
}

/**
 * Checks a plan before any datapath acts on it (both datapaths call it, so they refuse the same plans):
 * a boolean default, ports 1-65535 each once. The error names the workload and the field.
 */
export function checkMtlsPlan(uid: string, plan: MtlsPlan): MtlsPlan {
  if (typeof plan?.strict !== "boolean")
    throw new DatapathError(
      `workload ${uid}: mtls.strict must be a boolean, got ${JSON.stringify(plan?.strict)}`,
    );
  if (!Array.isArray(plan.ports)) throw new DatapathError(`workload ${uid}: mtls.ports must be an array`);
  const seen = new Set<number>();
  plan.ports.forEach((p, i) => {
    const port: unknown = p?.port;
    if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535)
      throw new DatapathError(
        `workload ${uid}: mtls.ports[${i}].port ${JSON.stringify(port)} is not a port 1-65535`,
      );
    if (typeof p.strict !== "boolean")
      throw new DatapathError(`workload ${uid}: mtls.ports[${i}].strict must be a boolean`);
    if (seen.has(port))
      throw new DatapathError(`workload ${uid}: mtls.ports[${i}].port ${port} is listed twice`);
    seen.add(port);
  });
  return plan;
}

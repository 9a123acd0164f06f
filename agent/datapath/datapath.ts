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

/** A workload this node proxies, as the datapath needs to see it. */
export interface LocalWorkload {
  /** "namespace/name", the enrollment key. */
  readonly uid: string;
  /** The pod's IP (the HBONE listener's address on the pod side). */
  readonly address: string;
  /** Network namespace path or `ip netns` name; cgroup v2 path. One of them is set. */
  readonly netns: string | undefined;
  readonly cgroup: string | undefined;
  /** PeerAuthentication STRICT: the datapath refuses plaintext reaching the workload from outside. */
  readonly strict: boolean;
}

export interface EnrolledListeners {
  /** Outbound capture (in-pod 127.0.0.1:15001): connections redirected from the workload. */
  readonly outbound: Server;
  /** Inbound HBONE (in-pod 0.0.0.0:15008): mTLS tunnels from other agents. */
  readonly inbound: Server;
}

export interface Destination {
  readonly address: string;
  /** 0 = every port of that address. */
  readonly port: number;
}

export interface Datapath {
  enroll(w: LocalWorkload): Promise<EnrolledListeners>;
  release(uid: string): Promise<void>;
  /** Destinations whose connects are redirected; everything else bypasses the agent. Replaces the set. */
  setMeshedDestinations(dsts: readonly Destination[]): void;
  /**
   * REGISTRY_ONLY (docs/egress.md): true redirects every TCP connect of the enrolled workloads to the agent,
   * which refuses what it does not know; false captures only the meshed destinations. Absent = this
   * datapath cannot capture everything, and the agent reports REGISTRY_ONLY as not applied.
   */
  setCaptureAll?(on: boolean): void;
  /** Changes a workload's PeerAuthentication enforcement (STRICT refuses plaintext from outside). */
  setStrict(uid: string, strict: boolean): Promise<void>;
  /**
   * A connection to the workload's application (inbound delivery), started from inside the workload's
   * own namespace, so a STRICT workload still accepts it. Resolves once connect() has been issued; the
   * socket emits 'connect' or 'error' as usual.
   */
  connectApp(uid: string, address: string, port: number): Promise<Socket>;
  /** Plaintext connection attempts refused for STRICT workloads, per workload, as running totals. */
  plaintextRefused?(): { uid: string; count: number }[];
  /** The kernel's workload-map entry of an enrolled workload (`nodemesh explain`); undefined = not enrolled here. */
  kernelEnrollment?(uid: string): { enrolled: boolean; strict: boolean } | undefined;
  /** The destination the workload connected to, for a socket accepted on an outbound server. */
  originalDestination(socket: Socket): Destination | undefined;
  close(): Promise<void>;
}

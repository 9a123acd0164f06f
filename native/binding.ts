// The shape of nodemesh_native.node as the C++ side defines it (native/addon/module.cc and
// datapath.cc). Types only, plus the failure guard: index.ts is the one module that loads it.
import type { RawProbe } from "./features.ts";

export interface Failure {
  errno: number;
  op: string;
  log: string;
}
/** [id, outboundPort, flags] */
export type Workload = [bigint, number, number];
/** [netnsCookie, port (host order), mode: NM_PORT_MTLS_*] */
export type PortMtlsEntry = [bigint, number, number];
export interface RawDatapath {
  isAdopted(): boolean;
  updateWorkload(kind: 0 | 1, id: bigint, outboundPort: number, flags: number): number;
  deleteWorkload(kind: 0 | 1, id: bigint): number;
  listWorkloads(kind: 0 | 1): Workload[] | number;
  updatePortMtls(netnsCookie: bigint, port: number, mode: number): number;
  deletePortMtls(netnsCookie: bigint, port: number): number;
  listPortMtls(): PortMtlsEntry[] | number;
  setDestinations(addresses: string[], ports: number[]): number;
  setCaptureMode(allTcp: boolean, ports: number[], cidrs: string[], prefixes: number[]): number;
  originalDestination(fd: number): [string, number] | null | number;
  kernelObjects(): KernelObjects | number;
  plaintextDrops(): [bigint, bigint][] | number;
  /** The sockmap shortcut: attached, or the failure that left it off (errno 0, op "": not asked). */
  sockmapStatus(): { enabled: boolean; errno: number; op: string; log: string };
  /** nm_sm_stats in enum nm_sm_stat order, or -errno (-ENOENT: shortcut not attached). */
  sockmapStats(): bigint[] | number;
  /** nm_sock_pairs keys: [netnsCookie, localIp, localPort, remoteIp, remotePort], or -errno. */
  sockPairs(): [bigint, string, number, string, number][] | number;
  close(): void;
  uninstall(): { errno: number; op: string };
}
export interface NativeAddon {
  install(req: {
    connectObj: string;
    sockopsObj: string;
    ingressObj: string;
    getpeernameObj: string;
    /** sockmap.bpf.o, or "" for no shortcut (a pinned link of a previous agent's is detached). */
    sockmapObj: string;
    pinDir: string;
    cgroupPath: string;
  }): Promise<RawDatapath | Failure>;
  openSocket(req: {
    netnsPath: string;
    host: string;
    port: number;
    backlog: number;
    mark: number;
    listen: boolean;
  }): Promise<number | Failure>;
  netnsCookieOf(path: string): Promise<bigint | Failure>;
  setMark(fd: number, mark: number): number;
  openNetns(path: string): number | Failure;
  socketInNetnsSync(nsFd: number, mark: number): number | Failure;
  /** IP_TRANSPARENT bind of an unconnected TCP socket to a (possibly foreign) IPv4 address. */
  bindSource(fd: number, ip: string): number | Failure;
  /** tcp_fwmark_accept, the fwmark rule and the local route of delivery replies in a namespace. */
  routeDeliveryReplies(
    nsFd: number,
    mark: number,
    table: number,
    pref: number,
    remove: boolean,
  ): number | Failure;
  isBpffs(path: string): number;
  mountBpffs(path: string): number;
  purgePins(pinDir: string): { errno: number; op: string };
  probe(): RawProbe;
  /** pidfd_getfd: a copy of another process's fd, or -errno. */
  copyFdFrom(pid: number, fd: number): number;
  /** [host, port] of a listening IPv4 TCP socket, or -errno. */
  listenerAddress(fd: number): [string, number] | number;
  agentMark: number;
  /** SO_MARK of inbound delivery sockets (NM_DELIVERY_MARK): exempt from connect4, replies routed by it. */
  deliveryMark: number;
  defaultOutboundPort: number;
  /** nm_workload.flags bit: PeerAuthentication STRICT enforced in the kernel. */
  workloadStrictFlag: number;
  /** nm_port_mtls values (NM_PORT_MTLS_STRICT, NM_PORT_MTLS_PERMISSIVE) and capacity. */
  portMtlsStrict: number;
  portMtlsPermissive: number;
  maxPortMtls: number;
}

/** Kernel ids of what one instance owns, for `bpftool` cross-checks and the admin page. */
export interface KernelObjects {
  progs: number[];
  maps: number[];
  links: number[];
}

export function isFailure(value: unknown): value is Failure {
  return typeof value === "object" && value !== null && "errno" in value && "op" in value;
}

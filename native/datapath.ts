// One installed (or re-adopted) instance of the redirection programs: the maps of enrolled
// workloads and meshed destinations, and the original-destination lookup for accepted sockets.
//
// Invariants:
// - Every method validates its input before touching a map, so a bad call changes nothing.
// - After close() or uninstall() every method throws NODEMESH_ERR_NATIVE_CLOSED; close() keeps
//   the pins (redirection keeps working without us), uninstall() removes links, maps and pins.
// - setMeshedDestinations / setCaptureMode replace the whole set (not a delta), so a restarted
//   agent converges on its config whatever a previous agent left.
import { statSync } from "node:fs";
import type { Socket } from "node:net";
import type { KernelObjects, RawDatapath } from "./binding.ts";
import { CallSite, NativeError, invalid } from "./errors.ts";
import { applyMtls, type MtlsState, type MtlsWrites, type PortMtls } from "./mtls.ts";
import * as check from "./validate.ts";

export type { PortMtls } from "./mtls.ts";
// The sockmap shortcut's state, counters and pairs: see sockmapState() below.

export interface Destination {
  address: string;
  /** 0 = every port of the address. */
  port: number;
}
export interface CaptureMode {
  /** Capture every TCP destination, except the excluded ports and CIDRs. */
  allTcp: boolean;
  excludePorts?: number[];
  excludeCidrs?: string[];
}
export interface EnrollOptions {
  /** The port of the in-pod outbound listener (127.0.0.1:<port> in the pod's netns). */
  outboundPort?: number;
  /**
   * Hold the workload instead of redirecting it: its connects to meshed destinations are refused
   * (EPERM) in the kernel, for a pod whose in-pod listener cannot be opened (fail closed). Stored as
   * outbound port 0; `outboundPort` must then be absent.
   */
  refuse?: boolean;
  /**
   * PeerAuthentication STRICT, enforced in the kernel (netns enrollment only): TCP SYNs reaching the
   * workload's own listeners from outside its namespace are dropped; see native/bpf/ingress.bpf.c.
   * The workload's default; `ports` overrides it port by port.
   */
  strict?: boolean;
  /** Ports (target ports, as the pod receives them) whose mode differs from `strict`; netns only. */
  ports?: readonly PortMtls[];
}
export interface WorkloadEntry {
  id: bigint;
  /** 0: held, its meshed connects are refused (EnrollOptions.refuse). */
  outboundPort: number;
  strict: boolean;
  /** The per-port exceptions the kernel holds for it, by port (netns enrollments only). */
  ports: PortMtls[];
}
export interface DatapathContext {
  pinDir: string;
  cgroupPath: string;
  cgroup2Mount: string;
  defaultOutboundPort: number;
  strictFlag: number;
  /** nm_port_mtls values and capacity (native/include/mesh_shared.h). */
  portMtls: { strict: number; permissive: number; max: number };
  cookieOf: (netnsPath: string) => Promise<bigint>;
  /** Why the sockmap shortcut was not even tried (the kernel lacks it); undefined otherwise. */
  sockmapUnavailable?: string | undefined;
}

/** The sockmap shortcut of an instance: on, or off and why ("not requested" when it was not asked for). */
export interface SockmapState {
  enabled: boolean;
  reason?: string;
}

/** nm_sm_stats (native/include/mesh_shared.h enum nm_sm_stat). */
export interface SockmapStats {
  redirectedMsgs: bigint;
  redirectedBytes: bigint;
  /** sendmsg calls of paired sockets that went through TCP (peer not paired in time). */
  passedMsgs: bigint;
  /** sockets ever added to nm_sock_pairs by this pin directory's programs. */
  inserted: bigint;
}

/** One end of a short-circuited connection as nm_sock_pairs holds it. */
export interface SockPair {
  netnsCookie: bigint;
  local: { address: string; port: number };
  remote: { address: string; port: number };
}

const NETNS = 0;
const CGROUP = 1;

export class Datapath {
  readonly pinDir: string;
  readonly cgroupPath: string;
  /** true when the programs were already attached by a previous agent and were taken over. */
  readonly adopted: boolean;
  #raw: RawDatapath | undefined;
  readonly #ctx: DatapathContext;

  constructor(raw: RawDatapath, ctx: DatapathContext) {
    this.#raw = raw;
    this.#ctx = ctx;
    this.pinDir = ctx.pinDir;
    this.cgroupPath = ctx.cgroupPath;
    this.adopted = raw.isAdopted();
  }

  #open(site: CallSite): RawDatapath {
    if (!this.#raw)
      throw site.error(
        "NODEMESH_ERR_NATIVE_CLOSED",
        `the datapath of ${this.pinDir} is closed; call install() again`,
      );
    return this.#raw;
  }

  #port(opts: EnrollOptions | undefined): number {
    const refuse: unknown = opts?.refuse ?? false;
    if (typeof refuse !== "boolean") throw invalid("refuse must be a boolean");
    if (refuse) {
      if (opts?.outboundPort !== undefined)
        throw invalid("an enrollment that refuses the pod's connects takes no outbound port");
      return 0;
    }
    return check.checkPort(opts?.outboundPort ?? this.#ctx.defaultOutboundPort, "outbound port");
  }

  static #check(site: CallSite, op: string, result: number, subject?: string): void {
    if (result < 0) throw site.fail(op, result, subject);
  }

  /**
   * Redirect the meshed connections of the pod whose network namespace is at netnsPath, and enforce
   * its PeerAuthentication plan (`strict` default, `ports` exceptions). Called again for an enrolled
   * pod it moves the kernel to the new plan without ever refusing plaintext on fewer ports than
   * before (native/mtls.ts); on failure it throws and the kernel enforces at least the previous plan.
   */
  async enrollNetns(netnsPath: string, opts?: EnrollOptions): Promise<{ netnsCookie: bigint }> {
    const site = new CallSite(this.enrollNetns);
    const port = this.#port(opts);
    const target: MtlsState = {
      strict: opts?.strict ?? false,
      ports: check.checkPortMtls(opts?.ports, this.#ctx.portMtls.max),
    };
    this.#open(site);
    const netnsCookie = await this.#ctx.cookieOf(netnsPath);
    const raw = this.#open(site);
    const entry = this.#netnsEntry(site, raw, netnsCookie);
    const from: MtlsState = { strict: entry?.strict ?? false, ports: this.#portsOf(site, raw, netnsCookie) };
    const failure = applyMtls(
      this.#writes(raw, netnsCookie, port),
      from,
      target,
      entry === undefined || entry.outboundPort !== port,
    );
    if (failure) {
      const where = failure.port === undefined ? netnsPath : `port ${failure.port} of ${netnsPath}`;
      throw site.fail(failure.op, failure.errno, where);
    }
    return { netnsCookie };
  }

  #writes(raw: RawDatapath, cookie: bigint, outboundPort: number): MtlsWrites {
    const { strict: strictMode, permissive } = this.#ctx.portMtls;
    return {
      writeDefault: (strict) =>
        raw.updateWorkload(NETNS, cookie, outboundPort, strict ? this.#ctx.strictFlag : 0),
      writePort: (port, strict) => raw.updatePortMtls(cookie, port, strict ? strictMode : permissive),
      deletePort: (port) => raw.deletePortMtls(cookie, port),
    };
  }

  #netnsEntry(
    site: CallSite,
    raw: RawDatapath,
    cookie: bigint,
  ): { outboundPort: number; strict: boolean } | undefined {
    const list = raw.listWorkloads(NETNS);
    if (typeof list === "number") throw site.fail("list enrolled workloads", list);
    const found = list.find(([id]) => id === cookie);
    return found && { outboundPort: found[1], strict: (found[2] & this.#ctx.strictFlag) !== 0 };
  }

  /** The kernel's per-port entries, by netns cookie; a value that is not PERMISSIVE reads as STRICT, as in BPF. */
  #allPorts(site: CallSite, raw: RawDatapath): Map<bigint, Map<number, boolean>> {
    const list = raw.listPortMtls();
    if (typeof list === "number") throw site.fail("list per-port PeerAuthentication entries", list);
    const out = new Map<bigint, Map<number, boolean>>();
    for (const [cookie, port, mode] of list) {
      const ports = out.get(cookie) ?? new Map<number, boolean>();
      ports.set(port, mode !== this.#ctx.portMtls.permissive);
      out.set(cookie, ports);
    }
    return out;
  }

  #portsOf(site: CallSite, raw: RawDatapath, cookie: bigint): Map<number, boolean> {
    return this.#allPorts(site, raw).get(cookie) ?? new Map();
  }

  /** Stops redirecting and filtering for the pod: its nm_netns entry first, then its port entries. */
  unenrollNetns(netnsCookie: bigint): void {
    const site = new CallSite(this.unenrollNetns);
    if (typeof netnsCookie !== "bigint" || netnsCookie <= 0n)
      throw invalid(`netns cookie ${String(netnsCookie)} must be a positive bigint`);
    const raw = this.#open(site);
    Datapath.#check(site, "delete enrolled netns", raw.deleteWorkload(NETNS, netnsCookie));
    for (const port of this.#portsOf(site, raw, netnsCookie).keys()) {
      Datapath.#check(
        site,
        "delete per-port PeerAuthentication entry",
        raw.deletePortMtls(netnsCookie, port),
        `port ${port} of netns cookie ${netnsCookie}`,
      );
    }
  }

  /** Redirect connections made by tasks in exactly this cgroup v2 directory (not its children). */
  enrollCgroup(cgroupPath: string, opts?: EnrollOptions): { cgroupId: bigint } {
    const site = new CallSite(this.enrollCgroup);
    const path = check.checkAbsolutePath(cgroupPath, "cgroup path");
    const port = this.#port(opts);
    if (!path.startsWith(this.#ctx.cgroup2Mount)) {
      throw invalid(
        `cgroup ${path} is not under the cgroup v2 mount ${this.#ctx.cgroup2Mount}; pass a cgroup v2 directory`,
      );
    }
    let cgroupId: bigint;
    try {
      const st = statSync(path, { bigint: true });
      if (!st.isDirectory()) throw new Error("not a directory");
      cgroupId = st.ino; // a cgroup v2 id is its kernfs inode number
    } catch (cause) {
      throw new NativeError(
        "NODEMESH_ERR_NATIVE_INVALID_ARGUMENT",
        `cgroup ${path} does not exist; check the workload's cgroup path`,
        { cause },
      );
    }
    Datapath.#check(
      site,
      "update enrolled cgroup",
      this.#open(site).updateWorkload(CGROUP, cgroupId, port, 0),
      path,
    );
    return { cgroupId };
  }

  unenrollCgroup(cgroupId: bigint): void {
    const site = new CallSite(this.unenrollCgroup);
    if (typeof cgroupId !== "bigint" || cgroupId <= 0n)
      throw invalid(`cgroup id ${String(cgroupId)} must be a positive bigint`);
    Datapath.#check(site, "delete enrolled cgroup", this.#open(site).deleteWorkload(CGROUP, cgroupId));
  }

  /** What is enrolled now (including what a previous agent enrolled). */
  workloads(): { netns: WorkloadEntry[]; cgroups: WorkloadEntry[] } {
    const site = new CallSite(this.workloads);
    const ports = this.#allPorts(site, this.#open(site));
    const list = (kind: 0 | 1): WorkloadEntry[] => {
      const result = this.#open(site).listWorkloads(kind);
      if (typeof result === "number") throw site.fail("list enrolled workloads", result);
      return result.map(([id, outboundPort, flags]) => ({
        id,
        outboundPort,
        strict: (flags & this.#ctx.strictFlag) !== 0,
        ports: kind === NETNS ? sortedPorts(ports.get(id)) : [],
      }));
    };
    return { netns: list(NETNS), cgroups: list(CGROUP) };
  }

  /** Plaintext connection attempts (SYNs) dropped at STRICT ports, by netns cookie, since install. */
  plaintextDrops(): Map<bigint, bigint> {
    const site = new CallSite(this.plaintextDrops);
    const result = this.#open(site).plaintextDrops();
    if (typeof result === "number") throw site.fail("read plaintext drops", result);
    return new Map(result);
  }

  /** Replaces the set of meshed destinations ({ip, port}; port 0 = all ports of the ip). */
  setMeshedDestinations(dsts: readonly Destination[]): void {
    const site = new CallSite(this.setMeshedDestinations);
    if (!Array.isArray(dsts)) throw invalid("meshed destinations must be an array of { address, port }");
    const addresses = dsts.map((d) => check.checkIpv4(d?.address, "meshed destination address"));
    const ports = dsts.map((d) => check.checkPort(d?.port, "meshed destination port", true));
    Datapath.#check(site, "update meshed destinations", this.#open(site).setDestinations(addresses, ports));
  }

  /** Sets the global capture mode and replaces the excluded ports and CIDRs. */
  setCaptureMode(mode: CaptureMode): void {
    const site = new CallSite(this.setCaptureMode);
    if (typeof mode?.allTcp !== "boolean") throw invalid("capture mode needs allTcp: boolean");
    const ports = (mode.excludePorts ?? []).map((p) => check.checkPort(p, "excluded port"));
    const cidrs = (mode.excludeCidrs ?? []).map((c) => check.checkCidr(c));
    const raw = this.#open(site);
    const result = raw.setCaptureMode(
      mode.allTcp,
      ports,
      cidrs.map((c) => c.address),
      cidrs.map((c) => c.prefix),
    );
    Datapath.#check(site, "update capture mode", result);
  }

  /**
   * The destination the application asked for, for a socket accepted on an in-pod listener;
   * undefined when the connection was not redirected by this instance.
   */
  originalDestination(socketOrFd: number | Socket): { address: string; port: number } | undefined {
    // Once per connection: the call site (a stack capture, ~3 % of a busy agent's CPU) is taken only on
    // failure, which is still inside this synchronous call, so the stack is the same.
    const raw = this.#raw ?? this.#open(new CallSite(this.originalDestination));
    const fd = typeof socketOrFd === "number" ? check.checkFd(socketOrFd) : check.socketFd(socketOrFd);
    const result = raw.originalDestination(fd);
    if (typeof result === "number")
      throw new CallSite(this.originalDestination).fail("read original destination", result, `fd ${fd}`);
    return result === null ? undefined : { address: result[0], port: result[1] };
  }

  /** Whether the sockmap shortcut is attached, and if not, why (a clear sentence for the log). */
  sockmapState(): SockmapState {
    const site = new CallSite(this.sockmapState);
    if (this.#ctx.sockmapUnavailable) return { enabled: false, reason: this.#ctx.sockmapUnavailable };
    const s = this.#open(site).sockmapStatus();
    if (s.enabled) return { enabled: true };
    if (s.errno === 0) return { enabled: false, reason: "not requested" };
    const err = site.fail(s.op, s.errno, this.pinDir, s.log);
    return { enabled: false, reason: s.log ? `${err.message}\n${s.log}` : err.message };
  }

  /** The shortcut's counters; undefined when it is not attached. */
  sockmapStats(): SockmapStats | undefined {
    const site = new CallSite(this.sockmapStats);
    const r = this.#open(site).sockmapStats();
    if (typeof r === "number") {
      if (r === -2) return undefined;
      throw site.fail("read sockmap counters", r);
    }
    const [redirectedMsgs = 0n, redirectedBytes = 0n, passedMsgs = 0n, inserted = 0n] = r;
    return { redirectedMsgs, redirectedBytes, passedMsgs, inserted };
  }

  /** The sockets the shortcut holds now (the kernel removes each when it closes); [] when off. */
  sockPairs(): SockPair[] {
    const site = new CallSite(this.sockPairs);
    const r = this.#open(site).sockPairs();
    if (typeof r === "number") {
      if (r === -2) return [];
      throw site.fail("list sockmap pairs", r);
    }
    return r.map(([netnsCookie, la, lp, ra, rp]) => ({
      netnsCookie,
      local: { address: la, port: lp },
      remote: { address: ra, port: rp },
    }));
  }

  /** Kernel ids of this instance's links, programs and maps. */
  kernelObjects(): KernelObjects {
    const site = new CallSite(this.kernelObjects);
    const result = this.#open(site).kernelObjects();
    if (typeof result === "number") throw site.fail("read kernel object ids", result);
    return result;
  }

  /** Releases this process's handles; the pinned programs keep redirecting. Idempotent. */
  close(): void {
    this.#raw?.close();
    this.#raw = undefined;
  }

  /** Detaches the programs and removes every link, map and pin of this instance. */
  uninstall(): void {
    const site = new CallSite(this.uninstall);
    const result = this.#open(site).uninstall();
    this.#raw = undefined;
    if (result.errno < 0) throw site.fail(result.op, result.errno, this.pinDir);
  }
}

function sortedPorts(ports: ReadonlyMap<number, boolean> | undefined): PortMtls[] {
  return [...(ports ?? [])].map(([port, strict]) => ({ port, strict })).sort((a, b) => a.port - b.port);
}

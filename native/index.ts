// The ONLY loader of nodemesh_native.node, and its typed facade. Inputs are validated here before
// any native call; native failures (-errno) become NativeError with `op`, `errno`, `errnoCode`
// and a NODEMESH_ERR_NATIVE_* code. See docs/capture.md for the design.
//
// The addon is found at $NODEMESH_NATIVE_ADDON, else native/build/Release/ (cmake-js), else
// build/Release/ (node-gyp); the BPF objects (connect, sockops, ingress, getpeername .bpf.o) sit next to it.
// It is loaded lazily, so importing this module never fails on a machine without the build.
import { closeSync, existsSync, readFileSync, statSync } from "node:fs";
import { isIPv4 } from "node:net";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isFailure } from "./binding.ts";
import type { NativeAddon } from "./binding.ts";
import { Datapath } from "./datapath.ts";
import { CallSite, NativeError } from "./errors.ts";
import { assessFeatures, describeMissing, findCgroup2Mount } from "./features.ts";
import type { FeatureReport } from "./features.ts";
import * as check from "./validate.ts";

export { Datapath } from "./datapath.ts";
export type {
  Destination,
  CaptureMode,
  EnrollOptions,
  PortMtls,
  SockmapState,
  SockmapStats,
  SockPair,
  WorkloadEntry,
} from "./datapath.ts";
export type { KernelObjects } from "./binding.ts";
export { NativeError } from "./errors.ts";
export type { NativeErrorCode } from "./errors.ts";
export type { FeatureReport, MissingFeature } from "./features.ts";

/** Default pin directory; each agent instance on a kernel needs its own. */
export const DEFAULT_PIN_DIR = "/sys/fs/bpf/nodemesh";
const BPFFS_ROOT = "/sys/fs/bpf";

let loaded: { addon: NativeAddon; dir: string } | undefined;

function addonCandidates(): string[] {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  const fromEnv = process.env["NODEMESH_NATIVE_ADDON"];
  return [
    ...(fromEnv ? [resolve(fromEnv)] : []),
    join(root, "native/build/Release/nodemesh_native.node"),
    join(root, "build/Release/nodemesh_native.node"),
  ];
}

function native(): { addon: NativeAddon; dir: string } {
  if (loaded) return loaded;
  const path = addonCandidates().find((p) => existsSync(p));
  if (!path) {
    throw new NativeError(
      "NODEMESH_ERR_NATIVE_ADDON_MISSING",
      `nodemesh_native.node not found in ${addonCandidates().join(", ")}; run \`npm run build:native\``,
    );
  }
  const addon = createRequire(import.meta.url)(path) as NativeAddon;
  loaded = { addon, dir: dirname(path) };
  return loaded;
}

/** The agent's SO_MARK (native/include/mesh_shared.h NM_AGENT_MARK); never redirected. */
export function agentMark(): number {
  return native().addon.agentMark;
}

/** The mark of inbound delivery sockets (see NetnsHandle.routeDeliveryReplies). */
export function deliveryMark(): number {
  return native().addon.deliveryMark;
}

/** The pod-namespace routing table and rule priority of delivery replies (unused by anything else). */
export const DELIVERY_TABLE = 1338;
export const DELIVERY_RULE_PREF = 1338;
export function defaultOutboundPort(): number {
  return native().addon.defaultOutboundPort;
}

/** Measures what the kernel and our privileges allow; never throws for a missing feature. */
export function probeFeatures(): FeatureReport {
  const { addon } = native();
  const cgroup2Mount = findCgroup2Mount(readFileSync("/proc/mounts", "utf8"));
  const bpffsMounted = addon.isBpffs(BPFFS_ROOT) === 1;
  return assessFeatures(addon.probe(), { cgroup2Mount, bpffsMounted });
}

/** probeFeatures(), throwing a NativeError that lists whatever is missing. */
export function probe(): FeatureReport {
  const report = probeFeatures();
  if (report.missing.length > 0) {
    const privilegeOnly = report.missing.every((m) => m.privilege);
    throw new NativeError(
      privilegeOnly ? "NODEMESH_ERR_NATIVE_PERMISSION" : "NODEMESH_ERR_NATIVE_UNSUPPORTED",
      `the node cannot run the nodemesh datapath, missing: ${describeMissing(report.missing)}`,
    );
  }
  return report;
}

function ensureBpffs(site: CallSite, pinDir: string): void {
  const { addon } = native();
  const parent = dirname(pinDir);
  const state = addon.isBpffs(parent);
  if (state === 1) return;
  if (state < 0) throw site.fail("statfs pin directory parent", state, parent);
  if (parent !== BPFFS_ROOT) {
    throw site.error(
      "NODEMESH_ERR_NATIVE_INVALID_ARGUMENT",
      `pin directory ${pinDir} is not on a bpffs mount; use a directory under ${BPFFS_ROOT}`,
    );
  }
  const err = addon.mountBpffs(BPFFS_ROOT);
  if (err < 0) throw site.fail("mount bpffs", err, BPFFS_ROOT);
}

export interface InstallOptions {
  /** bpffs directory of this instance (default /sys/fs/bpf/nodemesh). */
  pinDir?: string;
  /** cgroup v2 directory to attach to (default: the cgroup2 mount from /proc/mounts). */
  cgroupPath?: string;
  /**
   * Short-circuit the pod-local legs socket to socket (sockmap.bpf.c; default false). Optional: when
   * the kernel lacks sockmap or the load fails, install() still succeeds and `Datapath.sockmap`
   * says why it is off (`sockmapState()`). false also detaches a previous agent's shortcut from new connections.
   */
  sockmap?: boolean;
}

/** Loads and attaches the programs, or re-adopts the pinned ones of a previous agent. */
export async function install(opts: InstallOptions = {}): Promise<Datapath> {
  const site = new CallSite(install);
  const pinDir = check.checkAbsolutePath(opts.pinDir ?? DEFAULT_PIN_DIR, "pin directory");
  const report = probe();
  const cgroupPath = check.checkAbsolutePath(opts.cgroupPath ?? report.cgroup2Mount, "cgroup path");
  ensureBpffs(site, pinDir);
  const { addon, dir } = native();
  const sockmapWanted = opts.sockmap === true;
  const sockmapMissing = sockmapWanted && !report.sockmap.available;
  const req = {
    connectObj: join(dir, "connect.bpf.o"),
    sockopsObj: join(dir, "sockops.bpf.o"),
    ingressObj: join(dir, "ingress.bpf.o"),
    getpeernameObj: join(dir, "getpeername.bpf.o"),
    sockmapObj: sockmapWanted && !sockmapMissing ? join(dir, "sockmap.bpf.o") : "",
    pinDir,
    cgroupPath,
  };
  const result = await addon.install(req);
  if (isFailure(result))
    throw site.fail(result.op, result.errno, result.op.includes("cgroup") ? cgroupPath : pinDir, result.log);
  return new Datapath(result, {
    pinDir,
    cgroupPath,
    cgroup2Mount: report.cgroup2Mount ?? cgroupPath,
    cookieOf: netnsCookieOf,
    defaultOutboundPort: addon.defaultOutboundPort,
    strictFlag: addon.workloadStrictFlag,
    portMtls: { strict: addon.portMtlsStrict, permissive: addon.portMtlsPermissive, max: addon.maxPortMtls },
    sockmapUnavailable: sockmapMissing
      ? `the kernel lacks ${report.sockmap.missing.join(", ")} (CONFIG_BPF_STREAM_PARSER, Linux >= 5.15)`
      : undefined,
  });
}

/** Removes an instance's pins (detaching its links) without loading anything: recovery tool. */
export function removePins(pinDir: string): void {
  const site = new CallSite(removePins);
  const result = native().addon.purgePins(check.checkAbsolutePath(pinDir, "pin directory"));
  if (result.errno < 0) throw site.fail(result.op, result.errno, pinDir);
}

function checkNetnsPath(path: unknown): string {
  const netnsPath = check.checkAbsolutePath(path, "network namespace path");
  try {
    statSync(netnsPath);
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).errno ?? -2;
    if ((e as NodeJS.ErrnoException).code !== "ENOENT")
      throw new CallSite(checkNetnsPath).fail("open network namespace", errno, netnsPath);
    throw new NativeError(
      "NODEMESH_ERR_NATIVE_NETNS",
      `network namespace ${netnsPath} does not exist; check that the pod is running (/proc/<pid>/ns/net or /var/run/netns/<name>)`,
    );
  }
  return netnsPath;
}

async function openSocket(site: CallSite, req: Parameters<NativeAddon["openSocket"]>[0]): Promise<number> {
  const result = await native().addon.openSocket(req);
  if (isFailure(result)) {
    const subject = req.listen
      ? `${req.host}:${req.port} in ${req.netnsPath || "the agent namespace"}`
      : req.netnsPath;
    throw site.fail(result.op, result.errno, subject);
  }
  return result;
}

/** A listening TCP socket inside a network namespace; give the fd to net.Server#listen({ fd }). */
export async function listenInNetns(
  netnsPath: string,
  host: string,
  port: number,
  backlog = 511,
): Promise<number> {
  const site = new CallSite(listenInNetns);
  const req = {
    netnsPath: checkNetnsPath(netnsPath),
    host: check.checkIpv4(host, "listen address"),
    port: check.checkPort(port, "listen port"),
    backlog: check.checkBacklog(backlog),
    // The agent's mark on its listeners tells ingress.bpf.c they are the agent's, never filtered.
    mark: agentMark(),
    listen: true,
  };
  return openSocket(site, req);
}

/**
 * An unconnected TCP socket in a namespace (or the agent's own when netnsPath is undefined),
 * carrying `mark` (default: the agent mark, so connect4 leaves it alone). Wrap it with
 * `new net.Socket({ fd })` and connect.
 */
export async function socketInNetns(
  netnsPath: string | undefined,
  opts: { mark?: number } = {},
): Promise<number> {
  const site = new CallSite(socketInNetns);
  const mark = check.checkMark(opts.mark ?? agentMark());
  const path = netnsPath === undefined ? "" : checkNetnsPath(netnsPath);
  return openSocket(site, { netnsPath: path, host: "", port: 0, backlog: 0, mark, listen: false });
}

/**
 * A network namespace held open, for creating many sockets in it cheaply: `socket()` switches the
 * calling thread into the namespace and straight back (a few microseconds), where socketInNetns runs
 * a thread per call (~200 us of CPU). The agent keeps one per enrolled pod for inbound delivery.
 */
export class NetnsHandle {
  readonly path: string;
  #fd: number;

  /** Use openNetns(). */
  constructor(path: string, fd: number) {
    this.path = path;
    this.#fd = fd;
  }

  /** An unconnected TCP socket in the namespace carrying `mark` (default: the agent mark). */
  socket(opts: { mark?: number } = {}): number {
    // Once per delivered connection: the call site (a stack capture) is taken only on failure, still
    // inside this synchronous call.
    if (this.#fd < 0)
      throw new CallSite(this.socket).error(
        "NODEMESH_ERR_NATIVE_CLOSED",
        `network namespace handle ${this.path} is closed`,
      );
    const fd = native().addon.socketInNetnsSync(this.#fd, check.checkMark(opts.mark ?? agentMark()));
    if (isFailure(fd)) throw new CallSite(this.socket).fail(fd.op, fd.errno, this.path);
    return fd;
  }

  /**
   * Makes the namespace route the application's replies on delivery connections (sockets marked
   * deliveryMark() and bound with bindSource()) back to the agent over loopback: tcp_fwmark_accept,
   * one fwmark rule and one local route in a table of its own. Idempotent; `remove` undoes the rule
   * and the route (the sysctl stays: only delivery SYNs carry a mark into the pod).
   */
  routeDeliveryReplies(opts: { remove?: boolean } = {}): void {
    const site = new CallSite(this.routeDeliveryReplies);
    if (this.#fd < 0)
      throw site.error("NODEMESH_ERR_NATIVE_CLOSED", `network namespace handle ${this.path} is closed`);
    const r = native().addon.routeDeliveryReplies(
      this.#fd,
      deliveryMark(),
      DELIVERY_TABLE,
      DELIVERY_RULE_PREF,
      opts.remove === true,
    );
    if (isFailure(r)) throw site.fail(r.op, r.errno, this.path);
  }

  close(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }
}

/**
 * Binds an unconnected TCP socket to `ip` with IP_TRANSPARENT (the address need not be the namespace's
 * own), its port picked at connect: the inbound delivery then reaches the application from the client
 * pod's address. Needs CAP_NET_ADMIN.
 */
export function bindSource(fd: number, ip: string): void {
  // Once per delivered connection: the call site is taken only on failure (see NetnsHandle.socket).
  if (!isIPv4(ip))
    throw new CallSite(bindSource).error(
      "NODEMESH_ERR_NATIVE_INVALID_ARGUMENT",
      `source address "${ip}" is not IPv4`,
    );
  const r = native().addon.bindSource(check.checkFd(fd), ip);
  if (isFailure(r)) throw new CallSite(bindSource).fail(r.op, r.errno, ip);
}

/** Holds the network namespace at netnsPath open (see NetnsHandle). */
export function openNetns(netnsPath: string): NetnsHandle {
  const site = new CallSite(openNetns);
  const path = checkNetnsPath(netnsPath);
  const fd = native().addon.openNetns(path);
  if (isFailure(fd)) throw site.fail(fd.op, fd.errno, path);
  return new NetnsHandle(path, fd);
}

/** The kernel's cookie of a network namespace (the key of enrolled workloads). */
export async function netnsCookieOf(netnsPath: string): Promise<bigint> {
  const site = new CallSite(netnsCookieOf);
  const path = checkNetnsPath(netnsPath);
  const result = await native().addon.netnsCookieOf(path);
  if (isFailure(result)) throw site.fail(result.op, result.errno, path);
  return result;
}

/** setsockopt(SO_MARK); the agent marks its own sockets with agentMark(). */
export function setSocketMark(fd: number, mark: number): void {
  const site = new CallSite(setSocketMark);
  const err = native().addon.setMark(check.checkFd(fd), check.checkMark(mark));
  if (err < 0) throw site.fail("setsockopt SO_MARK", err, `fd ${fd}`);
}

/**
 * A copy, in this process, of file descriptor `fd` of process `pid` (pidfd_getfd: the same open
 * socket, held by both). Needs the right to ptrace `pid` (root, or CAP_SYS_PTRACE).
 */
export function copyFdFrom(pid: number, fd: number): number {
  const site = new CallSite(copyFdFrom);
  if (!Number.isInteger(pid) || pid <= 0)
    throw site.error("NODEMESH_ERR_NATIVE_INVALID_ARGUMENT", `pid must be a positive integer, got ${pid}`);
  const result = native().addon.copyFdFrom(pid, check.checkFd(fd));
  if (result < 0) throw site.fail("pidfd_getfd", result, `fd ${fd} of pid ${pid}`);
  return result;
}

/** The address a listening IPv4 TCP socket is bound to; throws when `fd` is anything else. */
export function listenerAddress(fd: number): { host: string; port: number } {
  const site = new CallSite(listenerAddress);
  const result = native().addon.listenerAddress(check.checkFd(fd));
  if (typeof result === "number") throw site.fail("inspect listener", result, `fd ${fd}`);
  return { host: result[0], port: result[1] };
}

export { socketFd } from "./validate.ts";

// The real datapath: the native addon's cgroup/connect4 + sockops programs redirect an enrolled pod's
// connects to meshed destinations to 127.0.0.1:<outboundPort> inside the pod's own network namespace,
// where this agent holds a listener the addon opened there (ztunnel's in-pod model). The inbound HBONE
// listener is opened in the pod's namespace the same way. With native-layer.ts, the only importer of native/.
//
// Invariants:
// - A workload is enrolled in the kernel only after both its listeners exist, and unenrolled before they
//   close, so a redirected connect never meets a closed port because of ordering on our side.
// - A workload whose listeners cannot be opened is held in the kernel instead (outbound port 0): its
//   meshed connects are refused, never sent around the mesh, until a later enroll() succeeds.
// - close() keeps the kernel state (pins): while the agent restarts, a pod's meshed connects never escape
//   the mesh; the next agent re-adopts the pins and re-enrolls. With the node's socket keeper
//   (kept-listeners.ts) the in-pod listeners survive too, so those connects wait in their accept queues
//   for the next agent (up to the keeper's grace time); without it they are refused (fail closed).
import { closeSync, existsSync } from "node:fs";
import { Socket, type Server } from "node:net";
import { isAbsolute, join } from "node:path";
import type * as native from "../../native/index.ts";
import { DatapathError } from "../errors.ts";
import type { KeptListeners } from "./kept-listeners.ts";
import { NATIVE, type NativeLayer } from "./native-layer.ts";
import {
  checkMtlsPlan,
  type Datapath,
  type Destination,
  type EnrolledListeners,
  type KernelEnrollment,
  type LocalWorkload,
  type MtlsPlan,
} from "./datapath.ts";

export interface EbpfDatapathOptions {
  /** bpffs directory of this agent's programs and maps (one per agent on a kernel). */
  readonly pinDir: string;
  /** cgroup v2 directory to attach at; default: the cgroup2 mount root. */
  readonly cgroupPath?: string;
  readonly outboundPort: number;
  readonly hbonePort: number;
  /**
   * Short-circuit the pod-local legs socket to socket (native/bpf/sockmap.bpf.c). Best effort: a kernel
   * without sockmap leaves it off (sockmapState() says why) and the mesh works as without it.
   */
  readonly sockmap?: boolean;
}

/** A workload the current config places on this node, and where (undefined: not known). */
export interface PlacedWorkload {
  readonly uid: string;
  readonly netns: string | undefined;
}

export interface PruneResult {
  /** Inherited enrollments removed: they belong to no workload placed here. */
  readonly pruned: number;
  /** Inherited enrollments kept for a placed workload this agent has not enrolled (its enroll failed). */
  readonly kept: readonly { uid: string; netnsCookie: bigint }[];
  /** Placed workloads not enrolled here whose netns could not be resolved: nothing was pruned. */
  readonly unresolved: readonly string[];
}

interface Enrolled {
  readonly outbound: Server;
  readonly inbound: Server;
  readonly netnsCookie: bigint;
  readonly netnsPath: string;
  /** The pod's namespace held open: inbound delivery sockets are made in it. */
  readonly netns: Pick<native.NetnsHandle, "socket" | "routeDeliveryReplies" | "close">;
  /** Why deliveries cannot come from the client's address here; undefined = they do. */
  readonly sourceUnavailable: string | undefined;
  /** Lets the socket keeper close its copies of the two listeners (the workload is gone for good). */
  readonly forget: () => Promise<void>;
}

/** `ip netns` names live under /run/netns; absolute paths (e.g. /proc/<pid>/ns/net) are used as given. */
export function resolveNetnsPath(netns: string): string {
  if (isAbsolute(netns)) return netns;
  if (!/^[A-Za-z0-9_.-]+$/.test(netns)) throw new DatapathError(`invalid network namespace name "${netns}"`);
  return join("/run/netns", netns);
}

export class EbpfDatapath implements Datapath {
  readonly #dp: native.Datapath;
  readonly #opts: EbpfDatapathOptions;
  readonly #native: NativeLayer;
  readonly #enrolled = new Map<string, Enrolled>();
  /** Netns cookies of workloads held in the kernel because their listeners could not be opened (#hold). */
  readonly #held = new Map<string, bigint>();
  /** Cookies a previous agent enrolled; pruned once this agent has enrolled its own workloads. */
  readonly #inherited: Set<bigint>;
  /** Set on agent shutdown: releases keep the kernel enrollment so the next agent takes over seamlessly. */
  #keepEnrollment = false;
  /** The node's socket keeper, when there is one: the in-pod listeners outlive this agent. */
  #kept: KeptListeners | undefined;

  private constructor(dp: native.Datapath, opts: EbpfDatapathOptions, layer: NativeLayer) {
    this.#dp = dp;
    this.#opts = opts;
    this.#native = layer;
    this.#inherited = new Set(dp.workloads().netns.map((w) => w.id));
  }

  /** Loads and attaches the programs, or re-adopts the pinned ones a previous agent left. */
  static async open(opts: EbpfDatapathOptions, layer: NativeLayer = NATIVE): Promise<EbpfDatapath> {
    const dp = await layer.install({
      pinDir: opts.pinDir,
      sockmap: opts.sockmap === true,
      ...(opts.cgroupPath ? { cgroupPath: opts.cgroupPath } : {}),
    });
    return new EbpfDatapath(dp, opts, layer);
  }

  get adopted(): boolean {
    return this.#dp.adopted;
  }

  /** From now on the in-pod listeners are taken from, and given to, the node's socket keeper. */
  useKeptListeners(kept: KeptListeners): void {
    this.#kept = kept;
  }

  async #listeners(path: string): Promise<{ outbound: Server; inbound: Server; forget(): Promise<void> }> {
    const kept = this.#kept;
    const cookie = kept ? await this.#native.netnsCookieOf(path) : undefined;
    const open = (host: string, port: number) =>
      kept && cookie !== undefined
        ? kept.open(path, cookie, host, port)
        : this.#native.listen(path, host, port);
    const forget = async (ports: readonly (readonly [string, number])[]) => {
      if (kept && cookie !== undefined) for (const [h, p] of ports) await kept.release(cookie, h, p);
    };
    const out: readonly [string, number] = ["127.0.0.1", this.#opts.outboundPort];
    const inb: readonly [string, number] = ["0.0.0.0", this.#opts.hbonePort];
    const outbound = await open(...out);
    try {
      const inbound = await open(...inb);
      return { outbound, inbound, forget: () => forget([out, inb]) };
    } catch (err) {
      outbound.close();
      await forget([out]);
      throw err;
    }
  }

  async enroll(w: LocalWorkload): Promise<EnrolledListeners> {
    if (this.#enrolled.has(w.uid)) throw new DatapathError(`workload ${w.uid} is already enrolled`);
    if (!w.netns) {
      throw new DatapathError(
        `workload ${w.uid} has no network namespace; set spec.netns (cgroup-only workloads share the node's namespace and are not supported yet)`,
      );
    }
    const plan = checkMtlsPlan(w.uid, w.mtls);
    const path = resolveNetnsPath(w.netns);
    if (!existsSync(path))
      throw new DatapathError(`network namespace ${path} of workload ${w.uid} does not exist`);
    const { outbound, inbound, forget } = await this.#listeners(path).catch((err: unknown) =>
      this.#hold(w.uid, path, plan, err),
    );
    try {
      const netns = this.#native.openNetns(path);
      const { netnsCookie } = await this.#dp
        .enrollNetns(path, { outboundPort: this.#opts.outboundPort, ...kernelPlan(plan) })
        .catch((err: unknown) => {
          netns.close();
          throw err;
        });
      this.#inherited.delete(netnsCookie);
      this.#setHold(w.uid, netnsCookie, false);
      const sourceUnavailable = routeReplies(netns);
      this.#enrolled.set(w.uid, {
        outbound,
        inbound,
        netnsCookie,
        netnsPath: path,
        netns,
        forget,
        sourceUnavailable,
      });
      return { outbound, inbound, ...(sourceUnavailable ? { sourceUnavailable } : {}) };
    } catch (err) {
      outbound.close();
      inbound.close();
      await forget();
      throw err;
    }
  }

  /**
   * The in-pod listeners could not be opened (a process of the pod holds the port, say): the pod is
   * enrolled in the kernel as held, so its meshed connects are refused instead of going around the
   * mesh, with its PeerAuthentication still enforced; the next enroll() replaces the hold. Always
   * throws: the listeners' error, saying what the pod's traffic gets meanwhile.
   */
  async #hold(uid: string, path: string, plan: MtlsPlan, err: unknown): Promise<never> {
    const why = (err as Error).message;
    try {
      const { netnsCookie } = await this.#dp.enrollNetns(path, { refuse: true, ...kernelPlan(plan) });
      this.#inherited.delete(netnsCookie);
      this.#setHold(uid, netnsCookie, true);
    } catch (holdErr) {
      throw new DatapathError(
        `cannot open the in-pod listeners of workload ${uid} (${why}), nor hold its connects in the kernel ` +
          `(${(holdErr as Error).message})`,
        { cause: err },
      );
    }
    throw new DatapathError(
      `cannot open the in-pod listeners of workload ${uid}: ${why}; its connects to meshed destinations ` +
        "are refused until they open",
      { cause: err },
    );
  }

  /**
   * Records whether the workload is held, now that `cookie` is its namespace in the kernel. A hold of
   * another namespace (a recreated sandbox) is removed: it would match nothing but stay in the map.
   */
  #setHold(uid: string, cookie: bigint, held: boolean): void {
    const before = this.#held.get(uid);
    if (before !== undefined && before !== cookie) this.#dp.unenrollNetns(before);
    if (held) this.#held.set(uid, cookie);
    else this.#held.delete(uid);
  }

  /** Workloads held in the kernel (#hold), whose meshed connects are refused. */
  heldWorkloads(): string[] {
    return [...this.#held.keys()];
  }

  async release(uid: string): Promise<void> {
    const heldCookie = this.#held.get(uid);
    if (heldCookie !== undefined) {
      this.#held.delete(uid);
      if (!this.#keepEnrollment) this.#dp.unenrollNetns(heldCookie);
    }
    const e = this.#enrolled.get(uid);
    if (!e) return;
    this.#enrolled.delete(uid);
    if (!this.#keepEnrollment) {
      this.#dp.unenrollNetns(e.netnsCookie);
      // Best effort: a pod that is gone took its routing with it, and a leftover rule matches nothing.
      if (e.sourceUnavailable === undefined) routeReplies(e.netns, true);
    }
    e.netns.close();
    await Promise.all([closeServer(e.outbound), closeServer(e.inbound)]);
    if (!this.#keepEnrollment) await e.forget();
  }

  /**
   * From now on, releases close the listeners but keep the pods enrolled in the kernel (agent shutdown or
   * upgrade): the pods' meshed connects are refused until the next agent listens, never sent around the mesh.
   */
  keepEnrollmentOnRelease(): void {
    this.#keepEnrollment = true;
  }

  /**
   * Unenrolls the namespaces a previous agent enrolled that belong to no workload the current config
   * places here. An inherited enrollment of a placed workload this agent could not enroll is kept: it
   * still redirects (to a port nobody listens on: refused) and filters, where removing it would let
   * the pod bypass the mesh. When a placed, unenrolled workload's netns cannot be resolved to a
   * cookie, any inherited enrollment may be its own, so none is removed (fail closed).
   */
  async pruneInherited(placed: readonly PlacedWorkload[]): Promise<PruneResult> {
    const enrolledUids = new Set(this.#enrolled.keys());
    const owners = new Map<bigint, string>();
    const unresolved: string[] = [];
    for (const w of placed) {
      if (enrolledUids.has(w.uid)) continue;
      const cookie = w.netns === undefined ? undefined : await this.#cookieOf(w.netns);
      if (cookie === undefined) unresolved.push(w.uid);
      else owners.set(cookie, w.uid);
    }
    const kept: { uid: string; netnsCookie: bigint }[] = [];
    for (const cookie of this.#inherited) {
      const uid = owners.get(cookie);
      if (uid !== undefined) kept.push({ uid, netnsCookie: cookie });
    }
    if (unresolved.length > 0) return { pruned: 0, kept, unresolved };
    let pruned = 0;
    for (const cookie of [...this.#inherited]) {
      if (owners.has(cookie)) continue;
      this.#dp.unenrollNetns(cookie);
      this.#inherited.delete(cookie);
      pruned++;
    }
    return { pruned, kept, unresolved };
  }

  async #cookieOf(netns: string): Promise<bigint | undefined> {
    try {
      return await this.#native.netnsCookieOf(resolveNetnsPath(netns));
    } catch {
      return undefined;
    }
  }

  /**
   * Moves the kernel to the new plan; on failure the kernel refuses plaintext on at least the ports
   * the previous plan refused it on (native Datapath.enrollNetns), and the error says why.
   */
  async setMtls(uid: string, plan: MtlsPlan): Promise<void> {
    const e = this.#enrolled.get(uid);
    if (!e) throw new DatapathError(`workload ${uid} is not enrolled`);
    const checked = checkMtlsPlan(uid, plan);
    try {
      await this.#dp.enrollNetns(e.netnsPath, {
        outboundPort: this.#opts.outboundPort,
        ...kernelPlan(checked),
      });
    } catch (err) {
      throw new DatapathError(
        `cannot apply the PeerAuthentication of workload ${uid} in the kernel: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  /**
   * The socket is created inside the pod's namespace and connects to the pod's own address over
   * loopback: the path ingress.bpf.c lets through for a STRICT workload. Given `source` (the client
   * pod's proven address), it is bound there with IP_TRANSPARENT and carries the delivery mark, which
   * the pod routes back to it (routeReplies): the application sees the client as its peer. Without one,
   * or where the pod's routing could not be set up, it carries the agent mark and the application sees
   * its own address. Either mark keeps connect4 away.
   */
  async connectApp(uid: string, address: string, port: number, source?: string): Promise<Socket> {
    const e = this.#enrolled.get(uid);
    if (!e) throw new DatapathError(`workload ${uid} is not enrolled`);
    const transparent = source !== undefined && source !== address && e.sourceUnavailable === undefined;
    const fd = transparent ? e.netns.socket({ mark: this.#native.deliveryMark() }) : e.netns.socket();
    if (transparent) {
      try {
        this.#native.bindSource(fd, source);
      } catch (err) {
        closeSync(fd);
        throw new DatapathError(
          `cannot deliver to workload ${uid} from the client address ${source}: ${(err as Error).message}`,
          { cause: err },
        );
      }
    }
    const socket = new Socket({ fd, allowHalfOpen: true, readable: true, writable: true });
    socket.setNoDelay(true);
    socket.connect(port, address);
    return socket;
  }

  /** Plaintext SYNs the kernel refused at STRICT ports, per enrolled workload, since the programs were installed. */
  plaintextRefused(): { uid: string; count: number }[] {
    const drops = this.#dp.plaintextDrops();
    const out: { uid: string; count: number }[] = [];
    for (const [uid, e] of this.#enrolled) {
      const n = drops.get(e.netnsCookie);
      if (n !== undefined) out.push({ uid, count: Number(n) });
    }
    return out;
  }

  /** Reads the kernel map back: what the BPF programs see, not what this agent believes it enrolled. */
  kernelEnrollment(uid: string): KernelEnrollment | undefined {
    const e = this.#enrolled.get(uid);
    if (!e) return undefined;
    const entry = this.#dp.workloads().netns.find((w) => w.id === e.netnsCookie);
    return { enrolled: entry !== undefined, strict: entry?.strict ?? false, ports: entry?.ports ?? [] };
  }

  setMeshedDestinations(dsts: readonly Destination[]): void {
    this.#dp.setMeshedDestinations(dsts.map((d) => ({ address: d.address, port: d.port })));
  }

  /** All-TCP capture in the kernel (nm_config.all_tcp): one map write, applied to the next connect. */
  setCaptureAll(on: boolean): void {
    this.#dp.setCaptureMode({ allTcp: on });
  }

  originalDestination(socket: Socket): Destination | undefined {
    return this.#dp.originalDestination(socket);
  }

  /** Whether the sockmap shortcut is on, and if not, why. */
  sockmapState(): native.SockmapState {
    return this.#dp.sockmapState();
  }

  /** Kernel objects (programs, maps, links) for the config dump, with the sockmap shortcut's state and counters. */
  kernelObjects(): object {
    const stats = this.#dp.sockmapStats();
    const sockmap = {
      ...this.#dp.sockmapState(),
      ...(stats ? Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, Number(v)])) : {}),
    };
    return { pinDir: this.#dp.pinDir, adopted: this.#dp.adopted, ...this.#dp.kernelObjects(), sockmap };
  }

  async close(): Promise<void> {
    const all = [...this.#enrolled.values()];
    this.#enrolled.clear();
    for (const e of all) e.netns.close();
    await Promise.all(all.flatMap((e) => [closeServer(e.outbound), closeServer(e.inbound)]));
    this.#kept?.close();
    this.#dp.close();
  }

  /** Removes every kernel object of this agent (`nodemesh agent --uninstall`), and stops its keeper. */
  async uninstall(): Promise<void> {
    await this.#kept?.stopKeeper();
    await this.close().catch(() => undefined);
    this.#native.removePins(this.#opts.pinDir);
  }
}

function kernelPlan(plan: MtlsPlan): { strict: boolean; ports: { port: number; strict: boolean }[] } {
  return { strict: plan.strict, ports: plan.ports.map((p) => ({ port: p.port, strict: p.strict })) };
}

/** Stops listening at once; accepted connections are the proxy's to drain, so this does not wait for them. */
function closeServer(server: Server): Promise<void> {
  server.close();
  return Promise.resolve();
}

export type { NativeLayer } from "./native-layer.ts";

/**
 * Sets up (or with `remove`, takes down) the pod's routing of delivery replies; the reason it could not
 * be set up, else undefined. Not fatal: the workload is then served with its own address as the peer.
 */
function routeReplies(
  netns: Pick<native.NetnsHandle, "routeDeliveryReplies">,
  remove = false,
): string | undefined {
  try {
    netns.routeDeliveryReplies({ remove });
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

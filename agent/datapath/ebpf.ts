// The real datapath: the native addon's cgroup/connect4 + sockops programs redirect an enrolled pod's
// connects to meshed destinations to 127.0.0.1:<outboundPort> inside the pod's own network namespace,
// where this agent holds a listener the addon opened there (ztunnel's in-pod model). The inbound HBONE
// listener is opened in the pod's namespace the same way. The only importer of native/.
//
// Invariants:
// - A workload is enrolled in the kernel only after both its listeners exist, and unenrolled before they
//   close, so a redirected connect never meets a closed port because of ordering on our side.
// - close() keeps the kernel state (pins): while the agent restarts, a pod's meshed connects are refused
//   (fail closed) instead of escaping the mesh; the next agent re-adopts the pins and re-enrolls.
import { existsSync } from "node:fs";
import { createServer, Socket, type Server } from "node:net";
import { isAbsolute, join } from "node:path";
import * as native from "../../native/index.ts";
import { DatapathError } from "../errors.ts";
import type { Datapath, Destination, EnrolledListeners, LocalWorkload } from "./datapath.ts";

export interface EbpfDatapathOptions {
  /** bpffs directory of this agent's programs and maps (one per agent on a kernel). */
  readonly pinDir: string;
  /** cgroup v2 directory to attach at; default: the cgroup2 mount root. */
  readonly cgroupPath?: string;
  readonly outboundPort: number;
  readonly hbonePort: number;
}

interface Enrolled {
  readonly outbound: Server;
  readonly inbound: Server;
  readonly netnsCookie: bigint;
  readonly netnsPath: string;
  /** The pod's namespace held open: inbound delivery sockets are made in it. */
  readonly netns: native.NetnsHandle;
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
  readonly #enrolled = new Map<string, Enrolled>();
  /** Cookies a previous agent enrolled; pruned once this agent has enrolled its own workloads. */
  readonly #inherited: Set<bigint>;
  /** Set on agent shutdown: releases keep the kernel enrollment so the next agent takes over seamlessly. */
  #keepEnrollment = false;

  private constructor(dp: native.Datapath, opts: EbpfDatapathOptions) {
    this.#dp = dp;
    this.#opts = opts;
    this.#inherited = new Set(dp.workloads().netns.map((w) => w.id));
  }

  /** Loads and attaches the programs, or re-adopts the pinned ones a previous agent left. */
  static async open(opts: EbpfDatapathOptions): Promise<EbpfDatapath> {
    const dp = await native.install({
      pinDir: opts.pinDir,
      ...(opts.cgroupPath ? { cgroupPath: opts.cgroupPath } : {}),
    });
    return new EbpfDatapath(dp, opts);
  }

  get adopted(): boolean {
    return this.#dp.adopted;
  }

  async enroll(w: LocalWorkload): Promise<EnrolledListeners> {
    if (this.#enrolled.has(w.uid)) throw new DatapathError(`workload ${w.uid} is already enrolled`);
    if (!w.netns) {
      throw new DatapathError(
        `workload ${w.uid} has no network namespace; set spec.netns (cgroup-only workloads share the node's namespace and are not supported yet)`,
      );
    }
    const path = resolveNetnsPath(w.netns);
    if (!existsSync(path))
      throw new DatapathError(`network namespace ${path} of workload ${w.uid} does not exist`);
    const outbound = await this.#serverInNetns(path, "127.0.0.1", this.#opts.outboundPort);
    let inbound: Server;
    try {
      inbound = await this.#serverInNetns(path, "0.0.0.0", this.#opts.hbonePort);
    } catch (err) {
      outbound.close();
      throw err;
    }
    try {
      const netns = native.openNetns(path);
      const { netnsCookie } = await this.#dp
        .enrollNetns(path, { outboundPort: this.#opts.outboundPort, strict: w.strict })
        .catch((err: unknown) => {
          netns.close();
          throw err;
        });
      this.#inherited.delete(netnsCookie);
      this.#enrolled.set(w.uid, { outbound, inbound, netnsCookie, netnsPath: path, netns });
      return { outbound, inbound };
    } catch (err) {
      outbound.close();
      inbound.close();
      throw err;
    }
  }

  async #serverInNetns(netnsPath: string, host: string, port: number): Promise<Server> {
    const fd = await native.listenInNetns(netnsPath, host, port);
    const server = createServer({ allowHalfOpen: true, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ fd }, () => {
        server.off("error", reject);
        resolve();
      });
    });
    return server;
  }

  async release(uid: string): Promise<void> {
    const e = this.#enrolled.get(uid);
    if (!e) return;
    this.#enrolled.delete(uid);
    if (!this.#keepEnrollment) this.#dp.unenrollNetns(e.netnsCookie);
    e.netns.close();
    await Promise.all([closeServer(e.outbound), closeServer(e.inbound)]);
  }

  /**
   * From now on, releases close the listeners but keep the pods enrolled in the kernel (agent shutdown or
   * upgrade): the pods' meshed connects are refused until the next agent listens, never sent around the mesh.
   */
  keepEnrollmentOnRelease(): void {
    this.#keepEnrollment = true;
  }

  /** Unenrolls namespaces a previous agent enrolled that this agent's config no longer places here. */
  pruneInherited(): number {
    const n = this.#inherited.size;
    for (const cookie of this.#inherited) this.#dp.unenrollNetns(cookie);
    this.#inherited.clear();
    return n;
  }

  async setStrict(uid: string, strict: boolean): Promise<void> {
    const e = this.#enrolled.get(uid);
    if (!e) throw new DatapathError(`workload ${uid} is not enrolled`);
    await this.#dp.enrollNetns(e.netnsPath, { outboundPort: this.#opts.outboundPort, strict });
  }

  /**
   * The socket is created inside the pod's namespace (carrying the agent mark, so connect4 leaves it
   * alone) and connects to the pod's own address over loopback: the path ingress.bpf.c lets through
   * for a STRICT workload. The application sees its own address as the peer.
   */
  async connectApp(uid: string, address: string, port: number): Promise<Socket> {
    const e = this.#enrolled.get(uid);
    if (!e) throw new DatapathError(`workload ${uid} is not enrolled`);
    const fd = e.netns.socket();
    const socket = new Socket({ fd, allowHalfOpen: true, readable: true, writable: true });
    socket.setNoDelay(true);
    socket.connect(port, address);
    return socket;
  }

  /** Plaintext SYNs the kernel refused, per enrolled workload (STRICT), since the programs were installed. */
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
  kernelEnrollment(uid: string): { enrolled: boolean; strict: boolean } | undefined {
    const e = this.#enrolled.get(uid);
    if (!e) return undefined;
    const entry = this.#dp.workloads().netns.find((w) => w.id === e.netnsCookie);
    return { enrolled: entry !== undefined, strict: entry?.strict ?? false };
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

  /** Kernel objects (programs, maps, links) for the config dump. */
  kernelObjects(): object {
    return { pinDir: this.#dp.pinDir, adopted: this.#dp.adopted, ...this.#dp.kernelObjects() };
  }

  async close(): Promise<void> {
    const all = [...this.#enrolled.values()];
    this.#enrolled.clear();
    for (const e of all) e.netns.close();
    await Promise.all(all.flatMap((e) => [closeServer(e.outbound), closeServer(e.inbound)]));
    this.#dp.close();
  }

  /** Removes every kernel object of this agent (`nodemesh agent --uninstall`). */
  async uninstall(): Promise<void> {
    await this.close().catch(() => undefined);
    native.removePins(this.#opts.pinDir);
  }
}

/** Stops listening at once; accepted connections are the proxy's to drain, so this does not wait for them. */
function closeServer(server: Server): Promise<void> {
  server.close();
  return Promise.resolve();
}

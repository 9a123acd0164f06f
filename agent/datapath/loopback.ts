// TEST AND DEV ONLY. A datapath on one host without namespaces or BPF: every workload is an address in
// 127.0.0.0/8 (its WorkloadEntry address, e.g. 127.0.1.x) where its HBONE listener binds port 15008
// (configurable) and where its application listens.
//
// Capture is simulated with one capture port per (workload, meshed destination): `captureAddress(uid,
// dst)` opens (once) a listener on 127.0.0.1:<ephemeral> whose connections are handed to the workload's
// outbound server with `dst` recorded as their original destination. A test client (curl, node:http,
// net.connect) connects to that port as if the kernel had redirected its connect(dst). Destinations not
// in `setMeshedDestinations` get no capture port (they bypass the mesh, as with the real datapath).
import { connect, createServer, type Server, type Socket } from "node:net";
import { DatapathError } from "../errors.ts";
import {
  checkMtlsPlan,
  type Datapath,
  type Destination,
  type EnrolledListeners,
  type LocalWorkload,
  type MtlsPlan,
} from "./datapath.ts";

interface Enrolled {
  readonly workload: LocalWorkload;
  /** The PeerAuthentication plan as last accepted (checked like the eBPF datapath, not enforced). */
  mtls: MtlsPlan;
  readonly outbound: Server;
  readonly inbound: Server;
  readonly captures: Map<string, Server>;
}

export class LoopbackDatapath implements Datapath {
  readonly #hbonePort: number;
  readonly #enrolled = new Map<string, Enrolled>();
  readonly #origDst = new WeakMap<Socket, Destination>();
  #meshed: readonly Destination[] = [];

  constructor(opts: { hbonePort?: number } = {}) {
    this.#hbonePort = opts.hbonePort ?? 15008;
  }

  async enroll(w: LocalWorkload): Promise<EnrolledListeners> {
    if (this.#enrolled.has(w.uid)) throw new DatapathError(`workload ${w.uid} is already enrolled`);
    if (!w.address.startsWith("127.")) {
      throw new DatapathError(`loopback datapath needs 127.0.0.0/8 workload addresses, got ${w.address}`);
    }
    const mtls = checkMtlsPlan(w.uid, w.mtls);
    const inbound = createServer({ allowHalfOpen: true, noDelay: true });
    await listen(inbound, this.#hbonePort, w.address);
    // Not listening itself: capture ports emit 'connection' on it (see captureAddress).
    const outbound = createServer({ allowHalfOpen: true, noDelay: true });
    this.#enrolled.set(w.uid, { workload: w, mtls, inbound, outbound, captures: new Map() });
    return { outbound, inbound };
  }

  async release(uid: string): Promise<void> {
    const e = this.#enrolled.get(uid);
    if (!e) return;
    this.#enrolled.delete(uid);
    await Promise.all([close(e.inbound), ...[...e.captures.values()].map(close)]);
  }

  setMeshedDestinations(dsts: readonly Destination[]): void {
    this.#meshed = [...dsts];
  }

  isMeshed(dst: Destination): boolean {
    return this.#meshed.some((m) => m.address === dst.address && (m.port === 0 || m.port === dst.port));
  }

  /**
   * One host has no namespaces to filter: the plan is checked and recorded (mtlsPlan) as the eBPF
   * datapath would take it, but plaintext is not refused (test/dev only).
   */
  async setMtls(uid: string, plan: MtlsPlan): Promise<void> {
    const e = this.#enrolled.get(uid);
    if (!e) throw new DatapathError(`workload ${uid} is not enrolled`);
    e.mtls = checkMtlsPlan(uid, plan);
  }

  /** The plan last accepted for an enrolled workload; undefined when it is not enrolled. */
  mtlsPlan(uid: string): MtlsPlan | undefined {
    return this.#enrolled.get(uid)?.mtls;
  }

  /** Without network namespaces there is no client address to take: deliveries come from the agent. */
  async connectApp(_uid: string, address: string, port: number, _source?: string): Promise<Socket> {
    return connect({ host: address, port, allowHalfOpen: true, noDelay: true });
  }

  originalDestination(socket: Socket): Destination | undefined {
    return this.#origDst.get(socket);
  }

  /**
   * Where a client in workload `uid` connects to reach `dst` through the agent; throws when `dst` is not
   * meshed (a real client would connect directly).
   */
  async captureAddress(uid: string, dst: Destination): Promise<{ host: string; port: number }> {
    const e = this.#enrolled.get(uid);
    if (!e) throw new DatapathError(`workload ${uid} is not enrolled`);
    if (!this.isMeshed(dst))
      throw new DatapathError(`${dst.address}:${dst.port} is not a meshed destination`);
    const key = `${dst.address}:${dst.port}`;
    let server = e.captures.get(key);
    if (!server) {
      const s = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
        this.#origDst.set(socket, dst);
        e.outbound.emit("connection", socket);
      });
      e.captures.set(key, s);
      await listen(s, 0, "127.0.0.1");
      server = s;
    }
    const addr = server.address();
    if (addr === null || typeof addr === "string") throw new DatapathError("capture listener has no address");
    return { host: "127.0.0.1", port: addr.port };
  }

  async close(): Promise<void> {
    await Promise.all([...this.#enrolled.keys()].map((uid) => this.release(uid)));
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", (err) =>
      reject(new DatapathError(`cannot listen on ${host}:${port}: ${err.message}`, { cause: err })),
    );
    server.listen(port, host, () => resolve());
  });
}

function close(server: Server): Promise<void> {
  // Stops accepting at once; established connections belong to the agent, so do not wait for them
  // (net.Server's close callback fires only when they have all ended).
  if (server.listening) server.close();
  return Promise.resolve();
}

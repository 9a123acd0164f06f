// An in-memory stand-in for the addon's RawDatapath: the workload and per-port mTLS maps as hash maps
// with the kernel's capacity rule (a new key in a full map is E2BIG, an existing key can always be
// updated), and a hook to fail any chosen write, for the unit tests of native/ and agent/datapath/.
import type { RawDatapath } from "../../../native/binding.ts";
import { Datapath, type DatapathContext } from "../../../native/datapath.ts";

export const STRICT_FLAG = 0x1;
export const PORT_STRICT = 1;
export const PORT_PERMISSIVE = 2;
const E2BIG = -7;

export type WriteOp = "updateWorkload" | "deleteWorkload" | "updatePortMtls" | "deletePortMtls";

export interface FakeKernelOptions {
  maxWorkloads?: number;
  maxPorts?: number;
  /** Entries a previous agent left: cookie → [outboundPort, flags]. */
  netns?: [bigint, number, number][];
  ports?: [bigint, number, number][];
}

export class FakeKernel {
  readonly netns = new Map<bigint, { outboundPort: number; flags: number }>();
  readonly ports = new Map<string, number>();
  /** Every successful write, in order. */
  readonly log: string[] = [];
  /** Returns -errno to fail this write (it then changes nothing), or 0 to let it through. */
  failWhen: (op: WriteOp, key: string) => number = () => 0;
  readonly #maxWorkloads: number;
  readonly #maxPorts: number;
  /** Called after every successful write: the tests check invariants on each intermediate state. */
  onWrite: () => void = () => undefined;

  constructor(opts: FakeKernelOptions = {}) {
    this.#maxWorkloads = opts.maxWorkloads ?? 4096;
    this.#maxPorts = opts.maxPorts ?? 16384;
    for (const [id, outboundPort, flags] of opts.netns ?? []) this.netns.set(id, { outboundPort, flags });
    for (const [id, port, mode] of opts.ports ?? []) this.ports.set(`${id}:${port}`, mode);
  }

  /** What the BPF filter decides for a SYN to `port` of `cookie`: true = dropped. */
  drops(cookie: bigint, port: number): boolean {
    const wl = this.netns.get(cookie);
    if (!wl) return false;
    const mode = this.ports.get(`${cookie}:${port}`);
    if (mode !== undefined) return mode !== PORT_PERMISSIVE;
    return (wl.flags & STRICT_FLAG) !== 0;
  }

  #write(op: WriteOp, key: string, apply: () => number): number {
    const injected = this.failWhen(op, key);
    if (injected < 0) return injected;
    const result = apply();
    if (result === 0) {
      this.log.push(`${op} ${key}`);
      this.onWrite();
    }
    return result;
  }

  raw(): RawDatapath {
    return {
      isAdopted: () => this.netns.size > 0,
      updateWorkload: (_kind, id, outboundPort, flags) =>
        this.#write("updateWorkload", String(id), () => {
          if (!this.netns.has(id) && this.netns.size >= this.#maxWorkloads) return E2BIG;
          this.netns.set(id, { outboundPort, flags });
          return 0;
        }),
      deleteWorkload: (_kind, id) =>
        this.#write("deleteWorkload", String(id), () => (this.netns.delete(id), 0)),
      listWorkloads: () => [...this.netns].map(([id, w]) => [id, w.outboundPort, w.flags]),
      updatePortMtls: (cookie, port, mode) =>
        this.#write("updatePortMtls", `${cookie}:${port}`, () => {
          const key = `${cookie}:${port}`;
          if (!this.ports.has(key) && this.ports.size >= this.#maxPorts) return E2BIG;
          this.ports.set(key, mode);
          return 0;
        }),
      deletePortMtls: (cookie, port) =>
        this.#write("deletePortMtls", `${cookie}:${port}`, () => (this.ports.delete(`${cookie}:${port}`), 0)),
      listPortMtls: () =>
        [...this.ports].map(([key, mode]) => {
          const [cookie, port] = key.split(":");
          return [BigInt(cookie!), Number(port), mode];
        }),
      setDestinations: () => 0,
      setCaptureMode: () => 0,
      originalDestination: () => null,
      kernelObjects: () => ({ progs: [], maps: [], links: [] }),
      plaintextDrops: () => [],
      sockmapStatus: () => ({ enabled: false, errno: 0, op: "", log: "" }),
      sockmapStats: () => -2,
      sockPairs: () => -2,
      close: () => undefined,
      uninstall: () => ({ errno: 0, op: "uninstall" }),
    };
  }

  /** A native Datapath over this kernel; `cookies` maps netns paths to their cookies. */
  datapath(cookies: ReadonlyMap<string, bigint>): Datapath {
    const ctx: DatapathContext = {
      pinDir: "/sys/fs/bpf/test",
      cgroupPath: "/sys/fs/cgroup",
      cgroup2Mount: "/sys/fs/cgroup",
      defaultOutboundPort: 15001,
      strictFlag: STRICT_FLAG,
      portMtls: { strict: PORT_STRICT, permissive: PORT_PERMISSIVE, max: this.#maxPorts },
      cookieOf: async (path) => {
        const cookie = cookies.get(path);
        if (cookie === undefined) throw new Error(`no such netns ${path}`);
        return cookie;
      },
    };
    return new Datapath(this.raw(), ctx);
  }
}

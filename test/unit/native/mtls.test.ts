// native/mtls.ts: the move of one workload's PeerAuthentication plan in the kernel, checked after
// every single map write against a simulated filter, for many random pairs of plans, with full maps
// and with a kernel error injected at every possible write.
import { describe, expect, it } from "vitest";
import { applyMtls, unionOf, type MtlsState, type MtlsWrites } from "../../../native/mtls.ts";

/** The simulated maps of one workload, with the BPF filter's decision. */
class Sim implements MtlsWrites {
  enrolled: boolean;
  strict: boolean;
  readonly ports: Map<number, boolean>;
  writes = 0;
  failAt = -1;
  maxPorts = Infinity;
  onWrite: () => void = () => undefined;

  constructor(from: MtlsState, enrolled = true) {
    this.enrolled = enrolled;
    this.strict = from.strict;
    this.ports = new Map(from.ports);
  }
  drops(port: number): boolean {
    return this.enrolled && (this.ports.get(port) ?? this.strict);
  }
  #step(apply: () => number): number {
    if (this.writes++ === this.failAt) return -5; // EIO
    const r = apply();
    if (r === 0) this.onWrite();
    return r;
  }
  writeDefault(strict: boolean): number {
    return this.#step(() => ((this.enrolled = true), (this.strict = strict), 0));
  }
  writePort(port: number, strict: boolean): number {
    return this.#step(() => {
      if (!this.ports.has(port) && this.ports.size >= this.maxPorts) return -7; // E2BIG
      this.ports.set(port, strict);
      return 0;
    });
  }
  deletePort(port: number): number {
    return this.#step(() => (this.ports.delete(port), 0));
  }
}

const UNIVERSE = [1, 2, 3, 4, 5, 99];
const effective = (s: MtlsState, port: number) => s.ports.get(port) ?? s.strict;

/** Deterministic plans over ports 1-5 (port 99 is never named). */
function* plans(seed: number, n: number): Generator<MtlsState> {
  let x = seed;
  const next = () => ((x = (x * 1103515245 + 12345) % 2 ** 31), x);
  for (let i = 0; i < n; i++) {
    const ports = new Map<number, boolean>();
    for (const port of [1, 2, 3, 4, 5]) if (next() % 3 === 0) ports.set(port, next() % 2 === 0);
    yield { strict: next() % 2 === 0, ports };
  }
}

const state = (strict: boolean, ports: [number, boolean][] = []): MtlsState => ({
  strict,
  ports: new Map(ports),
});

describe("applyMtls", () => {
  it("reaches the target, and never opens a port that is STRICT in both plans, not even for one write", () => {
    const froms = [...plans(7, 40)];
    const targets = [...plans(11, 40)];
    for (const from of froms) {
      for (const target of targets) {
        const sim = new Sim(from);
        sim.onWrite = () => {
          for (const port of UNIVERSE) {
            if (effective(from, port) && effective(target, port))
              expect(sim.drops(port), `port ${port} opened mid-move`).toBe(true);
          }
        };
        expect(applyMtls(sim, from, target, false)).toBeUndefined();
        for (const port of UNIVERSE) expect(sim.drops(port)).toBe(effective(target, port));
        expect([...sim.ports.keys()].sort()).toEqual([...target.ports.keys()].sort());
      }
    }
  });

  it("a kernel error at any write leaves every port at least as strict as before", () => {
    const froms = [...plans(3, 12)];
    const targets = [...plans(5, 12)];
    for (const from of froms) {
      for (const target of targets) {
        for (let failAt = 0; ; failAt++) {
          const sim = new Sim(from);
          sim.failAt = failAt;
          const failure = applyMtls(sim, from, target, false);
          if (!failure) break; // failAt is past the last write
          expect(failure.errno).toBe(-5);
          for (const port of UNIVERSE)
            if (effective(from, port)) expect(sim.drops(port), `port ${port} after failure`).toBe(true);
        }
      }
    }
  });

  it("a full map refuses the new exceptions and restores the previous plan exactly", () => {
    const from = state(true, [[8080, false]]);
    const target = state(true, [
      [8080, false],
      [9090, false],
      [9091, false],
    ]);
    const sim = new Sim(from);
    sim.maxPorts = 2;
    const failure = applyMtls(sim, from, target, false);
    expect(failure).toEqual({ op: "add per-port PeerAuthentication entry", port: 9091, errno: -7 });
    expect(sim.strict).toBe(true);
    expect([...sim.ports]).toEqual([[8080, false]]);
  });

  it("enrolls a new workload: exceptions first, the workload entry last", () => {
    const order: string[] = [];
    const sim = new Sim(state(false), false);
    const w: MtlsWrites = {
      writeDefault: (s) => (order.push(`default ${s}`), sim.writeDefault(s)),
      writePort: (p, s) => (order.push(`port ${p} ${s}`), sim.writePort(p, s)),
      deletePort: (p) => (order.push(`delete ${p}`), sim.deletePort(p)),
    };
    expect(applyMtls(w, state(false), state(true, [[8080, false]]), true)).toBeUndefined();
    expect(order).toEqual(["port 8080 false", "default true"]);
    expect(sim.drops(8080)).toBe(false);
    expect(sim.drops(9090)).toBe(true);
  });

  it("a full workload map on enroll removes the exceptions it wrote", () => {
    const sim = new Sim(state(false), false);
    const w: MtlsWrites = {
      writeDefault: () => -7, // E2BIG: nm_netns is full
      writePort: (p, s) => sim.writePort(p, s),
      deletePort: (p) => sim.deletePort(p),
    };
    const failure = applyMtls(w, state(false), state(true, [[8080, false]]), true);
    expect(failure).toEqual({ op: "update enrolled netns", port: undefined, errno: -7 });
    expect(sim.ports.size).toBe(0);
    expect(sim.enrolled).toBe(false);
  });

  it("the union is STRICT wherever either plan is", () => {
    const u = unionOf(state(true, [[8080, false]]), state(false, [[9090, true]]));
    expect(u.strict).toBe(true);
    expect([...u.ports].sort()).toEqual([
      [8080, false],
      [9090, true],
    ]);
    // 8080 is PERMISSIVE in the first plan and in the second (default PERMISSIVE): open in the union.
  });
});

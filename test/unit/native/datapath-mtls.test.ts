// native/datapath.ts over a fake kernel: per-port PeerAuthentication through enrollNetns, read back by
// workloads(), cleaned up by unenrollNetns, and the errors of bad plans and full maps.
import { describe, expect, it } from "vitest";
import { FakeKernel, PORT_PERMISSIVE, PORT_STRICT, STRICT_FLAG } from "./fake-kernel.ts";

const NS = "/run/netns/pod-a";
const COOKIE = 41n;
const cookies = new Map([[NS, COOKIE]]);

describe("Datapath per-port mTLS", () => {
  it("a STRICT workload with a PERMISSIVE port drops plaintext on every other port", async () => {
    const k = new FakeKernel();
    const dp = k.datapath(cookies);
    await dp.enrollNetns(NS, { strict: true, ports: [{ port: 8080, strict: false }] });
    expect(k.drops(COOKIE, 8080)).toBe(false);
    expect(k.drops(COOKIE, 9090)).toBe(true);
    expect(dp.workloads().netns).toEqual([
      { id: COOKIE, outboundPort: 15001, strict: true, ports: [{ port: 8080, strict: false }] },
    ]);
  });

  it("holds a workload (refuse: outbound port 0) with its plan, and refuses a refuse with a port", async () => {
    const k = new FakeKernel();
    const dp = k.datapath(cookies);
    await dp.enrollNetns(NS, { refuse: true, strict: true });
    expect(dp.workloads().netns).toEqual([{ id: COOKIE, outboundPort: 0, strict: true, ports: [] }]);
    expect(k.drops(COOKIE, 8080)).toBe(true);
    await expect(dp.enrollNetns(NS, { refuse: true, outboundPort: 15001 })).rejects.toMatchObject({
      code: "NODEMESH_ERR_NATIVE_INVALID_ARGUMENT",
      message: "an enrollment that refuses the pod's connects takes no outbound port",
    });
    await dp.enrollNetns(NS, { strict: true });
    expect(k.netns.get(COOKIE)).toEqual({ outboundPort: 15001, flags: STRICT_FLAG });
  });

  it("a PERMISSIVE workload with a STRICT port drops plaintext on that port only", async () => {
    const k = new FakeKernel();
    await k.datapath(cookies).enrollNetns(NS, { strict: false, ports: [{ port: 9090, strict: true }] });
    expect(k.ports.get(`${COOKIE}:9090`)).toBe(PORT_STRICT);
    expect(k.drops(COOKIE, 9090)).toBe(true);
    expect(k.drops(COOKIE, 8080)).toBe(false);
  });

  it("re-enrolling moves to the new plan and removes exceptions it no longer has", async () => {
    const k = new FakeKernel();
    const dp = k.datapath(cookies);
    await dp.enrollNetns(NS, { strict: true, ports: [{ port: 8080, strict: false }] });
    await dp.enrollNetns(NS, { strict: false, ports: [{ port: 9090, strict: true }] });
    expect([...k.ports]).toEqual([[`${COOKIE}:9090`, PORT_STRICT]]);
    expect(k.netns.get(COOKIE)?.flags).toBe(0);
    await dp.enrollNetns(NS, { strict: true });
    expect(k.ports.size).toBe(0);
    expect(k.netns.get(COOKIE)?.flags).toBe(STRICT_FLAG);
  });

  it("takes over a previous agent's entries for the same netns (hand-over) without opening a port", async () => {
    const k = new FakeKernel({
      netns: [[COOKIE, 15001, STRICT_FLAG]],
      ports: [[COOKIE, 7070, PORT_PERMISSIVE]],
    });
    const opened: string[] = [];
    k.onWrite = () => {
      if (!k.drops(COOKIE, 9090)) opened.push(k.log.at(-1)!);
    };
    await k.datapath(cookies).enrollNetns(NS, { strict: true, ports: [{ port: 8080, strict: false }] });
    expect(opened).toEqual([]);
    expect([...k.ports]).toEqual([[`${COOKIE}:8080`, PORT_PERMISSIVE]]);
    expect(k.drops(COOKIE, 7070)).toBe(true);
  });

  it("a full per-port map is a clear error and the previous enforcement stays", async () => {
    // Another workload holds the map's other entry.
    const k = new FakeKernel({ maxPorts: 2, ports: [[99n, 1, PORT_PERMISSIVE]] });
    const dp = k.datapath(cookies);
    await dp.enrollNetns(NS, { strict: true, ports: [{ port: 8080, strict: false }] });
    const before = [...k.ports];
    const err = await dp
      .enrollNetns(NS, {
        strict: false,
        ports: [
          { port: 8080, strict: false },
          { port: 9090, strict: true },
        ],
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "NODEMESH_ERR_NATIVE_BPF", errnoCode: "E2BIG" });
    expect((err as Error).message).toMatch(
      /^add per-port PeerAuthentication entry \(port 9090 of \/run\/netns\/pod-a\) failed: .*\(E2BIG\); the per-port PeerAuthentication map \(nm_port_mtls\) is full.*the previous enforcement is kept$/,
    );
    expect([...k.ports]).toEqual(before);
    expect(k.netns.get(COOKIE)?.flags).toBe(STRICT_FLAG);
  });

  it("a kernel error on the workload map is reported and nothing is left half-enrolled", async () => {
    const k = new FakeKernel();
    k.failWhen = (op) => (op === "updateWorkload" ? -1 : 0); // EPERM
    const err = await k
      .datapath(cookies)
      .enrollNetns(NS, { strict: true, ports: [{ port: 8080, strict: false }] })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "NODEMESH_ERR_NATIVE_PERMISSION", op: "update enrolled netns" });
    expect(k.netns.size).toBe(0);
    expect(k.ports.size).toBe(0);
  });

  it("unenrolling removes the workload entry first, then its exceptions, and no other workload's", async () => {
    const k = new FakeKernel({ ports: [[99n, 8080, PORT_PERMISSIVE]] });
    const dp = k.datapath(cookies);
    await dp.enrollNetns(NS, { strict: true, ports: [{ port: 8080, strict: false }] });
    k.log.length = 0;
    dp.unenrollNetns(COOKIE);
    expect(k.log).toEqual([`deleteWorkload ${COOKIE}`, `deletePortMtls ${COOKIE}:8080`]);
    expect([...k.ports.keys()]).toEqual(["99:8080"]);
  });

  it("rejects a bad plan before touching a map, naming the field", async () => {
    const k = new FakeKernel({ maxPorts: 2 });
    const dp = k.datapath(cookies);
    const bad = (ports: unknown) => dp.enrollNetns(NS, { strict: true, ports: ports as [] });
    await expect(bad([{ port: 0, strict: false }])).rejects.toThrow(
      /per-port mTLS modes\[0\]\.port 0 is not a port; use an integer from 1 to 65535/,
    );
    await expect(bad([{ port: 80, strict: "no" }])).rejects.toThrow(
      /modes\[0\]\.strict "no" must be a boolean/,
    );
    await expect(
      bad([
        { port: 80, strict: false },
        { port: 80, strict: true },
      ]),
    ).rejects.toThrow(/modes\[1\]\.port 80 is listed twice/);
    await expect(bad({})).rejects.toThrow(/must be an array of \{ port, strict \}/);
    await expect(bad([1, 2, 3].map((port) => ({ port, strict: false })))).rejects.toThrow(
      /3 ports, the kernel map holds at most 2/,
    );
    expect(k.log).toEqual([]);
  });
});

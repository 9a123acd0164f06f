// agent/datapath/ebpf.ts over a fake native layer (test/unit/native/fake-kernel.ts): the prune after a
// hand-over removes only what the config no longer places here, and per-port PeerAuthentication changes
// either apply or fail with the previous enforcement kept.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EbpfDatapath, type NativeLayer } from "../../../agent/datapath/ebpf.ts";
import type { LocalWorkload, MtlsPlan } from "../../../agent/datapath/datapath.ts";
import { FakeKernel, PORT_PERMISSIVE, STRICT_FLAG } from "../native/fake-kernel.ts";

const STRICT_8080_OPEN: MtlsPlan = { strict: true, ports: [{ port: 8080, strict: false }] };
let dir: string;
let servers: Server[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "nm-ebpf-"));
  servers = [];
});
afterEach(() => {
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A netns "path" (a file, so the existence check passes) with its cookie. */
function netns(name: string, cookie: bigint, cookies: Map<string, bigint>): string {
  const path = join(dir, name);
  writeFileSync(path, "");
  cookies.set(path, cookie);
  return path;
}

function layer(k: FakeKernel, cookies: Map<string, bigint>, unlistenable = new Set<string>()): NativeLayer {
  return {
    install: async () => k.datapath(cookies),
    netnsCookieOf: async (path) => {
      const c = cookies.get(path);
      if (c === undefined) throw new Error(`network namespace ${path} does not exist`);
      return c;
    },
    openNetns: (path) => ({
      path,
      socket: () => -1,
      routeDeliveryReplies: () => undefined,
      close: () => undefined,
    }),
    bindSource: () => undefined,
    deliveryMark: () => 0x53a,
    listen: async (path) => {
      if (unlistenable.has(path)) throw new Error(`bind in ${path}: address in use`);
      const s = createServer();
      servers.push(s);
      await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
      return s;
    },
    removePins: () => undefined,
  };
}

const workload = (
  uid: string,
  path: string | undefined,
  mtls: MtlsPlan = STRICT_8080_OPEN,
): LocalWorkload => ({
  uid,
  address: "10.0.0.1",
  netns: path,
  cgroup: undefined,
  mtls,
});

const OPTS = { pinDir: "/sys/fs/bpf/test", outboundPort: 15001, hbonePort: 15008 };

describe("EbpfDatapath.pruneInherited after a hand-over", () => {
  it("keeps a placed workload whose enroll failed, re-enrolls the others, prunes only the unplaced", async () => {
    const cookies = new Map<string, bigint>();
    const [a, b] = [netns("a", 1n, cookies), netns("b", 2n, cookies)];
    // The previous agent enrolled a, b and c (c is no longer in the config), each STRICT with 7070 open.
    const k = new FakeKernel({
      netns: [1n, 2n, 3n].map((c): [bigint, number, number] => [c, 15001, STRICT_FLAG]),
      ports: [1n, 2n, 3n].map((c): [bigint, number, number] => [c, 7070, PORT_PERMISSIVE]),
    });
    const dp = await EbpfDatapath.open(OPTS, layer(k, cookies, new Set([a])));
    // a's listeners cannot be opened, nor can it be held: the kernel map rejects the write.
    k.failWhen = (op, key) => (op === "updateWorkload" && key === "1" ? -28 : 0);
    await expect(dp.enroll(workload("ns/a", a))).rejects.toThrow(/address in use.*nor hold its connects/);
    k.failWhen = () => 0;
    await dp.enroll(workload("ns/b", b));

    const result = await dp.pruneInherited([
      { uid: "ns/a", netns: a },
      { uid: "ns/b", netns: b },
    ]);
    expect(result).toEqual({ pruned: 1, kept: [{ uid: "ns/a", netnsCookie: 1n }], unresolved: [] });
    // a keeps the previous agent's enforcement exactly; c is gone with its port entry.
    expect(k.netns.get(1n)).toEqual({ outboundPort: 15001, flags: STRICT_FLAG });
    expect(k.ports.get("1:7070")).toBe(PORT_PERMISSIVE);
    expect(k.netns.has(3n)).toBe(false);
    expect(k.ports.has("3:7070")).toBe(false);
    // b is this agent's now, with its own plan.
    expect(k.ports.has("2:7070")).toBe(false);
    expect(k.drops(2n, 8080)).toBe(false);
    expect(k.drops(2n, 7070)).toBe(true);
  });

  it("holds a workload whose listeners cannot be opened, then enrolls it once they can", async () => {
    const cookies = new Map<string, bigint>();
    const a = netns("a", 1n, cookies);
    const k = new FakeKernel({ netns: [[1n, 15001, STRICT_FLAG]], ports: [[1n, 7070, PORT_PERMISSIVE]] });
    const busy = new Set([a]);
    const dp = await EbpfDatapath.open(OPTS, layer(k, cookies, busy));
    await expect(dp.enroll(workload("ns/a", a))).rejects.toMatchObject({
      code: "NODEMESH_ERR_DATAPATH",
      message: expect.stringMatching(
        /^cannot open the in-pod listeners of workload ns\/a: bind in .*: address in use; its connects to meshed destinations are refused until they open$/,
      ),
    });
    // Held: outbound port 0 (connect4 refuses), with this workload's own PeerAuthentication.
    expect(k.netns.get(1n)).toEqual({ outboundPort: 0, flags: STRICT_FLAG });
    expect(k.drops(1n, 7070)).toBe(true);
    expect(k.drops(1n, 8080)).toBe(false);
    expect(dp.heldWorkloads()).toEqual(["ns/a"]);
    expect(dp.kernelEnrollment("ns/a")).toBeUndefined();
    // Not inherited any more: a prune keeps it whatever the config says, until it is released.
    expect(await dp.pruneInherited([])).toEqual({ pruned: 0, kept: [], unresolved: [] });
    expect(k.netns.has(1n)).toBe(true);

    busy.clear();
    await dp.enroll(workload("ns/a", a));
    expect(k.netns.get(1n)).toEqual({ outboundPort: 15001, flags: STRICT_FLAG });
    expect(dp.heldWorkloads()).toEqual([]);
    await dp.release("ns/a");
    expect(k.netns.size + k.ports.size).toBe(0);
  });

  it("releases a held workload from the kernel, and moves a hold to a recreated sandbox", async () => {
    const cookies = new Map<string, bigint>();
    const [a, a2] = [netns("a", 1n, cookies), netns("a2", 2n, cookies)];
    const k = new FakeKernel();
    const dp = await EbpfDatapath.open(OPTS, layer(k, cookies, new Set([a, a2])));
    await expect(dp.enroll(workload("ns/a", a))).rejects.toThrow(/refused until they open/);
    await expect(dp.enroll(workload("ns/a", a2))).rejects.toThrow(/refused until they open/);
    expect([...k.netns.keys()]).toEqual([2n]);
    await dp.release("ns/a");
    expect(k.netns.size + k.ports.size).toBe(0);
    expect(dp.heldWorkloads()).toEqual([]);
  });

  it("prunes nothing when a placed workload's netns is unknown or cannot be resolved (fail closed)", async () => {
    const k = new FakeKernel({ netns: [[3n, 15001, STRICT_FLAG]] });
    const dp = await EbpfDatapath.open(OPTS, layer(k, new Map()));
    const result = await dp.pruneInherited([
      { uid: "ns/gone", netns: join(dir, "missing") },
      { uid: "ns/pending", netns: undefined },
    ]);
    expect(result).toEqual({ pruned: 0, kept: [], unresolved: ["ns/gone", "ns/pending"] });
    expect(k.netns.has(3n)).toBe(true);
  });

  it("prunes every inherited enrollment when the config places nothing here that is not enrolled", async () => {
    const k = new FakeKernel({ netns: [[3n, 15001, STRICT_FLAG]], ports: [[3n, 80, PORT_PERMISSIVE]] });
    const dp = await EbpfDatapath.open(OPTS, layer(k, new Map()));
    expect(await dp.pruneInherited([])).toEqual({ pruned: 1, kept: [], unresolved: [] });
    expect(k.netns.size + k.ports.size).toBe(0);
  });
});

describe("EbpfDatapath.setMtls", () => {
  it("applies per-port plans and reads them back from the kernel", async () => {
    const cookies = new Map<string, bigint>();
    const a = netns("a", 1n, cookies);
    const k = new FakeKernel();
    const dp = await EbpfDatapath.open(OPTS, layer(k, cookies));
    await dp.enroll(workload("ns/a", a));
    expect(dp.kernelEnrollment("ns/a")).toEqual({ enrolled: true, ...STRICT_8080_OPEN });
    await dp.setMtls("ns/a", { strict: false, ports: [{ port: 9090, strict: true }] });
    expect(dp.kernelEnrollment("ns/a")).toEqual({
      enrolled: true,
      strict: false,
      ports: [{ port: 9090, strict: true }],
    });
    expect(k.drops(1n, 9090)).toBe(true);
    expect(k.drops(1n, 8080)).toBe(false);
  });

  it("a full map is an error naming the workload, and the previous enforcement stays", async () => {
    const cookies = new Map<string, bigint>();
    const a = netns("a", 1n, cookies);
    const k = new FakeKernel({ maxPorts: 2, ports: [[9n, 1, PORT_PERMISSIVE]] });
    const dp = await EbpfDatapath.open(OPTS, layer(k, cookies));
    await dp.enroll(workload("ns/a", a));
    const plan: MtlsPlan = {
      strict: true,
      ports: [
        { port: 8080, strict: false },
        { port: 8081, strict: false },
      ],
    };
    await expect(dp.setMtls("ns/a", plan)).rejects.toMatchObject({
      code: "NODEMESH_ERR_DATAPATH",
      message: expect.stringMatching(
        /^cannot apply the PeerAuthentication of workload ns\/a in the kernel: add per-port PeerAuthentication entry \(port 8081 of .*\) failed: .*E2BIG.*is full/,
      ),
    });
    expect(dp.kernelEnrollment("ns/a")).toEqual({ enrolled: true, ...STRICT_8080_OPEN });
  });

  it("refuses a bad plan with the field named, before any listener or map write", async () => {
    const cookies = new Map<string, bigint>();
    const a = netns("a", 1n, cookies);
    const k = new FakeKernel();
    const dp = await EbpfDatapath.open(OPTS, layer(k, cookies));
    const bad = { strict: true, ports: [{ port: 70000, strict: false }] };
    await expect(dp.enroll(workload("ns/a", a, bad))).rejects.toThrow(
      "workload ns/a: mtls.ports[0].port 70000 is not a port 1-65535",
    );
    expect(servers).toHaveLength(0);
    expect(k.log).toEqual([]);
    await expect(dp.setMtls("ns/x", STRICT_8080_OPEN)).rejects.toThrow("workload ns/x is not enrolled");
  });
});

describe("EbpfDatapath: delivery from the client's address", () => {
  it("sets up the pod's reply routing at enrollment and takes it down at release", async () => {
    const cookies = new Map<string, bigint>();
    const a = netns("a", 1n, cookies);
    const calls: string[] = [];
    const base = layer(new FakeKernel(), cookies);
    const dp = await EbpfDatapath.open(OPTS, {
      ...base,
      openNetns: (path) => ({
        ...base.openNetns(path),
        routeDeliveryReplies: (o) => void calls.push(o?.remove ? `remove ${path}` : `add ${path}`),
      }),
    });
    const listeners = await dp.enroll(workload("ns/a", a));
    expect(listeners.sourceUnavailable).toBeUndefined();
    await dp.release("ns/a");
    expect(calls).toEqual([`add ${a}`, `remove ${a}`]);
  });

  it("says why when the pod's routing cannot be set up, and enrolls the workload all the same", async () => {
    const cookies = new Map<string, bigint>();
    const a = netns("a", 1n, cookies);
    const base = layer(new FakeKernel(), cookies);
    const dp = await EbpfDatapath.open(OPTS, {
      ...base,
      openNetns: (path) => ({
        ...base.openNetns(path),
        routeDeliveryReplies: () => {
          throw new Error("add the delivery reply rule failed: Operation not permitted (EPERM)");
        },
      }),
    });
    const listeners = await dp.enroll(workload("ns/a", a));
    expect(listeners.sourceUnavailable).toContain("EPERM");
    expect(dp.kernelEnrollment("ns/a")?.enrolled).toBe(true);
  });
});

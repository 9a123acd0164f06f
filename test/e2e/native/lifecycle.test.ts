// End-to-end lifecycle of the pinned datapath: a child process installs and exits, redirection
// keeps working with no process holding the programs, a new process re-adopts the pins without
// attaching a second copy, and uninstall leaves no link, program, map or pin behind. Also: every
// entry point fails cleanly without privileges. Two instances are attached at once here (the
// main one and the child's), as with two lab nodes on one kernel.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import type net from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as nm from "../../../native/index.ts";
import { cgroup2Mount, requireRoot } from "../../helpers/privileges.ts";
import { NetnsFixture, runIn } from "./netns-fixture.ts";
import type { Pod } from "./netns-fixture.ts";
import { captureListener } from "./servers.ts";
import type { CaptureReply } from "./servers.ts";

const VIP = "10.96.0.12";
const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));
const fx = new NetnsFixture("l");
const pinMain = `/sys/fs/bpf/${fx.prefix}-main`;
const pinChild = `/sys/fs/bpf/${fx.prefix}-child`;
const servers: net.Server[] = [];
let main: nm.Datapath | undefined;
let adopted: nm.Datapath | undefined;
let d: Pod;

function bpftool<T>(...args: string[]): T {
  return JSON.parse(execFileSync("bpftool", ["-j", ...args], { encoding: "utf8" }) || "[]") as T;
}
const ids = (list: { id: number }[]): number[] => list.map((x) => x.id);
function rootAttachments(): { id: number; name: string }[] {
  return bpftool<{ id: number; name: string }[]>("cgroup", "show", cgroup2Mount());
}
function node(args: string[], prefix: string[] = []): string {
  const cmd = [...prefix, process.execPath, "--disable-warning=ExperimentalWarning", ...args];
  return execFileSync(cmd[0]!, cmd.slice(1), { encoding: "utf8" });
}
async function curlVip(): Promise<CaptureReply> {
  const res = await runIn(d, "curl", ["-s", "--max-time", "5", `http://${VIP}/`]);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout) as CaptureReply;
}

beforeAll(async () => {
  requireRoot("native lifecycle e2e");
  d = fx.pod("d");
  main = await nm.install({ pinDir: pinMain });
  // d's listener asks the adopting instance (child's pins) and, as a cross-check, the main one.
  servers.push(
    await captureListener(
      d,
      15001,
      () => adopted,
      () => main,
    ),
  );
});

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  for (const [dp, pin] of [
    [adopted, pinChild],
    [main, pinMain],
  ] as const) {
    try {
      dp?.uninstall();
    } catch {
      // fall through to the pin purge
    }
    if (existsSync(pin)) nm.removePins(pin);
  }
  fx.destroy();
});

describe("pinned datapath", () => {
  it("keeps redirecting after the loading process exits, and a new process re-adopts it", async () => {
    const child = JSON.parse(node([here("./install-child.ts"), pinChild, d.netnsPath, VIP, "80"])) as {
      adopted: boolean;
      objects: nm.KernelObjects;
    };
    expect(child.adopted).toBe(false);
    // No process holds the child's programs now; the pins do.
    const orphan = await curlVip();
    expect(orphan).toMatchObject({ pod: d.name, orig: "unknown", other: "none" });

    const attachedBefore = rootAttachments();
    const linksBefore = ids(bpftool("link", "show"));
    adopted = await nm.install({ pinDir: pinChild });
    expect(adopted.adopted).toBe(true);
    const mine = adopted.kernelObjects();
    expect(mine.links).toEqual(child.objects.links);
    expect(mine.maps.sort()).toEqual([...child.objects.maps].sort());
    expect(ids(bpftool("link", "show"))).toEqual(linksBefore);
    const attachedAfter = rootAttachments();
    expect(attachedAfter).toHaveLength(attachedBefore.length);
    for (const prog of mine.progs) expect(attachedAfter.filter((x) => x.id === prog)).toHaveLength(1);
    expect(adopted.workloads().netns).toHaveLength(1);

    // The main instance does not know d; the adopting one reads d's original destination.
    expect(await curlVip()).toMatchObject({ pod: d.name, orig: `${VIP}:80`, other: "none" });
  });

  it("uninstall leaves no links, programs, maps or pins", async () => {
    const dp = adopted!;
    const mine = dp.kernelObjects();
    dp.uninstall();
    adopted = undefined;
    expect(existsSync(pinChild)).toBe(false);
    expect(() => dp.workloads()).toThrow(expect.objectContaining({ code: "NODEMESH_ERR_NATIVE_CLOSED" }));
    const gone = async (): Promise<boolean> => {
      const progs = ids(bpftool("prog", "show"));
      const maps = ids(bpftool("map", "show"));
      const links = ids(bpftool("link", "show"));
      return (
        mine.progs.every((p) => !progs.includes(p)) &&
        mine.maps.every((m) => !maps.includes(m)) &&
        mine.links.every((l) => !links.includes(l))
      );
    };
    const deadline = Date.now() + 5000;
    while (!(await gone()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await gone()).toBe(true);
    // Nothing redirects d any more: the VIP is unroutable from d.
    const res = await runIn(d, "curl", ["-s", "--max-time", "2", `http://${VIP}/`]);
    expect(res.code).not.toBe(0);
  });
});

describe("without privileges", () => {
  it("fails with a clear permission error and installs nothing", () => {
    const pin = `/sys/fs/bpf/${fx.prefix}-unpriv`;
    const drop = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"];
    const out = JSON.parse(node([here("./unprivileged-child.ts"), pin, d.netnsPath], drop)) as Record<
      string,
      { code: string; message: string; op?: string; errnoCode?: string }
    >;
    expect(out["install"]?.code).toBe("NODEMESH_ERR_NATIVE_PERMISSION");
    expect(out["install"]?.message).toMatch(/missing: CAP_BPF .*CAP_NET_ADMIN .*CAP_SYS_ADMIN/);
    expect(out["listenInNetns"]).toMatchObject({
      code: "NODEMESH_ERR_NATIVE_PERMISSION",
      op: "setns",
      errnoCode: "EPERM",
    });
    expect(out["listenInNetns"]?.message).toMatch(
      /^setns \(127\.0\.0\.1:15001 in .*\) failed: operation not permitted/,
    );
    expect(existsSync(pin)).toBe(false);
  });
});

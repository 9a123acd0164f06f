// Pod UID → cgroup and netns (agent/node/pod-locator.ts) over fake cgroup and /proc trees laid
// out as kubelets with the systemd and cgroupfs drivers, containerd and CRI-O, lay them out.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import {
  findPodCgroup,
  isPodCgroupName,
  locatePod,
  podCgroupCandidates,
} from "../../../../agent/node/pod-locator.ts";

const UID = "6f1c2b9a-0d4e-4c8f-9a1b-2c3d4e5f6a7b";
const U_ = UID.replaceAll("-", "_");
let dir = "";

function tree(files: Record<string, string>): { cgroupRoot: string; procRoot: string } {
  dir = mkdtempSync(join(tmpdir(), "nodemesh-podloc-"));
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), content);
  }
  return { cgroupRoot: join(dir, "cg"), procRoot: join(dir, "proc") };
}

/** Each fake /proc/<pid>/ns/net is its own file, so its own inode, like a namespace. */
const proc = (...pids: number[]) => Object.fromEntries([1, ...pids].map((p) => [`proc/${p}/ns/net`, `${p}`]));

afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("pod locator", () => {
  test("candidates follow the QoS class first, both drivers", () => {
    expect(podCgroupCandidates(UID, "Guaranteed").slice(0, 2)).toEqual([
      `/kubepods.slice/kubepods-pod${U_}.slice`,
      `/kubepods/pod${UID}`,
    ]);
    expect(podCgroupCandidates(UID, "BestEffort")[0]).toBe(
      `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${U_}.slice`,
    );
    expect(podCgroupCandidates(UID)).toHaveLength(6);
    expect(isPodCgroupName(`kubepods-burstable-pod${U_}.slice`, UID)).toBe(true);
    expect(isPodCgroupName(`pod${UID}`, UID)).toBe(true);
    expect(isPodCgroupName(`pod${UID}x`, UID)).toBe(false);
  });

  test("systemd driver + containerd: the container's process gives the netns", () => {
    const pod = `cg/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${U_}.slice`;
    const o = tree({
      [`${pod}/cgroup.procs`]: "",
      [`${pod}/cri-containerd-abc.scope/cgroup.procs`]: "4242\n",
      ...proc(4242),
    });
    expect(locatePod(UID, "Burstable", o)).toEqual({
      cgroup: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${U_}.slice`,
      netns: join(o.procRoot, "4242/ns/net"),
      pid: 4242,
    });
  });

  test("CRI-O: conmon (host netns) is skipped", () => {
    const pod = `cg/kubepods.slice/kubepods-pod${U_}.slice`;
    const o = tree({
      [`${pod}/crio-conmon-abc.scope/cgroup.procs`]: "77\n",
      [`${pod}/crio-abc.scope/cgroup.procs`]: "88\n",
      ...proc(77, 88),
    });
    expect(locatePod(UID, "Guaranteed", o)?.pid).toBe(88);
  });

  test("cgroupfs driver, found even when the QoS class is unknown", () => {
    const o = tree({ [`cg/kubepods/besteffort/pod${UID}/0123abcd/cgroup.procs`]: "99\n", ...proc(99) });
    expect(locatePod(UID, undefined, o)?.cgroup).toBe(`/kubepods/besteffort/pod${UID}`);
  });

  test("a nested kubelet (kind) is found by the bounded search", () => {
    const o = tree({
      [`cg/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubepods-besteffort-pod${U_}.slice/cgroup.procs`]:
        "",
    });
    expect(findPodCgroup(UID, "BestEffort", o)).toBe(
      `/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubepods-besteffort-pod${U_}.slice`,
    );
  });

  test("fail closed: no pod cgroup, no process yet, or only host-netns processes → undefined", () => {
    const o = tree({ "cg/kubepods.slice/cgroup.procs": "", ...proc() });
    expect(locatePod(UID, "Burstable", o)).toBeUndefined();
    rmSync(dir, { recursive: true, force: true });
    const empty = tree({ [`cg/kubepods/pod${UID}/cgroup.procs`]: "", ...proc() });
    expect(locatePod(UID, "Guaranteed", empty)).toBeUndefined();
    rmSync(dir, { recursive: true, force: true });
    const hostOnly = tree({ [`cg/kubepods/pod${UID}/c1/cgroup.procs`]: "1\n", ...proc() });
    expect(locatePod(UID, "Guaranteed", hostOnly)).toBeUndefined();
  });
});

import { closeSync, openSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { assessFeatures, findCgroup2Mount, kernelAtLeast } from "../../../native/features.ts";
import type { RawProbe } from "../../../native/features.ts";
import * as nm from "../../../native/index.ts";
import { requireRoot } from "../../helpers/privileges.ts";

const good: RawProbe = {
  kernelRelease: "6.1.0-18-amd64",
  btfVmlinux: true,
  capBpf: 0,
  capNetAdmin: 0,
  capSysAdmin: 0,
  progTypes: { cgroup_sock_addr: 1, sock_ops: 1 },
  helpers: { "sock_ops:get_netns_cookie": 1 },
};
const env = { cgroup2Mount: "/sys/fs/cgroup", bpffsMounted: true };

describe("feature probe report", () => {
  it("reports nothing missing on a capable node", () => {
    const report = assessFeatures(good, env);
    expect(report.missing).toEqual([]);
    expect(report.capabilities).toEqual({ bpf: true, netAdmin: true, sysAdmin: true });
    expect(report.progTypes).toEqual({ cgroup_sock_addr: true, sock_ops: true });
  });

  it("names each missing privilege, and does not blame the kernel for EPERM probes", () => {
    const raw = {
      ...good,
      capBpf: -1,
      capNetAdmin: -1,
      capSysAdmin: -1,
      progTypes: { sock_ops: -1 },
      helpers: { x: -1 },
    };
    const report = assessFeatures(raw, env);
    expect(report.missing.map((m) => m.feature)).toEqual(["CAP_BPF", "CAP_NET_ADMIN", "CAP_SYS_ADMIN"]);
    expect(report.missing.every((m) => m.privilege)).toBe(true);
  });

  it("names an old kernel, missing BTF, cgroup v2, program types and helpers with a fix", () => {
    const raw = {
      ...good,
      kernelRelease: "5.10.0",
      btfVmlinux: false,
      progTypes: { sock_ops: 0 },
      helpers: { "sock_ops:get_netns_cookie": 0 },
    };
    const report = assessFeatures(raw, { cgroup2Mount: undefined, bpffsMounted: false });
    expect(report.missing.map((m) => m.feature)).toEqual([
      "kernel >= 5.15",
      "BTF (/sys/kernel/btf/vmlinux)",
      "cgroup v2 mount",
      "bpf program type sock_ops",
      "bpf helper sock_ops:get_netns_cookie",
    ]);
    expect(report.missing[0]?.hint).toMatch(/running 5\.10\.0; upgrade/);
  });

  it("compares kernel releases", () => {
    expect(kernelAtLeast("5.15.0", [5, 15])).toBe(true);
    expect(kernelAtLeast("6.0.1", [5, 15])).toBe(true);
    expect(kernelAtLeast("5.4.200", [5, 15])).toBe(false);
    expect(kernelAtLeast("garbage", [5, 15])).toBe(false);
  });

  it("finds the cgroup2 mount in /proc/mounts, never assuming it", () => {
    const mounts = "cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
    expect(findCgroup2Mount(mounts)).toBe("/sys/fs/cgroup/unified");
    expect(findCgroup2Mount("tmpfs /tmp tmpfs rw 0 0\n")).toBeUndefined();
  });

  it("probes this node (root in CI) and finds everything the datapath needs", () => {
    requireRoot("probing bpf features");
    const report = nm.probe();
    expect(report.missing).toEqual([]);
    expect(report.btf).toBe(true);
    expect(report.cgroup2Mount).toMatch(/^\//);
    expect(Object.values(report.helpers).every(Boolean)).toBe(true);
  });
});

describe("facade validation happens before any native call", () => {
  it.each([
    ["a malformed listen address", () => nm.listenInNetns("/proc/self/ns/net", "127.0.0.256", 15001)],
    ["a port out of range", () => nm.listenInNetns("/proc/self/ns/net", "127.0.0.1", 70000)],
    ["a relative namespace path", () => nm.netnsCookieOf("netns/podA")],
    ["a relative pin directory", () => nm.install({ pinDir: "nodemesh" })],
  ])("rejects %s", async (_what, call) => {
    await expect(call()).rejects.toMatchObject({ code: "NODEMESH_ERR_NATIVE_INVALID_ARGUMENT" });
  });

  it("rejects a namespace path that does not exist", async () => {
    await expect(
      nm.listenInNetns("/var/run/netns/nodemesh-no-such-pod", "127.0.0.1", 15001),
    ).rejects.toMatchObject({
      code: "NODEMESH_ERR_NATIVE_NETNS",
    });
  });

  it("rejects bad marks and fds synchronously", () => {
    expect(() => nm.setSocketMark(-3, 1)).toThrow(
      expect.objectContaining({ code: "NODEMESH_ERR_NATIVE_INVALID_ARGUMENT" }),
    );
    expect(() => nm.setSocketMark(0, -1)).toThrow(/32-bit unsigned/);
  });

  it("turns a kernel refusal into a NativeError naming the operation", () => {
    // A regular file is not a socket: the kernel says ENOTSOCK.
    const fd = openSync("/proc/self/status", "r");
    try {
      expect(() => nm.setSocketMark(fd, 1)).toThrow(
        expect.objectContaining({ op: "setsockopt SO_MARK", errno: 88, errnoCode: "ENOTSOCK" }),
      );
    } finally {
      closeSync(fd);
    }
  });
});

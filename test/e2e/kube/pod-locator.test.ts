// The agent's pod locator on real kernel objects: cgroups laid out as a kubelet with the systemd
// driver and containerd lays them out (under a scratch cgroup, never the machine's kubepods), a
// real network namespace, and a process in both; the locator must name that namespace from the
// pod UID alone, skip a conmon-like process in the host namespace, and see the pod leave; the
// agent's placement (agent/node/pod-placement.ts) waits, bounded, for a container that starts late.
import { execFile, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import pino from "pino";
import { locatePod } from "../../../agent/node/pod-locator.ts";
import { PodPlacer } from "../../../agent/node/pod-placement.ts";
import { cgroup2Mount, requireRoot } from "../../helpers/privileges.ts";

const run = promisify(execFile);
const UID = randomUUID();
const NETNS = `nm-kube-${process.pid}`;
let root = "";
let podDir = "";
const procs: ChildProcess[] = [];

/** Starts `sleep` with its pid in `cgroup` (and `netns` when given) before it executes. */
async function sleeper(cgroup: string, netns?: string): Promise<number> {
  const enter = netns ? `exec nsenter --net=/var/run/netns/${netns} -- sleep 600` : "exec sleep 600";
  const p = spawn("sh", ["-c", `echo $$ > "$0/cgroup.procs" && ${enter}`, cgroup], { stdio: "ignore" });
  procs.push(p);
  await new Promise((r) => setTimeout(r, 200));
  if (p.pid === undefined || p.exitCode !== null) throw new Error(`could not start a process in ${cgroup}`);
  return p.pid;
}

describe("pod locator on real cgroups and network namespaces", () => {
  beforeAll(async () => {
    requireRoot("the pod locator test");
    root = join(cgroup2Mount(), `nodemesh-test-kube-${process.pid}`);
    const rel = `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replaceAll("-", "_")}.slice`;
    podDir = join(root, rel);
    mkdirSync(join(podDir, "cri-containerd-0123.scope"), { recursive: true });
    mkdirSync(join(podDir, "crio-conmon-0123.scope"), { recursive: true });
    await run("ip", ["netns", "add", NETNS]);
    await sleeper(join(podDir, "crio-conmon-0123.scope")); // host netns: must be skipped
    await sleeper(join(podDir, "cri-containerd-0123.scope"), NETNS);
  });

  afterAll(async () => {
    for (const p of procs) p.kill("SIGKILL");
    await new Promise((r) => setTimeout(r, 200));
    // Innermost first: a cgroup directory is removable only once empty (rmdir, never rm -r).
    if (root)
      await run("find", [root, "-depth", "-type", "d", "-exec", "rmdir", "{}", ";"]).catch(() => undefined);
    await run("ip", ["netns", "del", NETNS]).catch(() => undefined);
  });

  test("the UID leads to the container's network namespace", () => {
    const found = locatePod(UID, "Burstable", { cgroupRoot: root });
    expect(found?.cgroup).toBe(
      `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replaceAll("-", "_")}.slice`,
    );
    expect(statSync(found?.netns ?? "/nonexistent").ino).toBe(statSync(`/var/run/netns/${NETNS}`).ino);
  });

  test("another UID, or a pod whose processes are gone, is not found", async () => {
    expect(locatePod(randomUUID(), "Burstable", { cgroupRoot: root })).toBeUndefined();
    for (const p of procs) p.kill("SIGKILL");
    await new Promise((r) => setTimeout(r, 200));
    expect(locatePod(UID, "Burstable", { cgroupRoot: root })).toBeUndefined();
  });

  test("placement waits for a container that starts late, and gives up on one that never does", async () => {
    const uid = randomUUID();
    const rel = `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid.replaceAll("-", "_")}.slice`;
    const scope = join(root, rel, "cri-containerd-4567.scope");
    mkdirSync(scope, { recursive: true });
    const placer = new PodPlacer({ locator: { cgroupRoot: root }, log: pino({ level: "silent" }) });
    const workload = (id: string) => ({
      uid: "shop/late",
      netns: undefined,
      cgroup: undefined,
      entry: {
        metadata: { annotations: { "nodemesh.io/pod-uid": id, "nodemesh.io/qos-class": "BestEffort" } },
      },
    });
    const placed = placer.place(workload(uid));
    await new Promise((r) => setTimeout(r, 300));
    await sleeper(scope, NETNS);
    const where = await placed;
    expect(where.cgroup).toBe(rel);
    expect(statSync(where.netns ?? "/nonexistent").ino).toBe(statSync(`/var/run/netns/${NETNS}`).ino);
    const quick = new PodPlacer({
      locator: { cgroupRoot: root },
      log: pino({ level: "silent" }),
      attempts: 3,
    });
    await expect(quick.place(workload(randomUUID()))).rejects.toMatchObject({
      code: "NODEMESH_ERR_POD_NOT_FOUND",
    });
  });
});

// Placement of local workloads (agent/node/pod-placement.ts): an entry that names its netns is used
// as given; a Kubernetes pod (UID annotation, no netns) is looked up, retried with a doubling
// bounded delay, and refused with an error naming the pod and the roots when it never appears;
// the roots come from /proc/mounts and NODEMESH_PROC_ROOT.
import pino from "pino";
import { describe, expect, test, vi } from "vitest";
import {
  PodPlacer,
  cgroup2MountOf,
  podLocatorOptionsFromEnv,
  podToLocate,
} from "../../../../agent/node/pod-placement.ts";
import type { PlaceableWorkload } from "../../../../agent/node/pod-placement.ts";
import type { PodLocation } from "../../../../agent/node/pod-locator.ts";

const log = pino({ level: "silent" });
const UID = "0f3c1a2b-1111-2222-3333-444455556666";
const GUESS = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replaceAll("-", "_")}.slice`;
const pod = (over: Partial<PlaceableWorkload> = {}): PlaceableWorkload => ({
  uid: "shop/web-1",
  netns: undefined,
  cgroup: GUESS,
  entry: { metadata: { annotations: { "nodemesh.io/pod-uid": UID, "nodemesh.io/qos-class": "Burstable" } } },
  ...over,
});
const FOUND: PodLocation = {
  cgroup: "/kubepods/burstable/pod" + UID,
  netns: "/host/proc/42/ns/net",
  pid: 42,
};

describe("podToLocate", () => {
  test("a pod UID without netns is looked up; a netns or no UID is used as given", () => {
    expect(podToLocate(pod())).toEqual({ uid: UID, qosClass: "Burstable" });
    expect(podToLocate(pod({ netns: "/var/run/netns/x" }))).toBeUndefined();
    expect(podToLocate(pod({ entry: { metadata: {} } }))).toBeUndefined();
    expect(podToLocate(pod({ entry: { metadata: { annotations: { "nodemesh.io/pod-uid": "" } } } }))).toBe(
      undefined,
    );
  });
});

describe("locator roots", () => {
  const MOUNTS = [
    "proc /proc proc rw 0 0",
    "cgroup2 /host\\040cgroup cgroup2 rw,nosuid 0 0",
    "cgroup2 /other cgroup2 rw 0 0",
  ].join("\n");

  test("the first cgroup2 mount, with the kernel's octal escapes decoded", () => {
    expect(cgroup2MountOf(MOUNTS)).toBe("/host cgroup");
    expect(cgroup2MountOf("proc /proc proc rw 0 0\n")).toBeUndefined();
  });

  test("NODEMESH_PROC_ROOT and the cgroup2 mount; defaults when absent or unreadable", () => {
    expect(podLocatorOptionsFromEnv({ NODEMESH_PROC_ROOT: "/host/proc" }, () => MOUNTS)).toEqual({
      cgroupRoot: "/host cgroup",
      procRoot: "/host/proc",
    });
    const unreadable = () => {
      throw new Error("ENOENT");
    };
    expect(podLocatorOptionsFromEnv({}, unreadable)).toEqual({});
  });
});

describe("PodPlacer", () => {
  const sleeps: number[] = [];
  const sleep = async (ms: number) => void sleeps.push(ms);

  test("an entry with a netns is placed as given, without looking", async () => {
    const locate = vi.fn();
    const p = new PodPlacer({ locator: {}, log, locate, sleep });
    expect(await p.place(pod({ netns: "ns1", cgroup: undefined }))).toEqual({
      netns: "ns1",
      cgroup: undefined,
    });
    expect(locate).not.toHaveBeenCalled();
  });

  test("a pod found after two misses, with doubling delays; the found cgroup replaces the guess", async () => {
    sleeps.length = 0;
    const locate = vi
      .fn()
      .mockReturnValueOnce(undefined)
      .mockReturnValueOnce(undefined)
      .mockReturnValue(FOUND);
    const locator = { cgroupRoot: "/sys/fs/cgroup", procRoot: "/host/proc" };
    const p = new PodPlacer({ locator, log, locate, sleep, initialDelayMs: 10 });
    expect(await p.place(pod())).toEqual({ netns: FOUND.netns, cgroup: FOUND.cgroup, podUid: UID });
    expect(locate).toHaveBeenCalledWith(UID, "Burstable", locator);
    expect(sleeps).toEqual([10, 20]);
  });

  test("a pod never found is refused after the bounded looks, naming the pod and the roots", async () => {
    sleeps.length = 0;
    const locate = vi.fn(() => undefined);
    const p = new PodPlacer({
      locator: { procRoot: "/host/proc" },
      log,
      locate,
      sleep,
      attempts: 5,
      initialDelayMs: 100,
      maxDelayMs: 300,
    });
    const err = await p.place(pod()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "NODEMESH_ERR_POD_NOT_FOUND" });
    expect((err as Error).message).toContain(`pod shop/web-1 (uid ${UID})`);
    expect((err as Error).message).toContain("/sys/fs/cgroup");
    expect((err as Error).message).toContain("/host/proc");
    expect(locate).toHaveBeenCalledTimes(5);
    expect(sleeps).toEqual([100, 200, 300, 300]);
  });
});

// PodPlacer with CNI hints: a hinted pod is placed in the runtime's netns without looking for a
// process (there is none while the sandbox is set up); a forgotten hint falls back to the locator.
import pino from "pino";
import { describe, expect, test } from "vitest";
import { PodPlacer } from "../../../../agent/node/pod-placement.ts";

const UID = "0b9e2c3a-1111-2222-3333-444455556666";
const w = {
  uid: "shop/web-1",
  netns: undefined,
  cgroup: "/kubepods.slice/x",
  entry: { metadata: { annotations: { "nodemesh.io/pod-uid": UID } } },
};

describe("PodPlacer hints", () => {
  test("hint wins without a look; forget falls back to the locator", async () => {
    let looks = 0;
    const placer = new PodPlacer({
      locator: {},
      log: pino({ level: "silent" }),
      attempts: 1,
      locate: () => {
        looks++;
        return undefined;
      },
    });
    placer.hint(UID, "/var/run/netns/cni-1");
    expect(await placer.place(w)).toEqual({
      netns: "/var/run/netns/cni-1",
      cgroup: "/kubepods.slice/x",
      podUid: UID,
    });
    expect(looks).toBe(0);
    placer.forget(UID);
    await expect(placer.place(w)).rejects.toThrow(/has no cgroup with a running process/);
    expect(looks).toBe(1);
  });

  test("an entry that names its netns ignores hints", async () => {
    const placer = new PodPlacer({ locator: {}, log: pino({ level: "silent" }), locate: () => undefined });
    placer.hint(UID, "/var/run/netns/cni-1");
    expect(await placer.place({ ...w, netns: "/run/netns/own" })).toEqual({
      netns: "/run/netns/own",
      cgroup: w.cgroup,
    });
  });
});

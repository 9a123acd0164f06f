// The sockmap shortcut's part of the feature report: optional, so a missing piece turns the shortcut
// off (sockmap.available false, naming it) and never lands in `missing`, which would stop the datapath.
import { describe, expect, it } from "vitest";
import { assessFeatures } from "../../../native/features.ts";
import type { RawProbe } from "../../../native/features.ts";

const base: RawProbe = {
  kernelRelease: "6.1.0-18-amd64",
  btfVmlinux: true,
  capBpf: 0,
  capNetAdmin: 0,
  capSysAdmin: 0,
  progTypes: { sock_ops: 1 },
  helpers: {},
};
const env = { cgroup2Mount: "/sys/fs/cgroup", bpffsMounted: true };

describe("sockmap feature detection", () => {
  it("is available when every probed piece is there", () => {
    const r = assessFeatures({ ...base, sockmap: { "prog:sk_msg": 1, "map:sockhash": 1 } }, env);
    expect(r.sockmap).toEqual({ available: true, missing: [] });
    expect(r.missing).toEqual([]);
  });

  it("names what is missing without failing the datapath", () => {
    const r = assessFeatures({ ...base, sockmap: { "prog:sk_msg": 0, "sk_msg:get_netns_cookie": -22 } }, env);
    expect(r.sockmap).toEqual({ available: false, missing: ["prog:sk_msg", "sk_msg:get_netns_cookie"] });
    expect(r.missing).toEqual([]);
  });

  it("is unavailable with an addon that does not probe it, or without CAP_BPF", () => {
    expect(assessFeatures(base, env).sockmap.available).toBe(false);
    const noBpf = assessFeatures({ ...base, capBpf: -1, sockmap: { "prog:sk_msg": 1 } }, env);
    expect(noBpf.sockmap.available).toBe(false);
  });
});

// The CPU-profile summary: self time per function and file from samples and deltas, idle left out
// of the shares, and malformed profiles refused with what is wrong.
import { describe, expect, it } from "vitest";
import { parseProfileArgs, renderSummary, summarizeProfile } from "../../../bench/cpu-profile.ts";
import type { CpuProfile } from "../../../bench/cpu-profile.ts";

const frame = (functionName: string, url = "", lineNumber = 0) => ({ functionName, url, lineNumber });
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame("(root)"), children: [2, 3, 4, 5] },
    { id: 2, callFrame: frame("(idle)") },
    { id: 3, callFrame: frame("route", "file:///work/main/agent/http/route.ts", 41) },
    { id: 4, callFrame: frame("writeGeneric", "node:internal/stream_base_commons", 9) },
    { id: 5, callFrame: frame("", "file:///work/main/agent/http/route.ts", 99) },
  ],
  startTime: 0,
  endTime: 10_000,
  // each sample's time is the next delta: route 3 ms, idle 4 ms, write 2 ms, anonymous 1 ms
  samples: [3, 2, 4, 5, 3],
  timeDeltas: [0, 3000, 4000, 2000, 1000],
};

describe("cpu profile summary", () => {
  it("adds self time per function and per file, with shares of the busy time", () => {
    const s = summarizeProfile(profile);
    expect(s.totalMs).toBe(10);
    expect(s.idleMs).toBe(4);
    expect(s.functions).toEqual([
      { name: "route agent/http/route.ts:42", selfMs: 3, share: 0.5 },
      { name: "writeGeneric node:internal/stream_base_commons:10", selfMs: 2, share: 2 / 6 },
      { name: "(anonymous) agent/http/route.ts:100", selfMs: 1, share: 1 / 6 },
    ]);
    expect(s.files[0]).toEqual({ name: "agent/http/route.ts", selfMs: 4, share: 4 / 6 });
    expect(summarizeProfile(profile, 1).functions).toHaveLength(1);
    expect(renderSummary(s)).toContain("busy 6 ms");
  });

  it("refuses what is not a consistent .cpuprofile", () => {
    expect(() => summarizeProfile({} as CpuProfile)).toThrow(/nodes, samples and timeDeltas/);
    expect(() => summarizeProfile({ ...profile, timeDeltas: [0] })).toThrow(/5 samples but 1 timeDeltas/);
    expect(() => summarizeProfile({ ...profile, samples: [9, 9, 9, 9, 9] })).toThrow(/node 9/);
  });

  it("takes several files and a --top count, and refuses anything else", () => {
    expect(parseProfileArgs(["a.cpuprofile", "b.cpuprofile", "--top", "30"])).toEqual({
      files: ["a.cpuprofile", "b.cpuprofile"],
      top: 30,
    });
    expect(parseProfileArgs(["a.cpuprofile"])).toEqual({ files: ["a.cpuprofile"], top: 25 });
    expect(parseProfileArgs([])).toBeUndefined();
    expect(parseProfileArgs(["a", "--top", "0"])).toBeUndefined();
    expect(parseProfileArgs(["a", "--top"])).toBeUndefined();
    expect(parseProfileArgs(["a", "--bottom", "3"])).toBeUndefined();
  });
});

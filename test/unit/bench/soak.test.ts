// The soak's verdicts (bench/soak.ts): RSS growth and open-file drift from the ends of the post-warm-up
// samples, and the failed-request count.
import { describe, expect, it } from "vitest";
import { drift, ends, FD_SLACK, soakTargets, type Sample } from "../../../bench/soak.ts";

const series = (rss: (i: number) => number, fds: (i: number) => number, n = 100): Sample[] =>
  Array.from({ length: n }, (_, i) => ({ atS: i * 10, rssMiB: rss(i), fds: fds(i) }));

describe("soak verdicts", () => {
  it("compares the mean of the first and of the last tenth", () => {
    expect(ends([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20])).toEqual({
      first: 1.5,
      last: 19.5,
    });
    expect(ends([4, 8])).toEqual({ first: 4, last: 8 });
  });

  it("passes flat memory and files, whatever the noise in between", () => {
    const flat = series(
      (i) => 80 + (i % 7),
      (i) => 40 + (i % 5),
    );
    expect(drift(flat).rssGrowth).toBeLessThan(0.05);
    const checks = soakTargets(new Map([["agent n1", flat]]), 0);
    expect(checks.map((c) => c.ok)).toEqual([true, true, true]);
  });

  it("fails a leak of memory, a leak of files, and any failed request", () => {
    const leaking = series(
      (i) => 80 + i * 0.1,
      (i) => 40 + Math.floor(i / 2),
    );
    const d = drift(leaking);
    expect(d.rssGrowth).toBeGreaterThan(0.05);
    expect(d.fdDrift).toBeGreaterThan(FD_SLACK);
    const checks = soakTargets(new Map([["agent n1", leaking]]), 3);
    expect(checks).toEqual([
      { target: "0 failed requests", value: "3", ok: false },
      expect.objectContaining({ target: "agent n1: RSS growth after warm-up <= 5 %", ok: false }),
      expect.objectContaining({ target: `agent n1: open files flat (drift <= ${FD_SLACK})`, ok: false }),
    ]);
  });

  it("reports too few samples as not measured, not as a pass", () => {
    const checks = soakTargets(
      new Map([
        [
          "controller",
          series(
            () => 1,
            () => 1,
            1,
          ),
        ],
      ]),
      undefined,
    );
    expect(checks.map((c) => c.ok)).toEqual([undefined, undefined]);
  });
});

// The pure parts of the benchmark harness: the open-loop schedule, quantiles, argument parsing,
// the HTTP response framer, /proc parsing, wrk parsing and the report's ratios and targets.
import { describe, expect, it } from "vitest";
import {
  buildRequest,
  dueCount,
  intervalNs,
  LoadgenArgsError,
  parseLoadgenArgs,
  quantile,
  ResponseFramer,
  scheduledAt,
  summarize,
  untilNext,
} from "../../../bench/loadgen-core.ts";
import { parseWrk, wrkScript } from "../../../bench/measure.ts";
import type { PathResult } from "../../../bench/measure.ts";
import { parseCpuSeconds, parseRssBytes } from "../../../bench/proc-stats.ts";
import { checkTargets, dataplaneRows, ratio, renderDataplane } from "../../../bench/report.ts";

describe("open-loop schedule", () => {
  it("spaces sends at 1/rate whatever the replies do", () => {
    const iv = intervalNs(1000);
    expect(iv).toBe(1e6);
    expect(scheduledAt(0, iv)).toBe(0);
    expect(scheduledAt(250, iv)).toBe(250e6);
    expect(intervalNs(500)).toBe(2e6);
  });

  it("counts the requests due by a time, including the one due exactly then, capped at the total", () => {
    const iv = intervalNs(1000);
    expect(dueCount(-1, iv, 10)).toBe(0);
    expect(dueCount(0, iv, 10)).toBe(1);
    expect(dueCount(999_999, iv, 10)).toBe(1);
    expect(dueCount(1e6, iv, 10)).toBe(2);
    // a sender that stalled 5.5 ms catches up at once: no coordinated omission
    expect(dueCount(5.5e6, iv, 10)).toBe(6);
    expect(dueCount(60e6, iv, 10)).toBe(10);
  });

  it("tells how long until the next send", () => {
    const iv = intervalNs(1000);
    expect(untilNext(0.4e6, 1, iv)).toBe(0.6e6);
    expect(untilNext(3e6, 1, iv)).toBe(0);
  });
});

describe("quantiles", () => {
  it("uses the nearest rank", () => {
    const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect(quantile(sorted, 0.5)).toBe(50);
    expect(quantile(sorted, 0.99)).toBe(99);
    expect(quantile(sorted, 1)).toBe(100);
    expect(quantile(sorted, 0)).toBe(1);
    expect(quantile([7], 0.99)).toBe(7);
    expect(quantile([], 0.5)).toBeNaN();
  });

  it("summarizes nanoseconds as milliseconds, unsorted input included", () => {
    const ns = [3e6, 1e6, 2e6, 4e6, 250e3];
    const s = summarize(ns);
    expect(s).toEqual({ count: 5, p50: 2, p90: 4, p99: 4, max: 4, mean: 2.05 });
    expect(summarize([]).p50).toBeNaN();
  });
});

describe("loadgen arguments", () => {
  it("parses a full command line with defaults for the rest", () => {
    const a = parseLoadgenArgs(["--target", "10.1.2.2:8080", "--conn=new", "--rate", "500"]);
    expect(a).toMatchObject({
      host: "10.1.2.2",
      port: 8080,
      mode: "open",
      conn: "new",
      rate: 500,
      body: 1024,
    });
  });

  it("rejects what it does not understand, naming the option", () => {
    expect(() => parseLoadgenArgs([])).toThrow(/--target host:port is required/);
    expect(() => parseLoadgenArgs(["--target", "x:1", "--mode", "burst"])).toThrow(LoadgenArgsError);
    expect(() => parseLoadgenArgs(["--target", "x:1", "--rate", "-3"])).toThrow(/--rate -3/);
    expect(() => parseLoadgenArgs(["--target", "x:1", "--rate", "0"])).toThrow(/> 0/);
    expect(() => parseLoadgenArgs(["--target", "x:1", "--bogus", "1"])).toThrow(/unknown option --bogus/);
    expect(() => parseLoadgenArgs(["--target", "x:1", "--rate"])).toThrow(/needs a value/);
  });
});

describe("HTTP framing", () => {
  it("builds a POST with the body size and connection mode asked for", () => {
    const req = buildRequest("10.1.2.2", 8080, 1024, false).toString("latin1");
    expect(req).toMatch(/^POST \/ HTTP\/1\.1\r\n/);
    expect(req).toContain("Content-Length: 1024\r\n");
    expect(req).toContain("Connection: close\r\n");
    expect(req.length - req.indexOf("\r\n\r\n") - 4).toBe(1024);
  });

  it("frames responses split anywhere and several in one chunk", () => {
    const one = Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    const two = Buffer.from("HTTP/1.1 503 Busy\r\ncontent-length: 0\r\n\r\n");
    const f = new ResponseFramer();
    const all = Buffer.concat([one, two, one]);
    const seen: number[] = [];
    for (let i = 0; i < all.length; i += 7) seen.push(...f.push(all.subarray(i, i + 7)));
    expect(seen).toEqual([200, 503, 200]);
    expect(new ResponseFramer().push(Buffer.concat([one, two]))).toEqual([200, 503]);
  });

  it("refuses a response it cannot frame", () => {
    expect(() => new ResponseFramer().push(Buffer.from("HTTP/1.1 200 OK\r\n\r\n"))).toThrow(/content-length/);
  });
});

describe("measurement parsing", () => {
  it("reads CPU seconds and RSS from /proc text, even with spaces in the command name", () => {
    const stat = "1234 (my proc) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 1 0 100 1000 200";
    expect(parseCpuSeconds(stat, 100)).toBe(3);
    expect(parseRssBytes("Name:\tnode\nVmRSS:\t   51200 kB\nVmSwap:\t0 kB\n")).toBe(51200 * 1024);
    expect(parseRssBytes("Name:\tzombie\n")).toBeNaN();
  });

  it("reads wrk's summary and counts socket errors and bad statuses", () => {
    const out = `Running 2s test @ http://10.1.2.2:8080/
  11751 requests in 2.00s, 13.35MB read
  Socket errors: connect 0, read 2, write 1, timeout 0
  Non-2xx or 3xx responses: 4
Requests/sec:   5862.38
`;
    expect(parseWrk(out)).toEqual({ requests: 11751, rps: 5862, errors: 7 });
    expect(parseWrk("unable to connect")).toBeUndefined();
    expect(wrkScript("new")).toContain('wrk.headers["Connection"] = "close"');
    expect(wrkScript("keepalive")).not.toContain("Connection");
  });
});

describe("report", () => {
  const path = (
    name: string,
    p50: number,
    p99: number,
    cpu: number,
    perCore: number,
    rss: number[],
  ): PathResult => ({
    name,
    available: true,
    fixed: [
      {
        conn: "keepalive",
        rate: 1000,
        p50,
        p90: p99,
        p99,
        max: p99,
        achievedRps: 1000,
        errors: 0,
        sendLagP99: 0.1,
        cpuPer10k: cpu,
      },
    ],
    max: [{ conn: "keepalive", rps: 5000, errors: 0, proxyCpuS: 1, perCoreRps: perCore }],
    rssIdleMiB: rss,
    rssAfterLoadMiB: rss,
    rssHeldMiB: rss,
    held: rss.length ? 1000 : 0,
  });
  /** `base` plus a new-connection run at 500 rps and a closed-loop maximum with a new connection each. */
  const withNewConns = (base: PathResult, p50: number, cpuPer10k: number, maxRps: number): PathResult => ({
    ...base,
    fixed: [...base.fixed, { ...base.fixed[0]!, conn: "new", rate: 500, p50, cpuPer10k }],
    max: [...base.max, { conn: "new", rps: maxRps, errors: 0, proxyCpuS: 1, perCoreRps: maxRps }],
  });

  it("gives every figure as ratios against the same run's baselines", () => {
    expect(ratio(3, 2)).toBe("1.50x");
    expect(ratio(3, Number.NaN)).toBe("-");
    expect(ratio(3, 0)).toBe("-");
    const results = [
      path("direct", 0.4, 1, Number.NaN, Number.NaN, []),
      path("haproxy", 0.6, 2, 2, 4000, [20, 21]),
    ];
    const p50 = dataplaneRows(results).find((r) => r.label === "keep-alive 1000 rps: p50 ms");
    expect(p50?.values).toMatchObject({ direct: 0.4, haproxy: 0.6 });
    const text = renderDataplane([
      ...results,
      { ...path("mesh", 0, 0, 0, 0, []), available: false, reason: "demo/mesh.ts is missing" },
    ]);
    expect(text).toContain("1.50x");
    expect(text).toContain("mesh: not available (demo/mesh.ts is missing)");
  });

  it("checks the issue's targets for the mesh, and says when they were not measured", () => {
    const direct = withNewConns(path("direct", 0.4, 1, Number.NaN, Number.NaN, []), 0.7, Number.NaN, 4000);
    const haproxy = path("haproxy", 0.6, 2, 2, 4000, [20, 21]);
    const good = checkTargets([
      direct,
      haproxy,
      withNewConns(path("mesh", 0.6, 1.4, 2.4, 4000, [50, 60]), 1.6, 2.9, 1600),
    ]);
    expect(good.map((c) => [c.target, c.ok])).toEqual(good.map((c) => [c.target, true]));
    expect(good).toHaveLength(9);
    expect(good.find((c) => c.target.startsWith("new connection: both agents"))?.value).toBe("0.290 ms");
    const bad = checkTargets([
      direct,
      haproxy,
      withNewConns(path("mesh", 0.7, 1.6, 2.6, 3900, [50, 100]), 1.8, 3.1, 1400),
    ]);
    expect(bad.map((c) => [c.target, c.ok])).toEqual(bad.map((c) => [c.target, false]));
    const none = checkTargets([direct, haproxy]);
    expect(none.every((c) => c.ok === undefined && c.value === "not measured")).toBe(true);
  });
});

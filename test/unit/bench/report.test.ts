// The L7 table beside the L4 one: keep-alive rows only, CPU per 1k requests, the added p50 over
// direct, ratios against HAProxy in HTTP mode, and issue 7's targets.
import { describe, expect, it } from "vitest";
import type { FixedRun, PathResult } from "../../../bench/measure.ts";
import {
  checkAllTargets,
  checkL7Targets,
  checkLayersTargets,
  dataplaneRows,
  L4_FLOOR_TABLE,
  L4_TABLE,
  L7_FLOOR_TABLE,
  L7_TABLE,
  renderDataplane,
  tablesFor,
} from "../../../bench/report.ts";

const fixed = (conn: FixedRun["conn"], p50: number, cpuPer10k: number): FixedRun => ({
  conn,
  rate: 1000,
  p50,
  p90: p50 * 2,
  p99: p50 * 3,
  max: p50 * 4,
  achievedRps: 1000,
  errors: 0,
  sendLagP99: 0.1,
  cpuPer10k,
});

const result = (
  name: string,
  p50: number,
  cpuPer10k: number,
  perCoreRps: number,
  withNew = false,
): PathResult => ({
  name,
  available: true,
  fixed: [fixed("keepalive", p50, cpuPer10k), ...(withNew ? [fixed("new", p50 * 2, cpuPer10k * 2)] : [])],
  max: [
    { conn: "keepalive", rps: 9000, errors: 0, proxyCpuS: 1, perCoreRps },
    ...(withNew
      ? [{ conn: "new" as const, rps: 900, errors: 0, proxyCpuS: 1, perCoreRps: perCoreRps / 10 }]
      : []),
  ],
  rssIdleMiB: [],
  rssAfterLoadMiB: [],
  rssHeldMiB: [],
  held: 0,
});

const direct = result("direct", 0.4, Number.NaN, Number.NaN, true);
const haproxy = result("haproxy", 0.7, 3, 10_000, true);
const hapHttp = result("haproxy-http", 0.6, 3.2, 18_000);

describe("L7 report", () => {
  it("shows keep-alive rows only, CPU per 1k requests and the p50 added over direct", () => {
    const rows = dataplaneRows([direct, hapHttp, result("mesh-http", 0.8, 6, 9000)], L7_TABLE);
    const labels = rows.map((r) => r.label);
    expect(labels.some((l) => l.startsWith("new conn"))).toBe(false);
    const by = (label: string) => rows.find((r) => r.label === label)?.values;
    expect(by("keep-alive 1000 rps: proxy CPU s / 1k req")).toMatchObject({ "mesh-http": 0.6 });
    expect(by("keep-alive 1000 rps: proxy CPU s / 1k req")?.["haproxy-http"]).toBeCloseTo(0.32);
    const added = by("keep-alive 1000 rps: p50 added over direct ms");
    expect(added?.["mesh-http"]).toBeCloseTo(0.4);
    expect(added?.["haproxy-http"]).toBeCloseTo(0.2);
    expect(added?.["direct"]).toBeNaN();
    expect(by("max keep-alive: rps per proxy core")).toMatchObject({
      "mesh-http": 9000,
      "haproxy-http": 18_000,
    });
  });

  it("keeps the L4 table's rows per 10k and both connection modes", () => {
    const labels = dataplaneRows([direct, haproxy], L4_TABLE).map((r) => r.label);
    expect(labels).toContain("keep-alive 1000 rps: proxy CPU s / 10k req");
    expect(labels).toContain("max new conn: rps per proxy core");
  });

  it("renders the tables whose proxy paths ran, each with its own unavailable notes", () => {
    const meshDown = { ...result("mesh-http", 0, 0, 0), available: false, reason: "startMesh() failed" };
    expect(tablesFor([direct])).toEqual([L4_TABLE]);
    expect(tablesFor([direct, hapHttp])).toEqual([L7_TABLE]);
    expect(tablesFor([direct, haproxy, hapHttp])).toEqual([L4_TABLE, L7_TABLE]);
    // The floors (bare Node relays) follow the table of their layer, beside the mesh path.
    const relay = result("node-relay", 0.7, 8, 4000);
    const relayTcp = result("node-relay-tcp", 0.4, 2.2, 30000, true);
    expect(tablesFor([direct, haproxy, relayTcp, hapHttp, relay])).toEqual([
      L4_TABLE,
      L4_FLOOR_TABLE,
      L7_TABLE,
      L7_FLOOR_TABLE,
    ]);
    const floor = renderDataplane([direct, relay, result("mesh-http", 0.9, 11, 2300)]);
    expect(floor).toContain("mesh-http/node-relay");
    expect(dataplaneRows([direct, relay], L7_FLOOR_TABLE).map((r) => r.label)).toContain(
      "max keep-alive: rps per proxy core",
    );
    const text = renderDataplane([direct, haproxy, hapHttp, meshDown]);
    const [l4, l7] = text.split("\n\nL7: ");
    expect(l4).toMatch(/^L4: /);
    expect(l4).not.toContain("mesh-http");
    expect(l7).toContain("mesh-http/haproxy-http");
    expect(l7).toContain("mesh-http: not available (startMesh() failed)");
  });

  it("checks issue 7's targets against HAProxy HTTP mode, and says when they were not measured", () => {
    const good = checkL7Targets([direct, hapHttp, result("mesh-http", 0.85, 3.9, 9000)]);
    expect(good.map((c) => c.ok)).toEqual([true, true, true]);
    expect(good[0]?.value).toBe("0.500x");
    const bad = checkL7Targets([direct, hapHttp, result("mesh-http", 0.95, 4.1, 8900)]);
    expect(bad.map((c) => c.ok)).toEqual([false, false, false]);
    const none = checkL7Targets([direct, hapHttp]);
    expect(none.every((c) => c.ok === undefined && c.value === "not measured")).toBe(true);
    expect(checkAllTargets([direct, hapHttp]).map((c) => c.target)).toEqual(none.map((c) => c.target));
    expect(checkAllTargets([direct, haproxy, hapHttp])).toHaveLength(9 + 3);
    // The floor tables add no targets of their own (the L4 ones were printed once per table).
    const floors = [result("node-relay", 0.7, 8, 4000), result("node-relay-tcp", 0.4, 2.2, 30000, true)];
    expect(checkAllTargets([direct, haproxy, hapHttp, ...floors])).toHaveLength(9 + 3);
  });
});

describe("layer-cost targets (issue 8)", () => {
  const rounds = (pairs: [number, number][]) =>
    pairs.map(([p50, perCoreRps]) => ({
      fixed: { ...fixed("keepalive", p50, 1), rate: 500 },
      max: { conn: "keepalive" as const, rps: 1000, errors: 0, proxyCpuS: 1, perCoreRps },
    }));

  it("takes the median of the alternating rounds' ratios, p50 at their rate", () => {
    const bare = {
      ...result("mesh-http", 1, 10, 1000),
      rounds: rounds([
        [1, 1000],
        [1, 1000],
        [1, 1000],
      ]),
    };
    // One outlier round (0.5x) does not decide: the median is 0.95x.
    const layers = {
      ...result("mesh-http-layers", 2, 12, 500),
      rounds: rounds([
        [1.05, 950],
        [1.02, 500],
        [1.2, 960],
      ]),
    };
    const [tput, p50] = checkLayersTargets([bare, layers]);
    expect(tput).toEqual({
      target: "L7 layers: throughput per core >= 0.9x the bare route",
      value: "0.950x (median of 0.950, 0.500, 0.960)",
      ok: true,
    });
    expect(p50?.target).toBe("L7 layers: p50 at 500 rps <= 1.1x the bare route");
    expect(p50?.ok).toBe(true);
    expect(p50?.value.startsWith("1.05")).toBe(true);
  });

  it("falls back to the single measurements without rounds", () => {
    const [tput, p50] = checkLayersTargets([
      result("mesh-http", 1, 10, 1000),
      result("mesh-http-layers", 1.2, 12, 850),
    ]);
    expect(tput?.ok).toBe(false);
    expect(p50).toMatchObject({ target: "L7 layers: p50 at 1k rps <= 1.1x the bare route", ok: false });
  });
});

// The controller's rebalancing with fake time: shares follow reported demand, a node joining gets its
// part and one leaving frees it, stale reports expire (the node falls back to its reserved last share),
// limits that left the configuration are forgotten, and tick() sends each serving node its shares.
import { describe, expect, it } from "vitest";
import type { DemandReport, GlobalLimit, RateLimitShares } from "../../../../controller/api/index.ts";
import { GlobalRateLimitBalancer } from "../../../../controller/ratelimit/balancer.ts";

const ID = "RateLimitPolicy/default/api|api.default";
const limit = (nodes: string[], rps = 100): GlobalLimit => ({
  id: ID,
  policy: "RateLimitPolicy/default/api",
  host: "api.default",
  requestsPerSecond: rps,
  burst: rps,
  alwaysHeaders: false,
  nodes,
});
const demand = (offeredPerSecond: number, id = ID): DemandReport => ({
  type: "demand",
  windowMs: 1000,
  limits: [{ id, offeredPerSecond, admitted: 0, refused: 0 }],
});
const shareOf = (m: Map<string, { id: string; requestsPerSecond: number }[]>, node: string) =>
  m.get(node)?.find((s) => s.id === ID)?.requestsPerSecond;

function balancer() {
  let t = 0;
  const b = new GlobalRateLimitBalancer({ intervalMs: 2000, now: () => t });
  return { b, advance: (ms: number) => (t += ms) };
}

describe("GlobalRateLimitBalancer", () => {
  it("follows demand: 3:1 reports give a 3:1 split above the floors", () => {
    const { b } = balancer();
    b.report("n1", demand(150));
    b.report("n2", demand(50));
    const out = b.rebalance([limit(["n1", "n2"])]);
    expect(shareOf(out, "n1")).toBeCloseTo(72.5, 9);
    expect(shareOf(out, "n2")).toBeCloseTo(27.5, 9);
  });

  it("makes room for a node that joins and gives back the share of one that leaves", () => {
    const { b } = balancer();
    b.report("n1", demand(100));
    b.report("n2", demand(100));
    expect(shareOf(b.rebalance([limit(["n1", "n2"])]), "n1")).toBeCloseTo(50, 9);
    // n3 joins the serving set before its first report: reserved R / 3, what it enforces alone.
    const joined = b.rebalance([limit(["n1", "n2", "n3"])]);
    expect(shareOf(joined, "n3")).toBeCloseTo(100 / 3, 9);
    expect(shareOf(joined, "n1")! + shareOf(joined, "n2")! + shareOf(joined, "n3")!).toBeLessThanOrEqual(100);
    const left = b.rebalance([limit(["n1"])]);
    expect([...left.keys()]).toEqual(["n1"]);
    expect(shareOf(left, "n1")).toBe(100);
  });

  it("expires stale reports: the silent node keeps its last share reserved, the rest moves on", () => {
    const { b, advance } = balancer();
    b.report("n1", demand(300));
    b.report("n2", demand(100));
    const first = b.rebalance([limit(["n1", "n2"])]);
    const n1Share = shareOf(first, "n1")!;
    advance(5000);
    b.report("n2", demand(100)); // n1 went quiet
    advance(2000);
    const later = b.rebalance([limit(["n1", "n2"])]);
    expect(shareOf(later, "n1")).toBeCloseTo(n1Share, 9);
    expect(shareOf(later, "n2")).toBeCloseTo(100 - n1Share, 9);
  });

  it("forgets limits that left the configuration, and ignores reports for unknown ids", () => {
    const { b } = balancer();
    b.report("n1", demand(10, "RateLimitPolicy/default/other|x.default"));
    const out = b.rebalance([limit(["n1", "n2"])]);
    // Unknown id: n1 has no demand for this limit, so both are unreported: R / N each.
    expect(shareOf(out, "n1")).toBe(50);
    expect(b.rebalance([]).size).toBe(0);
  });

  it("tick() sends every serving node its shares and counts the split", () => {
    const { b } = balancer();
    const sent: [string, RateLimitShares][] = [];
    let splits = 0;
    const deps = {
      limits: () => [limit(["n1", "n2"], 40)],
      send: (n: string, m: RateLimitShares) => sent.push([n, m]),
      rebalanced: () => (splits += 1),
    };
    b.tick(deps);
    expect(splits).toBe(1);
    expect(sent.map(([n]) => n).sort()).toEqual(["n1", "n2"]);
    expect(sent[0]![1]).toMatchObject({
      type: "shares",
      intervalMs: 2000,
      shares: [{ id: ID, requestsPerSecond: 20, burst: 20 }],
    });
    // Nothing configured and nothing granted: no split to count.
    const idle = new GlobalRateLimitBalancer();
    idle.tick({ ...deps, limits: () => [] });
    expect(splits).toBe(1);
  });

  it("refuses bad settings with the setting named", () => {
    expect(() => new GlobalRateLimitBalancer({ intervalMs: 10 })).toThrow(
      /rebalance interval .* at least 100 ms/,
    );
    expect(() => new GlobalRateLimitBalancer({ floorRatio: 2 })).toThrow(/floorRatio must be in \[0, 1\]/);
  });
});

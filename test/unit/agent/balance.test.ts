import { describe, expect, it } from "vitest";
import {
  ActiveConnections,
  LeastConnections,
  RoundRobin,
  createBalancer,
} from "../../../agent/balance/balancer.ts";
import { OutlierDetector } from "../../../agent/health/outlier.ts";
import { candidates } from "../../../agent/balance/endpoint-state.ts";

describe("balancers", () => {
  it("round robin cycles through candidates", () => {
    const rr = new RoundRobin();
    const keys = ["a", "b", "c"];
    expect([1, 2, 3, 4, 5, 6].map(() => rr.pick(keys))).toEqual(["a", "b", "c", "a", "b", "c"]);
    expect(rr.pick([])).toBeUndefined();
  });

  it("least connections picks the endpoint with fewest active connections, ties round robin", () => {
    const active = new ActiveConnections();
    const lc = new LeastConnections(active);
    active.inc("a");
    active.inc("a");
    active.inc("b");
    expect(lc.pick(["a", "b", "c"])).toBe("c");
    active.inc("c");
    expect(lc.pick(["a", "b", "c"])).not.toBe("a"); // b or c (1 each)
    const ties = new Set([lc.pick(["b", "c"]), lc.pick(["b", "c"])]);
    expect(ties).toEqual(new Set(["b", "c"]));
    active.dec("a");
    active.dec("a");
    expect(lc.pick(["a", "b", "c"])).toBe("a");
    expect(createBalancer("LEAST_REQUEST", active).kind).toBe("LEAST_REQUEST");
    expect(createBalancer("ROUND_ROBIN", active).kind).toBe("ROUND_ROBIN");
  });

  it("candidates skip ejected and already-tried endpoints; panic only on the first attempt", () => {
    const eps = ["a", "b", "c"];
    const ejected = new Set(["b"]);
    expect(candidates(eps, new Set(), (k) => ejected.has(k))).toEqual(["a", "c"]);
    expect(candidates(eps, new Set(["a"]), (k) => ejected.has(k))).toEqual(["c"]);
    const all = (_k: string) => true;
    expect(candidates(eps, new Set(), all)).toEqual(["a", "b", "c"]); // panic: try anyway
    expect(candidates(eps, new Set(["a"]), all)).toEqual([]); // retries give up
  });
});

describe("outlier detection (fake time)", () => {
  const settings = {
    consecutiveGatewayErrors: 2,
    intervalMs: 1000,
    baseEjectionTimeMs: 5000,
    maxEjectionPercent: 50,
  };

  it("ejects after N consecutive failures, for base × times-ejected, and lets it back", () => {
    let now = 0;
    const od = new OutlierDetector(settings, () => now);
    expect(od.failure("a", 4)).toBe(false);
    expect(od.failure("a", 4)).toBe(true);
    expect(od.isEjected("a")).toBe(true);
    now = 4999;
    expect(od.isEjected("a")).toBe(true);
    now = 5000;
    expect(od.isEjected("a")).toBe(false);
    od.failure("a", 4);
    expect(od.failure("a", 4)).toBe(true);
    expect(od.ejectedForMs("a")).toBe(10_000); // second ejection: 2 × base
  });

  it("a success resets the consecutive count", () => {
    const od = new OutlierDetector(settings, () => 0);
    od.failure("a", 2);
    od.success("a");
    expect(od.failure("a", 2)).toBe(false);
  });

  it("never ejects more than maxEjectionPercent, but always at least one", () => {
    const od = new OutlierDetector(settings, () => 0);
    od.failure("a", 2);
    expect(od.failure("a", 2)).toBe(true); // 1 of 2 = 50 %
    od.failure("b", 2);
    expect(od.failure("b", 2)).toBe(false); // 2 of 2 = 100 % > 50 %
    expect(od.ejectedCount()).toBe(1);
  });

  it("is disabled with consecutiveGatewayErrors 0", () => {
    const od = new OutlierDetector({ ...settings, consecutiveGatewayErrors: 0 }, () => 0);
    for (let i = 0; i < 10; i++) expect(od.failure("a", 1)).toBe(false);
  });
});

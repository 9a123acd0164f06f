// The removal guard (controller/config-guard.ts): which changes wait for the operator's SIGHUP.
import { describe, expect, test } from "vitest";
import { removalHold } from "../../../controller/config-guard.ts";

const keys = (...list: string[]) => new Set(list);
const wl = (n: number, prefix = "w") =>
  Array.from({ length: n }, (_, i) => `WorkloadEntry/shop/${prefix}${i}`);

describe("removalHold", () => {
  const pol = ["AuthorizationPolicy/shop/deny", "PeerAuthentication/shop/strict"];
  const served = keys("Service/shop/web", ...wl(4), ...pol, "TrafficPolicy/shop/t");

  test.each([
    ["first configuration (nothing served)", undefined, keys(), false],
    ["nothing removed", served, served, false],
    [
      "one workload of eight resources removed",
      served,
      keys(...[...served].filter((k) => k !== "WorkloadEntry/shop/w0")),
      false,
    ],
    ["exactly the limit (4 of 8 = 50%)", served, keys("Service/shop/web", ...wl(2), pol[0] as string), false],
    ["over the limit (6 of 8)", served, keys("Service/shop/web", ...wl(1), "TrafficPolicy/shop/x"), true],
    ["every workload, at 50% only", served, keys("Service/shop/web", ...pol, "TrafficPolicy/shop/t"), true],
    ["everything", served, keys(), true],
    [
      "renames count as removals (4 of 8)",
      served,
      keys("Service/shop/web", ...wl(4, "v"), ...pol, "TrafficPolicy/shop/t"),
      false,
    ],
  ] as const)("%s", (_name, from, to, held) => {
    expect(removalHold(from, to, 50) !== undefined).toBe(held);
  });

  test("a mesh with no workloads can lose its policies under the limit", () => {
    const policies = keys("AuthorizationPolicy/a/x", "AuthorizationPolicy/a/y", "Service/a/s");
    expect(removalHold(policies, keys("Service/a/s", "AuthorizationPolicy/a/x"), 50)).toBeUndefined();
  });

  test("100 turns the fraction rule off; 0 holds any removal; every workload is always held", () => {
    const many = keys(...wl(10), "Service/shop/web");
    expect(removalHold(many, keys(...wl(1), "Service/shop/web"), 100)).toBeUndefined();
    expect(removalHold(many, keys(...wl(9), "Service/shop/web"), 0)).toBeDefined();
    expect(removalHold(many, keys("Service/shop/web"), 100)).toBeDefined();
  });

  test("the message counts by kind, names the rule and the way to apply it", () => {
    const hold = removalHold(served, keys("Service/shop/web", "TrafficPolicy/shop/x"), 50);
    expect(hold).toMatchObject({
      removed: 7,
      served: 8,
      byKind: { WorkloadEntry: 4, AuthorizationPolicy: 1, PeerAuthentication: 1, TrafficPolicy: 1 },
    });
    expect(hold?.message).toBe(
      "configuration held back: it removes 7 of 8 resources (4 WorkloadEntry, 1 AuthorizationPolicy, " +
        "1 PeerAuthentication, 1 TrafficPolicy) and every WorkloadEntry (4) would leave the mesh; still serving the last " +
        "good one. If the removal is intended, send SIGHUP to the controller to apply it",
    );
    const fraction = removalHold(
      keys(...wl(2), "Service/a/1", "Service/a/2", "Service/a/3"),
      keys(...wl(2)),
      50,
    );
    expect(fraction?.message).toContain("60% is more than --max-removal-percent 50");
  });

  test("works on the model's entry map as well as on key sets", () => {
    const map = new Map([...served].map((k) => [k, { json: "{}" }]));
    expect(removalHold(map, new Map(), 50)?.removed).toBe(8);
  });
});

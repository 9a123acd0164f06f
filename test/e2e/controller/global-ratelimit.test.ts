// The global rate limit's round trip over the real TLS config stream (in-process controller, two agent
// clients, no root needed): demand reports in, shares out in proportion to demand with the sum within R,
// rebalances counted, an agent that never reports (one that predates the message) gets no share line and
// keeps its stream, and a node whose reports stop keeps its last share reserved.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ControllerClient } from "../../../agent/control/client.ts";
import type { DemandReport, RateLimitShares } from "../../../controller/api/index.ts";
import { BASE_CONFIG, Harness, until, waitForConfig, workloadYaml } from "./harness.ts";

const R = 90;
const ID = "RateLimitPolicy/shop/web-global|web.shop";
const CONFIG = [
  BASE_CONFIG,
  // A second web workload on node-b: web is served by both nodes.
  workloadYaml("web-2", "10.1.0.4", "node-b").replace("labels: {app: web-2}", "labels: {app: web}"),
  `apiVersion: nodemesh.io/v1alpha1
kind: RateLimitPolicy
metadata: {name: web-global, namespace: shop}
spec:
  targetRefs: [{kind: Service, name: web}]
  global: {requestsPerSecond: ${R}}
`,
].join("---\n");

const demand = (offeredPerSecond: number): DemandReport => ({
  type: "demand",
  windowMs: 1000,
  limits: [{ id: ID, offeredPerSecond, admitted: 0, refused: 0 }],
});

describe("global rate limit over the config stream", () => {
  const h = new Harness(CONFIG);
  let a: ControllerClient;
  let b: ControllerClient;
  const got: Record<string, RateLimitShares[]> = { a: [], b: [] };
  let reporting: NodeJS.Timeout | undefined;

  beforeAll(async () => {
    await h.startController(0, { globalRateLimitIntervalMs: 200 });
    a = h.client("node-a");
    b = h.client("node-b");
    a.onShares((m) => got.a!.push(m));
    b.onShares((m) => got.b!.push(m));
    a.start();
    b.start();
    await waitForConfig(a, (c) => (c.rateLimitPolicies ?? []).length === 1);
    await waitForConfig(b, (c) => (c.rateLimitPolicies ?? []).length === 1);
  });
  afterAll(async () => {
    clearInterval(reporting);
    await h.close();
  });

  test("an agent that has not reported demand gets no share line, and its stream stays up", async () => {
    await new Promise((r) => setTimeout(r, 600)); // three rebalances
    expect(got.a).toEqual([]);
    expect(a.connected).toBe(true);
    expect(await h.metric("nodemesh_controller_global_ratelimit_rebalances_total")).toBeGreaterThanOrEqual(2);
  });

  test("3:1 demand gives a 3:1 split above the floors, never more than R in total", async () => {
    reporting = setInterval(() => {
      a.sendDemand(demand(3 * R));
      b.sendDemand(demand(R));
    }, 100);
    const share = (list: RateLimitShares[]) =>
      list.at(-1)?.shares.find((s) => s.id === ID)?.requestsPerSecond;
    // floor = 10 % of R / 2 = 4.5 each; the other 81 split 3:1.
    await until(
      () => Math.abs((share(got.a!) ?? 0) - 65.25) < 1e-6 && Math.abs((share(got.b!) ?? 0) - 24.75) < 1e-6,
      5000,
    );
    expect(share(got.a!)! + share(got.b!)!).toBeLessThanOrEqual(R);
    expect(got.a!.at(-1)).toMatchObject({ type: "shares", intervalMs: 200 });
  });

  test("when node-a stops reporting, its last share stays reserved (it keeps enforcing it)", async () => {
    clearInterval(reporting);
    reporting = setInterval(() => b.sendDemand(demand(10 * R)), 100);
    // A report goes stale after 3 report intervals (3 s: longer than 3 of these fast rebalances).
    await new Promise((r) => setTimeout(r, 3800));
    // node-a's last share was split while both reports were fresh (270 vs 900): 4.5 + 81 × 270 / 1170.
    const aLast = got.a!.at(-1)!.shares[0]!.requestsPerSecond;
    expect(aLast).toBeCloseTo(4.5 + (81 * 270) / 1170, 6);
    expect(got.b!.at(-1)!.shares[0]!.requestsPerSecond).toBeCloseTo(R - aLast, 6);
  });
});

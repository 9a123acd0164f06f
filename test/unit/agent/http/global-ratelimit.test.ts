// The destination's side of a global rate limit over a real MeshView, with fake time: before any share a
// node enforces R / (serving nodes); the controller's share replaces it and stays when the controller goes
// quiet; demand reports count what reached the limit; refusals answer 429 with the mesh-wide policy in
// RateLimit-Policy; a local bucket that refuses first keeps the request out of the global demand; a node
// that serves nothing reports nothing; the reporter sends reports and applies shares over its channel.
import { describe, expect, it } from "vitest";
import { GlobalRateLimitReporter, type RateLimitChannel } from "../../../../agent/http/global-report.ts";
import { LocalRateLimiter } from "../../../../agent/http/local-ratelimit.ts";
import { MeshView } from "../../../../agent/state/view.ts";
import {
  RateLimitPolicy,
  type DemandReport,
  type MeshConfig,
  type RateLimitShares,
} from "../../../../controller/api/index.ts";
import { baseConfig } from "../../../integration/agent/harness.ts";

const A = "spiffe://cluster.local/ns/default/sa/client";
const UID = "default/echo-a";
const ID = "RateLimitPolicy/default/mesh-wide|echo.default";

const rlp = (spec: object) =>
  RateLimitPolicy.parse({
    apiVersion: "nodemesh.io/v1alpha1",
    kind: "RateLimitPolicy",
    metadata: { name: "mesh-wide", namespace: "default" },
    spec: { targetRefs: [{ kind: "Service", name: "echo" }], ...spec },
  });

function view(over: Partial<MeshConfig>, node = "node-a"): MeshView {
  return new MeshView({ ...baseConfig("1", ["pem"]), ...over }, { nodeName: node });
}

function setup(node = "node-a") {
  let t = 0;
  const refusals: string[] = [];
  const l = new LocalRateLimiter({
    now: () => t,
    node,
    metrics: { rateLimited: (_d, p) => refusals.push(p) },
  });
  return { l, refusals, advance: (ms: number) => (t += ms) };
}

const req = { uid: UID, serviceHost: "echo.default", principal: A, rule: undefined };
const admitN = (l: LocalRateLimiter, v: MeshView, n: number) => {
  let ok = 0;
  for (let i = 0; i < n; i++) if (l.admit(v, req).ok) ok += 1;
  return ok;
};
const shares = (requestsPerSecond: number, burst = 1): RateLimitShares => ({
  type: "shares",
  intervalMs: 2000,
  shares: [{ id: ID, requestsPerSecond, burst }],
});

describe("global rate limit at the destination agent", () => {
  it("enforces R / serving nodes before the first share (echo runs on node-a and node-b)", () => {
    const v = view({ rateLimitPolicies: [rlp({ global: { requestsPerSecond: 20 } })] });
    const { l, advance } = setup();
    expect(admitN(l, v, 100)).toBe(10); // burst R / N = 10
    advance(1000);
    expect(admitN(l, v, 100)).toBe(10);
    expect(l.global.dump()).toMatchObject([
      { id: ID, shareRequestsPerSecond: 10, source: "initial", servingNodes: ["node-a", "node-b"] },
    ]);
  });

  it("takes the controller's share, and keeps it while no newer one comes (never lifting the limit)", () => {
    const v = view({ rateLimitPolicies: [rlp({ global: { requestsPerSecond: 20 } })] });
    const { l, advance } = setup();
    l.observe(v);
    admitN(l, v, 100);
    l.global.applyShares(shares(4, 2));
    advance(10_000);
    expect(admitN(l, v, 100)).toBe(2);
    let ok = 0;
    for (let i = 0; i < 100; i++) {
      advance(100);
      ok += admitN(l, v, 10);
    }
    // 4 rps for 10 s (the last fraction of a token may still be short by rounding).
    expect(ok).toBeGreaterThanOrEqual(39);
    expect(ok).toBeLessThanOrEqual(40);
    expect(l.global.dump()[0]).toMatchObject({ shareRequestsPerSecond: 4, source: "controller" });
  });

  it("answers 429 naming the policy, with the mesh-wide rate as RateLimit-Policy, and counts it", () => {
    const v = view({ rateLimitPolicies: [rlp({ global: { requestsPerSecond: 2, burst: 2 } })] });
    const { l, refusals } = setup();
    expect(l.admit(v, req).ok).toBe(true);
    const r = l.admit(v, req);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.policy).toBe("RateLimitPolicy/default/mesh-wide");
    expect(r.limit).toBe(
      "global rate limit exceeded (RateLimitPolicy/default/mesh-wide: 2 per second mesh-wide)",
    );
    expect(r.retryAfterMs).toBe(1000);
    expect(r.headers).toEqual({
      "ratelimit-limit": "1",
      "ratelimit-remaining": "0",
      "ratelimit-reset": "1",
      "ratelimit-policy": "2;w=1",
    });
    expect(refusals).toEqual(["RateLimitPolicy/default/mesh-wide"]);
  });

  it("gives admitted answers this node's RateLimit-* fields only with rateLimitHeaders: Always", () => {
    const quiet = view({ rateLimitPolicies: [rlp({ global: { requestsPerSecond: 4, burst: 4 } })] });
    const { l } = setup();
    expect(l.admit(quiet, req).headers).toBeUndefined();
    const speaks = view({
      rateLimitPolicies: [rlp({ global: { requestsPerSecond: 4, burst: 4 }, rateLimitHeaders: "Always" })],
    });
    expect(l.admit(speaks, req).headers).toMatchObject({
      "ratelimit-limit": "2", // this node's half of the burst
      "ratelimit-remaining": "0",
      "ratelimit-policy": "4;w=1",
    });
  });

  it("reports offered, admitted and refused per second over the window, then starts a new window", () => {
    const v = view({ rateLimitPolicies: [rlp({ global: { requestsPerSecond: 20 } })] });
    const { l, advance } = setup();
    l.observe(v);
    l.global.report();
    admitN(l, v, 30);
    advance(2000);
    const r = l.global.report();
    expect(r).toEqual({
      type: "demand",
      windowMs: 2000,
      limits: [{ id: ID, offeredPerSecond: 15, admitted: 10, refused: 20 }],
    });
    advance(1000);
    expect(l.global.report()!.limits[0]).toMatchObject({ offeredPerSecond: 0, admitted: 0, refused: 0 });
    expect(l.global.dump()[0]).toMatchObject({ admitted: 10, refused: 20 });
  });

  it("keeps a request a local bucket refused out of the global demand", () => {
    const v = view({
      rateLimitPolicies: [
        rlp({ tokenBucket: { maxTokens: 1, fillInterval: "1m" }, global: { requestsPerSecond: 100 } }),
      ],
    });
    const { l } = setup();
    expect(admitN(l, v, 5)).toBe(1);
    expect(l.global.dump()[0]).toMatchObject({ admitted: 1, refused: 0 });
  });

  it("enforces and reports nothing on a node that serves none of the Service", () => {
    const v = view({ rateLimitPolicies: [rlp({ global: { requestsPerSecond: 1 } })] }, "node-c");
    const { l } = setup("node-c");
    expect(admitN(l, v, 5)).toBe(5);
    expect(l.global.report()).toBeUndefined();
  });

  it("scales a controller share at once when R changes, and drops the limit with its policy", () => {
    const { l, advance } = setup();
    l.observe(view({ rateLimitPolicies: [rlp({ global: { requestsPerSecond: 20 } })] }));
    l.global.applyShares(shares(15, 15));
    l.observe(view({ rateLimitPolicies: [rlp({ global: { requestsPerSecond: 10 } })] }));
    expect(l.global.dump()[0]).toMatchObject({ shareRequestsPerSecond: 7.5, burst: 7.5 });
    advance(1);
    l.observe(view({ rateLimitPolicies: [] }));
    expect(l.global.size).toBe(0);
  });

  it("the reporter sends each report on the channel and applies the shares that come back", () => {
    const v = view({ rateLimitPolicies: [rlp({ global: { requestsPerSecond: 20 } })] });
    const { l } = setup();
    const sent: DemandReport[] = [];
    let deliver: ((m: RateLimitShares) => void) | undefined;
    const channel: RateLimitChannel = {
      onShares: (cb) => {
        deliver = cb;
        return () => (deliver = undefined);
      },
      sendDemand: (r) => sent.push(r) > 0,
    };
    const reporter = new GlobalRateLimitReporter({ limiter: l, channel, view: () => v, intervalMs: 60_000 });
    reporter.start();
    reporter.tick();
    expect(sent.map((r) => r.limits.map((x) => x.id))).toEqual([[ID]]);
    deliver!(shares(3, 2));
    expect(l.global.dump()[0]).toMatchObject({ shareRequestsPerSecond: 3, burst: 2, source: "controller" });
    reporter.stop();
    expect(deliver).toBeUndefined();
  });
});

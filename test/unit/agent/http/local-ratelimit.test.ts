// The destination's rate limiter over a real MeshView with fake time: per-source buckets limit one caller
// and not another, shared buckets limit everyone, a route-rule limit applies only to marked requests, a
// refusal by one limit costs the others nothing, IETF RateLimit-* fields on refusals always and on admitted
// answers only where a limit asks (`rateLimitHeaders: Always`),
// refusals counted with policy and caller, buckets of a removed policy dropped with the snapshot.
import { describe, expect, it } from "vitest";
import { LocalRateLimiter, rateLimitHeaders } from "../../../../agent/http/local-ratelimit.ts";
import { RULE_HEADER, ruleMarkLayer } from "../../../../agent/http/ratelimit-policy.ts";
import type { Exchange, ResponseHead } from "../../../../agent/http/exchange.ts";
import { MeshView } from "../../../../agent/state/view.ts";
import { RateLimitPolicy, TrafficPolicy, type MeshConfig } from "../../../../controller/api/index.ts";
import { baseConfig } from "../../../integration/agent/harness.ts";

const A = "spiffe://cluster.local/ns/default/sa/client-a";
const B = "spiffe://cluster.local/ns/default/sa/client-b";
const UID = "default/echo-a";

const rlp = (name: string, spec: object) =>
  RateLimitPolicy.parse({
    apiVersion: "nodemesh.io/v1alpha1",
    kind: "RateLimitPolicy",
    metadata: { name, namespace: "default" },
    spec,
  });
const bucket = { maxTokens: 2, fillInterval: "1m" };
const echo = [{ kind: "Service", name: "echo" }];

function view(over: Partial<MeshConfig>, version = "1"): MeshView {
  return new MeshView({ ...baseConfig(version, ["pem"]), ...over }, { nodeName: "node-a" });
}

function limiter() {
  let t = 0;
  const refusals: string[][] = [];
  const l = new LocalRateLimiter({
    now: () => t,
    metrics: { rateLimited: (d, p, s) => refusals.push([d, p, s]) },
  });
  return { l, refusals, advance: (ms: number) => (t += ms) };
}

const req = (principal: string, rule?: string) => ({
  uid: UID,
  serviceHost: "echo.default",
  principal,
  rule,
});

describe("LocalRateLimiter", () => {
  it("gives each caller its own bucket with perSource, and counts the refusal by policy and caller", () => {
    const v = view({
      rateLimitPolicies: [rlp("per-client", { targetRefs: echo, tokenBucket: bucket, perSource: true })],
    });
    const { l, refusals } = limiter();
    const a = [1, 2, 3].map(() => l.admit(v, req(A)).ok);
    const b = [1, 2].map(() => l.admit(v, req(B)).ok);
    expect(a).toEqual([true, true, false]);
    expect(b).toEqual([true, true]);
    expect(refusals).toEqual([["echo.default", "RateLimitPolicy/default/per-client", A]]);
  });

  it("shares one bucket between callers without perSource", () => {
    const v = view({ rateLimitPolicies: [rlp("shared", { targetRefs: echo, tokenBucket: bucket })] });
    const { l } = limiter();
    expect([l.admit(v, req(A)).ok, l.admit(v, req(B)).ok, l.admit(v, req(A)).ok]).toEqual([
      true,
      true,
      false,
    ]);
  });

  it("puts the RateLimit-* fields on refusals only by default, and refills after the interval", () => {
    const v = view({ rateLimitPolicies: [rlp("shared", { targetRefs: echo, tokenBucket: bucket })] });
    const { l, advance } = limiter();
    expect(l.admit(v, req(A))).toEqual({ ok: true, headers: undefined });
    l.admit(v, req(A));
    const refused = l.admit(v, req(A));
    expect(refused).toMatchObject({
      ok: false,
      headers: { "ratelimit-limit": "2", "ratelimit-remaining": "0", "ratelimit-policy": "2;w=60" },
    });
    advance(60_000);
    expect(l.admit(v, req(A)).ok).toBe(true);
  });

  it("puts the RateLimit-* fields on admitted and refused answers with rateLimitHeaders: Always", () => {
    const v = view({
      rateLimitPolicies: [
        rlp("shared", { targetRefs: echo, tokenBucket: bucket, rateLimitHeaders: "Always" }),
      ],
    });
    const { l, advance } = limiter();
    expect(l.admit(v, req(A)).headers).toEqual({
      "ratelimit-limit": "2",
      "ratelimit-remaining": "1",
      "ratelimit-reset": "60",
      "ratelimit-policy": "2;w=60",
    });
    l.admit(v, req(A));
    advance(15_000);
    const refused = l.admit(v, req(A));
    expect(refused).toMatchObject({
      ok: false,
      retryAfterMs: 45_000,
      policy: "RateLimitPolicy/default/shared",
      limit: "rate limit exceeded (RateLimitPolicy/default/shared: 2 per 60000 ms)",
      headers: { "ratelimit-remaining": "0", "ratelimit-reset": "45" },
    });
    advance(45_000);
    expect(l.admit(v, req(A)).ok).toBe(true);
  });

  it("applies a route-rule limit only to requests the caller's agent marked with that rule", () => {
    const target = [
      { group: "gateway.networking.k8s.io", kind: "HTTPRoute", name: "web", sectionName: "checkout" },
    ];
    const v = view({
      rateLimitPolicies: [
        rlp("checkout", { targetRefs: target, tokenBucket: { maxTokens: 1, fillInterval: "1m" } }),
      ],
    });
    const { l } = limiter();
    const rule = "HTTPRoute/default/web/checkout";
    expect([l.admit(v, req(A, rule)).ok, l.admit(v, req(A, rule)).ok]).toEqual([true, false]);
    expect(l.admit(v, req(A)).ok).toBe(true);
    expect(l.admit(v, req(A, "HTTPRoute/default/web/browse")).ok).toBe(true);
  });

  it("takes no token from the other limits when one refuses", () => {
    const v = view({
      rateLimitPolicies: [
        rlp("tight", {
          targetRefs: echo,
          tokenBucket: { maxTokens: 1, fillInterval: "1m" },
          perSource: true,
        }),
        rlp("loose", { targetRefs: echo, tokenBucket: { maxTokens: 3, fillInterval: "1m" } }),
      ].map((p) => ({ ...p, spec: { ...p.spec, rateLimitHeaders: "Always" as const } })),
    });
    const { l } = limiter();
    expect(l.admit(v, req(A)).ok).toBe(true);
    for (let i = 0; i < 5; i++) expect(l.admit(v, req(A)).ok).toBe(false);
    // Only A's one admitted request took from the shared bucket: B still gets the remaining two.
    expect([l.admit(v, req(B)).ok, l.admit(v, req(B)).ok]).toEqual([true, false]);
    const headers = l.admit(v, req("spiffe://cluster.local/ns/default/sa/c")).headers;
    expect(headers?.["ratelimit-limit"]).toBe("1"); // the limit closest to exhaustion speaks
  });

  it("lets only the limits configured to speak put their fields on admitted answers", () => {
    const v = view({
      rateLimitPolicies: [
        rlp("tight-quiet", { targetRefs: echo, tokenBucket: { maxTokens: 1, fillInterval: "1m" } }),
        rlp("loose-speaks", {
          targetRefs: echo,
          tokenBucket: { maxTokens: 5, fillInterval: "1m" },
          rateLimitHeaders: "Always",
        }),
      ],
    });
    const { l } = limiter();
    // The quiet limit is closest to exhaustion, but only the speaking one's fields are given.
    expect(l.admit(v, req(A)).headers).toMatchObject({ "ratelimit-limit": "5", "ratelimit-remaining": "4" });
    expect(l.admit(v, req(A))).toMatchObject({ ok: false, headers: { "ratelimit-limit": "1" } });
  });

  it("takes rateLimitHeaders from a TrafficPolicy rateLimit too", () => {
    const tp = (rateLimitHeaders?: string) =>
      TrafficPolicy.parse({
        apiVersion: "nodemesh.io/v1alpha1",
        kind: "TrafficPolicy",
        metadata: { name: "echo", namespace: "default" },
        spec: { targetRefs: echo, rateLimit: { maxTokens: 3, fillInterval: "1s", rateLimitHeaders } },
      });
    const { l } = limiter();
    expect(l.admit(view({ trafficPolicies: [tp()] }), req(A)).headers).toBeUndefined();
    expect(l.admit(view({ trafficPolicies: [tp("Always")] }, "2"), req(A)).headers).toMatchObject({
      "ratelimit-limit": "3",
      "ratelimit-remaining": "1", // the same bucket: changing where the fields go keeps it
    });
  });

  it("keeps enforcing the TrafficPolicy rateLimit, labelled with that policy", () => {
    const tp = TrafficPolicy.parse({
      apiVersion: "nodemesh.io/v1alpha1",
      kind: "TrafficPolicy",
      metadata: { name: "echo", namespace: "default" },
      spec: { targetRefs: echo, rateLimit: { maxTokens: 1, fillInterval: "1s" } },
    });
    const v = view({ trafficPolicies: [tp] });
    const { l } = limiter();
    expect(l.admit(v, req(A)).ok).toBe(true);
    expect(l.admit(v, req(A))).toMatchObject({
      ok: false,
      policy: "TrafficPolicy/default/echo",
      limit: "local rate limit exceeded (1 per 1000 ms)",
    });
  });

  it("admits without headers where no limit applies, and drops buckets of a policy that left", () => {
    const { l } = limiter();
    const with1 = view({ rateLimitPolicies: [rlp("shared", { targetRefs: echo, tokenBucket: bucket })] });
    l.admit(with1, req(A));
    expect(l.size).toBe(1);
    const without = view({}, "2");
    expect(l.admit(without, req(A))).toEqual({ ok: true, headers: undefined });
    expect(l.size).toBe(0);
  });
});

describe("rateLimitHeaders", () => {
  it.each([
    [{ maxTokens: 100, tokensPerFill: 100, fillIntervalMs: 1000 }, "100;w=1"],
    [{ maxTokens: 10, tokensPerFill: 1, fillIntervalMs: 100 }, "10;w=1"],
    [{ maxTokens: 20, tokensPerFill: 5, fillIntervalMs: 500 }, "10;w=1;burst=20"],
    [{ maxTokens: 5, tokensPerFill: 1, fillIntervalMs: 60_000 }, "1;w=60;burst=5"],
  ])("%j → RateLimit-Policy %s", (b, policy) => {
    expect(rateLimitHeaders(b, 3, 1500)).toEqual({
      "ratelimit-limit": String(b.maxTokens),
      "ratelimit-remaining": "3",
      "ratelimit-reset": "2",
      "ratelimit-policy": policy,
    });
  });
});

describe("ruleMarkLayer", () => {
  const target = [
    { group: "gateway.networking.k8s.io", kind: "HTTPRoute", name: "web", sectionName: "checkout" },
  ];
  const v = view({ rateLimitPolicies: [rlp("checkout", { targetRefs: target, tokenBucket: bucket })] });
  const marked = async (rule: object | undefined) => {
    let seen: unknown;
    const h = ruleMarkLayer()(async (ex: Exchange): Promise<ResponseHead> => {
      seen = ex.request.headers[RULE_HEADER];
      return { status: 200, headers: {} };
    });
    await h({ view: v, request: { headers: {} }, ...(rule ? { rule } : {}) } as unknown as Exchange);
    return seen;
  };

  it("marks a request matched by a targeted rule, and no other", async () => {
    expect(await marked({ kind: "HTTPRoute", route: "default/web", name: "checkout" })).toBe(
      "HTTPRoute/default/web/checkout",
    );
    expect(await marked({ kind: "HTTPRoute", route: "default/web", name: "browse" })).toBeUndefined();
    expect(await marked({ kind: "HTTPRoute", route: "default/web", name: undefined })).toBeUndefined();
    expect(await marked(undefined)).toBeUndefined();
  });
});

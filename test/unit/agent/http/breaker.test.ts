// The breaker layer: failures open an endpoint's breaker, the upstream is told to skip it, a fast 503
// UO when every endpoint is open, and what counts as a failure.
import { describe, expect, it } from "vitest";
import { Breakers } from "../../../../agent/breaker/breakers.ts";
import { BREAKER_OPEN_FLAG, breakerLayer, isEndpointFailure } from "../../../../agent/http/breaker.ts";
import type { Exchange, ResponseHead } from "../../../../agent/http/exchange.ts";
import { answer, destination, exchange } from "./resilience-fixture.ts";

describe("isEndpointFailure", () => {
  it.each<[string, ResponseHead, boolean]>([
    ["5xx", answer(503), true],
    ["4xx", answer(404), false],
    ["2xx", answer(200), false],
    ["gRPC timeout (HTTP 200)", answer(200, { flag: "UpstreamRequestTimeout" }), true],
    ["gRPC connect failure", answer(200, { flag: "ConnectionFailure" }), true],
    ["gRPC denied", answer(200, { flag: "AuthorizationPolicyDenied" }), false],
  ])("%s", (_, res, want) => expect(isEndpointFailure(res)).toBe(want));
});

describe("breakerLayer", () => {
  const d = destination(["a:80", "b:80"], { circuitBreaker: { consecutiveFailures: 2, openTime: "30s" } });
  /** Goes to the first endpoint not skipped; `a` fails, `b` succeeds. */
  const upstream = (skipped: string[][]) => async (ex: Exchange) => {
    skipped.push(["a:80", "b:80"].filter((k) => ex.skipEndpoint?.(k)));
    const ep = ["a:80", "b:80"].find((k) => !ex.skipEndpoint?.(k));
    if (!ep) return answer(503, { flag: "NoHealthyUpstream" });
    ex.endpoint = ep;
    return ep === "a:80" ? answer(500) : answer(200);
  };

  it("opens a failing endpoint's breaker, after which traffic goes to the other endpoint", async () => {
    let t = 0;
    const breakers = new Breakers({ now: () => t });
    const skipped: string[][] = [];
    const h = breakerLayer(breakers)(upstream(skipped));
    expect((await h(exchange(d))).status).toBe(500);
    expect((await h(exchange(d))).status).toBe(500);
    expect(breakers.isOpen("default/web:80", "a:80")).toBe(true);
    expect((await h(exchange(d))).status).toBe(200);
    expect(skipped).toEqual([[], [], ["a:80"]]);
    t += 30_000; // half-open: a is offered again
    expect((await h(exchange(d))).status).toBe(500);
    expect(breakers.isOpen("default/web:80", "a:80")).toBe(true);
  });

  it("answers a fast 503 UO when every endpoint's breaker is open", async () => {
    const breakers = new Breakers({ now: () => 0 });
    for (const k of ["a:80", "b:80"]) {
      const b = breakers.get(
        "default/web:80",
        {
          consecutiveFailures: 1,
          windowFailures: 0,
          windowMs: 1,
          baseOpenMs: 1000,
          maxOpenMs: 1000,
          halfOpenSuccesses: 1,
        },
        k,
      );
      b.failure();
    }
    let called = false;
    const res = await breakerLayer(breakers)(async () => ((called = true), answer(200)))(exchange(d));
    expect(res.status).toBe(503);
    expect(res.flag).toBe(BREAKER_OPEN_FLAG);
    expect(called).toBe(false);
  });

  it("records nothing when the try reached no endpoint", async () => {
    const breakers = new Breakers({ now: () => 0 });
    await breakerLayer(breakers)(async () => answer(503, { flag: "NoHealthyUpstream" }))(exchange(d));
    expect(breakers.dump()).toEqual([]);
  });
});

describe("breakerLayer and clients that leave", () => {
  it("does not count a try the client abandoned against the endpoint", async () => {
    const d = destination(["a:80"], { circuitBreaker: { consecutiveFailures: 1 } });
    const breakers = new Breakers({ now: () => 0 });
    const client = new AbortController();
    const ex = { ...exchange(d), signal: client.signal } as Exchange;
    await breakerLayer(breakers)(async (e) => {
      e.endpoint = "a:80";
      client.abort();
      return answer(503, { flag: "UpstreamConnectionTermination" });
    })(ex);
    expect(breakers.isOpen("default/web:80", "a:80")).toBe(false);
  });
});

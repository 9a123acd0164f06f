// Timeout layers with fake time: grpc-timeout parsing, the precedence of route, TrafficPolicy, agent
// default and grpc-timeout, a 504 (gRPC DEADLINE_EXCEEDED) with the UT flag on expiry that cancels the
// try, nothing on time, and "0s" disabling.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Exchange, ResponseHead } from "../../../../agent/http/exchange.ts";
import {
  grpcTimeoutMs,
  requestTimeoutLayer,
  requestTimeoutMs,
  tryTimeoutLayer,
  TIMEOUT_FLAG,
} from "../../../../agent/http/timeout.ts";
import { answer, destination, exchange } from "./resilience-fixture.ts";

/** An upstream that answers only when its try is cancelled (like a reset stream) or after `ms`. */
function hanging(ms = Infinity) {
  const seen: (AbortSignal | undefined)[] = [];
  const handler = (ex: Exchange) =>
    new Promise<ResponseHead>((resolve) => {
      seen.push(ex.trySignal);
      ex.trySignal?.addEventListener("abort", () =>
        resolve(answer(503, { flag: "UpstreamConnectionTermination" })),
      );
      if (ms !== Infinity) setTimeout(() => resolve(answer(200)), ms);
    });
  return { handler, seen };
}

describe("grpcTimeoutMs", () => {
  it.each([
    ["5S", 5000],
    ["100m", 100],
    ["2M", 120_000],
    ["1H", 3_600_000],
    ["1500u", 2],
    ["10n", 1],
  ])("%s → %d ms", (v, ms) => expect(grpcTimeoutMs(v)).toBe(ms));
  it.each(["", "5", "5s", "123456789S", "-1S", "1.5S"])("rejects %j", (v) =>
    expect(grpcTimeoutMs(v)).toBeUndefined(),
  );
});

describe("requestTimeoutMs", () => {
  const d = destination(["10.0.0.2:80"]);
  it("takes the agent default when nothing else is set", () =>
    expect(requestTimeoutMs(exchange(d), 10_000)).toBe(10_000));
  it("prefers the TrafficPolicy over the default, and the route over both", () => {
    const p = destination(["10.0.0.2:80"], { timeout: "3s" });
    expect(requestTimeoutMs(exchange(p), 10_000)).toBe(3000);
    expect(requestTimeoutMs(exchange(p, { rule: { timeouts: { requestMs: 0 } } }), 10_000)).toBe(0);
    expect(requestTimeoutMs(exchange(p, { rule: { timeouts: { requestMs: 700 } } }), 10_000)).toBe(700);
  });
  it("lets grpc-timeout lower the budget, or set one where none is configured", () => {
    expect(requestTimeoutMs(exchange(d, { headers: { "grpc-timeout": "200m" } }), 10_000)).toBe(200);
    expect(requestTimeoutMs(exchange(d, { headers: { "grpc-timeout": "20S" } }), 10_000)).toBe(10_000);
    expect(requestTimeoutMs(exchange(d, { headers: { "grpc-timeout": "200m" } }), 0)).toBe(200);
    expect(requestTimeoutMs(exchange(d, { headers: { "grpc-timeout": "bogus" } }), 0)).toBe(0);
  });
});

describe("timeout layers", () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());
  const d = destination(["10.0.0.2:80"]);

  it("answers 504 UT at the deadline and cancels the try", async () => {
    const up = hanging();
    const ex = exchange(d);
    const pending = requestTimeoutLayer({ defaultRequestTimeoutMs: 500 })(up.handler)(ex);
    await vi.advanceTimersByTimeAsync(499);
    expect(up.seen[0]?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const res = await pending;
    expect(res.status).toBe(504);
    expect(res.flag).toBe(TIMEOUT_FLAG);
    expect(up.seen[0]?.aborted).toBe(true);
    expect(ex.trySignal?.aborted).toBe(true);
  });

  it("gives gRPC clients DEADLINE_EXCEEDED (grpc-status 4)", async () => {
    const up = hanging();
    const ex = exchange(d, { headers: { "content-type": "application/grpc", "grpc-timeout": "50m" } });
    const pending = requestTimeoutLayer({ defaultRequestTimeoutMs: 0 })(up.handler)(ex);
    await vi.advanceTimersByTimeAsync(50);
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.headers["grpc-status"]).toBe("4");
  });

  it("passes an answer in time through and restores the try signal", async () => {
    const up = hanging(100);
    const ex = exchange(d);
    const pending = requestTimeoutLayer({ defaultRequestTimeoutMs: 500 })(up.handler)(ex);
    await vi.advanceTimersByTimeAsync(100);
    expect((await pending).status).toBe(200);
    expect(ex.trySignal).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1000);
    expect(up.seen[0]?.aborted).toBe(false);
  });

  it("sets no deadline when disabled", async () => {
    const up = hanging(60_000);
    const pending = requestTimeoutLayer({ defaultRequestTimeoutMs: 0 })(up.handler)(exchange(d));
    await vi.advanceTimersByTimeAsync(60_000);
    expect((await pending).status).toBe(200);
    expect(up.seen[0]).toBeUndefined();
  });

  it("bounds one try by backendRequest, nested in the whole-request signal", async () => {
    const up = hanging();
    const ex = exchange(d, { rule: { timeouts: { backendRequestMs: 200 } } });
    const outer = new AbortController();
    ex.trySignal = outer.signal;
    const pending = tryTimeoutLayer()(up.handler)(ex);
    await vi.advanceTimersByTimeAsync(200);
    const res = await pending;
    expect(res.status).toBe(504);
    expect(res.reason).toMatch(/try timeout of 200 ms to web.default:80/);
    expect(outer.signal.aborted).toBe(false);
  });

  it("uses the TrafficPolicy perTryTimeout when the route sets none", async () => {
    const p = destination(["10.0.0.2:80"], { retries: { perTryTimeout: "300ms" } });
    const up = hanging();
    const pending = tryTimeoutLayer()(up.handler)(exchange(p));
    await vi.advanceTimersByTimeAsync(300);
    expect((await pending).flag).toBe(TIMEOUT_FLAG);
  });
});

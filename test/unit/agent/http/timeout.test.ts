// Timeout layers with fake time: grpc-timeout parsing, the precedence of route, TrafficPolicy, agent
// default and grpc-timeout, a 504 (gRPC DEADLINE_EXCEEDED) with the UT flag on expiry that cancels the
// try, nothing on time, and "0s" disabling.
import { PassThrough } from "node:stream";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Exchange, ResponseHead } from "../../../../agent/http/exchange.ts";
import {
  grpcTimeoutMs,
  requestTimeoutLayer,
  requestTimeouts,
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

describe("requestTimeouts", () => {
  const d = destination(["10.0.0.2:80"]);
  const after = (ex: Exchange, def: number) => requestTimeouts(ex, def).afterBodyMs;
  it("takes the agent default when nothing else is set", () => {
    expect(requestTimeouts(exchange(d), 10_000)).toEqual({ afterBodyMs: 10_000, fromStartMs: 0 });
  });
  it("prefers the TrafficPolicy over the default, and the route over both", () => {
    const p = destination(["10.0.0.2:80"], { timeout: "3s" });
    expect(after(exchange(p), 10_000)).toBe(3000);
    expect(after(exchange(p, { rule: { timeouts: { requestMs: 0 } } }), 10_000)).toBe(0);
    expect(after(exchange(p, { rule: { timeouts: { requestMs: 700 } } }), 10_000)).toBe(700);
  });
  it("adds the gRPC client's grpc-timeout, ignoring a malformed one", () => {
    expect(requestTimeouts(exchange(d, { headers: { "grpc-timeout": "200m" } }), 0).fromStartMs).toBe(200);
    expect(requestTimeouts(exchange(d, { headers: { "grpc-timeout": "bogus" } }), 0).fromStartMs).toBe(0);
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

  it("counts the configured timeout from the end of the request body", async () => {
    const up = hanging();
    const body = new PassThrough();
    const ex = exchange(d, { method: "PUT", body });
    const pending = requestTimeoutLayer({ defaultRequestTimeoutMs: 500 })(up.handler)(ex);
    body.resume();
    await vi.advanceTimersByTimeAsync(2000); // still uploading: no deadline yet
    expect(up.seen[0]?.aborted).toBe(false);
    body.end();
    await vi.advanceTimersByTimeAsync(500);
    expect((await pending).status).toBe(504);
  });

  it("counts grpc-timeout from the start, even while the client still streams", async () => {
    const up = hanging();
    const body = new PassThrough();
    const ex = exchange(d, { headers: { "content-type": "application/grpc", "grpc-timeout": "100m" }, body });
    const pending = requestTimeoutLayer({ defaultRequestTimeoutMs: 10_000 })(up.handler)(ex);
    await vi.advanceTimersByTimeAsync(100);
    expect((await pending).headers["grpc-status"]).toBe("4");
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

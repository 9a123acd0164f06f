// The retry layer against a scripted upstream: what is retryable, retry to success with the attempt
// header and `attempts`, other endpoints first, POST only when unsent (or opted in), the last answer when
// retries run out, the budget stopping a storm, Retry-After, and body replay up to the cap.
import { Readable } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Exchange, ResponseHead } from "../../../../agent/http/exchange.ts";
import { ATTEMPT_HEADER, RETRY_LIMIT_FLAG, retryLayer, retryReason } from "../../../../agent/http/retry.ts";
import { RetryBudgets } from "../../../../agent/retry/budget.ts";
import { answer, destination, exchange, readAll } from "./resilience-fixture.ts";

interface Try {
  attempt: string;
  tried: string[];
  body: string;
}

/** Answers try i with answers[i] (the last one repeats); records what each try saw. */
function scripted(answers: ResponseHead[]) {
  const tries: Try[] = [];
  const handler = async (ex: Exchange) => {
    const i = tries.length;
    tries.push({
      attempt: String(ex.request.headers[ATTEMPT_HEADER]),
      tried: [...(ex.triedEndpoints ?? [])],
      body: await readAll(ex.body),
    });
    ex.triedEndpoints?.add(`ep${i}`);
    return answers[Math.min(i, answers.length - 1)]!;
  };
  return { handler, tries };
}

const layer = (budgets = new RetryBudgets()) => retryLayer({ budgets, random: () => 0 });

describe("retryReason", () => {
  const codes = new Set([503]);
  it.each<[string, ResponseHead, boolean, string | undefined]>([
    [
      "connect failure, any method",
      answer(503, { flag: "ConnectionFailure", unsent: true }),
      false,
      "connect-failure",
    ],
    [
      "refused stream, any method",
      answer(503, { flag: "UpstreamConnectionTermination", unsent: true }),
      false,
      "refused-stream",
    ],
    ["reset after sending", answer(503, { flag: "UpstreamConnectionTermination" }), true, "reset"],
    ["reset, not replayable", answer(503, { flag: "UpstreamConnectionTermination" }), false, undefined],
    ["per-try timeout", answer(504, { flag: "UpstreamRequestTimeout" }), true, "per-try-timeout"],
    ["listed code", answer(503), true, "status"],
    ["unlisted code", answer(500), true, undefined],
    ["listed code, POST", answer(503), false, undefined],
    ["success", answer(200), true, undefined],
    [
      "this agent's own 503 (nothing to pick)",
      answer(503, { flag: "NoHealthyUpstream", reason: "no endpoints" }),
      true,
      undefined,
    ],
    [
      "the destination agent's 503 (workload gone)",
      answer(503, { flag: "NoHealthyUpstream" }),
      true,
      "status",
    ],
  ])("%s", (_, res, replay, want) => expect(retryReason(res, codes, replay)).toBe(want));
});

describe("retryLayer", () => {
  afterEach(() => void vi.useRealTimers());
  const d = destination(["a:80", "b:80", "c:80"]);

  it("retries a failing backend to success, numbering the attempts and avoiding tried endpoints", async () => {
    const up = scripted([answer(503), answer(502), answer(200)]);
    const ex = exchange(d);
    const res = await layer()(up.handler)(ex);
    expect(res.status).toBe(200);
    expect(ex.attempts).toBe(3);
    expect(up.tries.map((t) => t.attempt)).toEqual(["1", "2", "3"]);
    expect(up.tries.map((t) => t.tried)).toEqual([[], ["ep0"], ["ep0", "ep1"]]);
  });

  it("returns the last answer, flagged URX, when retries run out", async () => {
    const up = scripted([answer(503)]);
    const ex = exchange(d);
    const res = await layer()(up.handler)(ex);
    expect(res.status).toBe(503);
    expect(res.flag).toBe(RETRY_LIMIT_FLAG);
    expect(up.tries).toHaveLength(4); // the first try and the default 3 retries
    expect(ex.attempts).toBe(4);
  });

  it("follows the route's GEP-1731 retry (codes, attempts)", async () => {
    const up = scripted([answer(500)]);
    const ex = exchange(d, { rule: { retry: { codes: [500], attempts: 1, backoffMs: 0 } } });
    await layer()(up.handler)(ex);
    expect(up.tries).toHaveLength(2);
    const none = scripted([answer(503)]);
    await layer()(none.handler)(
      exchange(d, { rule: { retry: { codes: [500], attempts: 5, backoffMs: 0 } } }),
    );
    expect(none.tries).toHaveLength(1);
  });

  it("does not retry a POST that reached the application, but does one that never left", async () => {
    const reached = scripted([answer(503), answer(200)]);
    expect((await layer()(reached.handler)(exchange(d, { method: "POST" }))).status).toBe(503);
    expect(reached.tries).toHaveLength(1);
    const unsent = scripted([answer(503, { flag: "ConnectionFailure", unsent: true }), answer(200)]);
    expect((await layer()(unsent.handler)(exchange(d, { method: "POST" }))).status).toBe(200);
  });

  it("retries a POST that reached the application when the TrafficPolicy opts in", async () => {
    const p = destination(["a:80"], {
      retries: { retryNonIdempotent: true, backoff: { baseInterval: "0s" } },
    });
    const up = scripted([answer(503), answer(200)]);
    expect((await layer()(up.handler)(exchange(p, { method: "PATCH" }))).status).toBe(200);
  });

  it("replays a buffered body on each try, and does not retry one over the cap", async () => {
    const up = scripted([answer(503), answer(200)]);
    const body = Readable.from([Buffer.from("hello "), Buffer.from("world")]);
    await layer()(up.handler)(exchange(d, { method: "PUT", body }));
    expect(up.tries.map((t) => t.body)).toEqual(["hello world", "hello world"]);

    const p = destination(["a:80"], { retries: { maxBodyBytes: 8 } });
    const big = scripted([answer(503), answer(200)]);
    const res = await layer()(big.handler)(
      exchange(p, { method: "PUT", body: Readable.from([Buffer.alloc(9)]) }),
    );
    expect(res.status).toBe(503);
    expect(big.tries).toHaveLength(1);
  });

  it("stops a retry storm at the destination's budget", async () => {
    const p = destination(["a:80"], {
      retries: { budget: { retryRatio: 0.1, minRetriesPerSecond: 0, ttl: "10s" } },
    });
    const budgets = new RetryBudgets(() => 0);
    const up = scripted([answer(503)]);
    for (let i = 0; i < 100; i++) await layer(budgets)(up.handler)(exchange(p));
    // 100 first tries + at most 10% retries, instead of 400 tries without a budget.
    expect(up.tries.length).toBeLessThanOrEqual(110);
    expect(up.tries.length).toBeGreaterThanOrEqual(105);
  });

  it("waits as Retry-After asks (capped at the backoff cap) before retrying a 503", async () => {
    vi.useFakeTimers();
    const up = scripted([answer(503, { headers: { "retry-after": "1" } }), answer(200)]);
    const pending = layer()(up.handler)(exchange(d));
    await vi.advanceTimersByTimeAsync(999);
    expect(up.tries).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect((await pending).status).toBe(200);
    const long = scripted([answer(429, { headers: { "retry-after": "3600" } }), answer(200)]);
    const p = destination(["a:80"], { retries: { codes: [429] } });
    const capped = layer()(long.handler)(exchange(p));
    await vi.advanceTimersByTimeAsync(1000); // the default cap
    expect((await capped).status).toBe(200);
  });

  it("stops waiting when the whole-request deadline fires", async () => {
    vi.useFakeTimers();
    const up = scripted([answer(503, { headers: { "retry-after": "1" } }), answer(200)]);
    const ex = exchange(d);
    const deadline = new AbortController();
    ex.trySignal = deadline.signal;
    const pending = layer()(up.handler)(ex);
    await vi.advanceTimersByTimeAsync(10);
    deadline.abort();
    expect((await pending).status).toBe(503);
    expect(up.tries).toHaveLength(1);
  });
});

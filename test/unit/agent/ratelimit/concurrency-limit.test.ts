// The concurrency limit with its bounded FIFO queue: permits up to maxActive, waiters up to maxPending in
// arrival order, overflow beyond, an aborted waiter leaves the queue, a release is counted once.
import { describe, expect, it } from "vitest";
import { ConcurrencyLimit, type Release } from "../../../../agent/ratelimit/concurrency-limit.ts";

const permit = (x: unknown): Release => {
  if (typeof x !== "function") throw new Error(`expected a permit, got ${String(x)}`);
  return x as Release;
};

describe("ConcurrencyLimit", () => {
  it("hands out maxActive permits, then refuses when no one may wait", () => {
    const l = new ConcurrencyLimit({ maxActive: 2, maxPending: 0 });
    const a = permit(l.acquire());
    permit(l.acquire());
    expect(l.acquire()).toBe("overflow");
    expect(l.tryAcquire()).toBeUndefined();
    a();
    expect(l.active).toBe(1);
    expect(typeof l.acquire()).toBe("function");
  });

  it("queues up to maxPending callers and serves them in arrival order", async () => {
    const l = new ConcurrencyLimit({ maxActive: 1, maxPending: 2 });
    const first = permit(l.acquire());
    const order: string[] = [];
    const w1 = (l.acquire() as Promise<Release | undefined>).then((r) => (order.push("w1"), r));
    const w2 = (l.acquire() as Promise<Release | undefined>).then((r) => (order.push("w2"), r));
    expect(l.pending).toBe(2);
    expect(l.acquire()).toBe("overflow");
    first();
    const r1 = permit(await w1);
    expect(l.active).toBe(1); // the permit passed to the waiter
    r1();
    permit(await w2);
    expect(order).toEqual(["w1", "w2"]);
    expect(l.pending).toBe(0);
  });

  it("takes an aborted waiter off the queue without giving it a permit", async () => {
    const l = new ConcurrencyLimit({ maxActive: 1, maxPending: 1 });
    const held = permit(l.acquire());
    const ctl = new AbortController();
    const waiting = l.acquire(ctl.signal) as Promise<Release | undefined>;
    ctl.abort();
    expect(await waiting).toBeUndefined();
    expect(l.pending).toBe(0);
    held();
    expect(l.active).toBe(0);
  });

  it("counts a release once however often it is called", () => {
    const l = new ConcurrencyLimit({ maxActive: 2, maxPending: 0 });
    const a = permit(l.acquire());
    permit(l.acquire());
    a();
    a();
    expect(l.active).toBe(1);
  });

  it("refuses bad settings", () => {
    expect(() => new ConcurrencyLimit({ maxActive: 0, maxPending: 0 })).toThrow(/maxActive/);
    expect(() => new ConcurrencyLimit({ maxActive: 1, maxPending: -1 })).toThrow(/maxPending/);
  });
});

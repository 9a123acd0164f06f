// The breaker's state machine with fake time: each way of opening, half-open after the open time,
// closing on successes, growing open time on re-trips (capped), and the transition reports.
import { describe, expect, it } from "vitest";
import {
  ConsecutiveFailures,
  DEFAULT_BREAKER,
  type BreakerSettings,
  type BreakerState,
} from "../../../../agent/breaker/consecutive-failures.ts";
import { Breakers } from "../../../../agent/breaker/breakers.ts";

function breaker(over: Partial<BreakerSettings> = {}) {
  let t = 0;
  const transitions: string[] = [];
  const b = new ConsecutiveFailures(
    { ...DEFAULT_BREAKER, ...over },
    () => t,
    (f: BreakerState, to: BreakerState) => transitions.push(`${f}>${to}`),
  );
  return { b, transitions, advance: (ms: number) => (t += ms) };
}

describe("ConsecutiveFailures", () => {
  it("opens after N consecutive failures; a success resets the run", () => {
    const { b } = breaker({ consecutiveFailures: 3, windowFailures: 0 });
    b.failure();
    b.failure();
    b.success();
    b.failure();
    b.failure();
    expect(b.state).toBe("closed");
    b.failure();
    expect(b.state).toBe("open");
    expect(b.allows()).toBe(false);
  });
  it("opens after M failures within the window, not when they are spread out", () => {
    const { b, advance } = breaker({ consecutiveFailures: 0, windowFailures: 3, windowMs: 1000 });
    b.failure();
    b.success();
    advance(600);
    b.failure();
    b.success();
    advance(600); // the first failure left the window
    b.failure();
    expect(b.state).toBe("closed");
    advance(100);
    b.failure();
    expect(b.state).toBe("open");
  });
  it("half-opens after the open time and closes after K successes", () => {
    const { b, advance, transitions } = breaker();
    for (let i = 0; i < 5; i++) b.failure();
    advance(29_999);
    expect(b.state).toBe("open");
    advance(1);
    expect(b.state).toBe("half-open");
    expect(b.allows()).toBe(true);
    b.success();
    expect(b.state).toBe("half-open");
    b.success();
    expect(b.state).toBe("closed");
    expect(transitions).toEqual(["closed>open", "open>half-open", "half-open>closed"]);
  });
  it("re-opens on a half-open failure for twice as long, capped at maxOpenMs", () => {
    const { b, advance } = breaker({ baseOpenMs: 1000, maxOpenMs: 3000 });
    for (let i = 0; i < 5; i++) b.failure();
    const trips: number[] = [];
    for (let k = 0; k < 3; k++) {
      advance(b.dump().openMs);
      expect(b.state).toBe("half-open");
      b.failure();
      trips.push(b.dump().openMs);
    }
    expect(trips).toEqual([2000, 3000, 3000]);
    advance(2999);
    expect(b.state).toBe("open");
    expect(b.dump().reopensInMs).toBe(1);
  });
  it("resets the open time to the base once closed", () => {
    const { b, advance } = breaker({ baseOpenMs: 1000, halfOpenSuccesses: 1 });
    for (let i = 0; i < 5; i++) b.failure();
    advance(1000);
    b.failure();
    expect(b.dump().openMs).toBe(2000);
    advance(2000);
    b.success();
    expect(b.dump()).toEqual({ state: "closed", openMs: 1000 });
  });
});

describe("Breakers", () => {
  it("keeps one breaker per endpoint, reports transitions with their keys and forgets removed ones", () => {
    const seen: string[] = [];
    const set = new Breakers({
      now: () => 0,
      onTransition: (d, e, f, t) => seen.push(`${d} ${e} ${f}>${t}`),
    });
    const s = { ...DEFAULT_BREAKER, consecutiveFailures: 1 };
    set.get("web:80", s, "10.0.0.1:80").failure();
    expect(set.isOpen("web:80", "10.0.0.1:80")).toBe(true);
    expect(set.isOpen("web:80", "10.0.0.2:80")).toBe(false);
    expect(seen).toEqual(["web:80 10.0.0.1:80 closed>open"]);
    expect(set.get("web:80", s, "10.0.0.1:80")).toBe(set.get("web:80", s, "10.0.0.1:80"));
    expect(set.dump()).toEqual([
      { destination: "web:80", endpoint: "10.0.0.1:80", state: "open", openMs: 30_000, reopensInMs: 30_000 },
    ]);
    set.retain(
      () => true,
      () => [],
    );
    expect(set.dump()).toEqual([]);
  });
  it("starts fresh breakers when a destination's settings change", () => {
    const set = new Breakers({ now: () => 0 });
    set.get("web:80", { ...DEFAULT_BREAKER, consecutiveFailures: 1 }, "a").failure();
    expect(set.get("web:80", { ...DEFAULT_BREAKER, consecutiveFailures: 2 }, "a").state).toBe("closed");
  });
});

import { describe, expect, it } from "vitest";
import { runWithDrain } from "../../../agent/drain.ts";

describe("runWithDrain", () => {
  it("waits for in-flight work to finish before forcing", async () => {
    let inflight = 2;
    const order: string[] = [];
    setTimeout(() => (inflight = 0), 60);
    const r = await runWithDrain({
      stopAccepting: () => void order.push("stop"),
      inflight: () => inflight,
      force: () => void order.push("force"),
      deadlineMs: 2000,
      pollMs: 10,
    });
    expect(r).toMatchObject({ drained: true, remaining: 0 });
    expect(r.waitedMs).toBeGreaterThanOrEqual(50);
    expect(order).toEqual(["stop", "force"]);
  });

  it("forces the rest at the deadline", async () => {
    const r = await runWithDrain({
      stopAccepting: () => {},
      inflight: () => 3,
      force: () => {},
      deadlineMs: 50,
    });
    expect(r).toMatchObject({ drained: false, remaining: 3 });
    expect(r.waitedMs).toBeLessThan(500);
  });
});

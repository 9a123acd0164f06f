// The two stateful helpers of egress: the DNS answers of ExternalService hosts (injected resolver, fake
// failures) and the kernel capture mode of the outbound traffic policy (fake datapaths), including the
// loud failure when REGISTRY_ONLY cannot be enforced.
import { describe, expect, it, vi } from "vitest";
import { pino } from "pino";
import { HostResolver } from "../../../../agent/egress/dns.ts";
import { OutboundCapture } from "../../../../agent/egress/capture.ts";
import type { Datapath } from "../../../../agent/datapath/datapath.ts";

const log = pino({ level: "silent" });

describe("HostResolver", () => {
  it("resolves new hosts at once, reports changes only, and forgets hosts no longer wanted", async () => {
    const answers: Record<string, string[]> = { "a.test": ["10.9.0.2", "10.9.0.1"], "b.test": ["10.9.1.1"] };
    const onChange = vi.fn();
    const r = new HostResolver({ log, onChange, lookup: async (h) => answers[h] ?? [] });
    await r.want(["a.test", "b.test"]);
    expect(Object.fromEntries(r.answers)).toEqual({
      "a.test": ["10.9.0.1", "10.9.0.2"],
      "b.test": ["10.9.1.1"],
    });
    expect(onChange).toHaveBeenCalledTimes(1);
    await r.refresh();
    expect(onChange).toHaveBeenCalledTimes(1); // same answers: no rebuild
    answers["a.test"] = ["10.9.0.3"];
    await r.refresh();
    expect(r.answers.get("a.test")).toEqual(["10.9.0.3"]);
    expect(onChange).toHaveBeenCalledTimes(2);
    await r.want(["a.test"]);
    expect([...r.answers.keys()]).toEqual(["a.test"]);
    expect(onChange).toHaveBeenCalledTimes(3);
    r.close();
  });

  it("keeps the last good answer when a lookup fails, and has none for a host never answered", async () => {
    let fail = false;
    const r = new HostResolver({
      log,
      onChange: () => {},
      lookup: async (h) => {
        if (fail || h === "down.test") throw new Error("ESERVFAIL");
        return ["10.9.2.1"];
      },
    });
    await r.want(["up.test", "down.test"]);
    fail = true;
    await r.refresh();
    expect(r.answers.get("up.test")).toEqual(["10.9.2.1"]);
    expect(r.answers.has("down.test")).toBe(false);
    r.close();
  });
});

function fakeDatapath(setCaptureAll?: (on: boolean) => void): Datapath {
  return { setCaptureAll } as unknown as Datapath;
}

describe("OutboundCapture", () => {
  it("turns all-TCP capture on for REGISTRY_ONLY and off for ALLOW_ANY, writing only on change", () => {
    const calls: boolean[] = [];
    const c = new OutboundCapture(
      fakeDatapath((on) => calls.push(on)),
      log,
    );
    c.apply("ALLOW_ANY");
    c.apply("REGISTRY_ONLY");
    c.apply("REGISTRY_ONLY");
    c.apply("ALLOW_ANY");
    expect(calls).toEqual([false, true, false]);
    expect(c.problem).toBeUndefined();
  });

  it("reports REGISTRY_ONLY as not enforced when the datapath cannot capture everything", () => {
    const c = new OutboundCapture(fakeDatapath(), log);
    c.apply("ALLOW_ANY");
    expect(c.problem).toBeUndefined();
    c.apply("REGISTRY_ONLY");
    expect(c.problem).toMatch(/REGISTRY_ONLY is not enforced: this datapath cannot capture every connection/);
    c.apply("ALLOW_ANY");
    expect(c.problem).toBeUndefined();
  });

  it("reports a kernel write that fails, and retries it on the next config", () => {
    let broken = true;
    const c = new OutboundCapture(
      fakeDatapath(() => {
        if (broken) throw new Error("update capture mode failed: EPERM");
      }),
      log,
    );
    c.apply("REGISTRY_ONLY");
    expect(c.problem).toMatch(/outbound traffic policy REGISTRY_ONLY not applied in the kernel: .*EPERM/);
    broken = false;
    c.apply("REGISTRY_ONLY");
    expect(c.problem).toBeUndefined();
    expect(c.dump()).toMatchObject({ mode: "REGISTRY_ONLY", captureAll: true });
  });
});

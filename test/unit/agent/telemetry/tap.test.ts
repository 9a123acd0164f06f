// The tap hub: idle costs nothing (active is false), filters, sampling, the per-second budget, the event
// bound with its end summary, a slow reader's drops, the cap on concurrent taps, and the query's errors.
import { describe, expect, it } from "vitest";
import { MAX_TAPS, TapHub, type TapEvent, type TapOptions } from "../../../../agent/telemetry/tap.ts";
import { parseTapQuery, TapQueryError } from "../../../../agent/telemetry/tap-page.ts";
import { unknownLabels, type ConnRecord } from "../../../../agent/telemetry/metrics.ts";
import type { LoggedRequest } from "../../../../agent/telemetry/access-log.ts";

const opts = (over: Partial<TapOptions> = {}): TapOptions => ({
  filter: {},
  maxEvents: 100,
  seconds: 30,
  rate: 1000,
  sample: 1,
  ...over,
});

function request(
  over: Partial<LoggedRequest["labels"]> = {},
  method = "GET",
  path = "/api/x",
): LoggedRequest {
  return {
    labels: {
      reporter: "source",
      source_workload: "client",
      source_workload_namespace: "default",
      source_principal: "spiffe://td/ns/default/sa/client",
      destination_service: "web-v1.default",
      destination_workload: "echo-a",
      destination_workload_namespace: "default",
      destination_principal: "spiffe://td/ns/default/sa/echo",
      route_name: "default/web",
      ...over,
    },
    start: performance.now(),
    method,
    path,
    authority: "web",
    protocol: "HTTP/1.1",
    requestId: "r1",
    userAgent: "curl",
    sourceAddress: "10.1.1.2",
    upstreamHost: "10.1.1.3:15008",
    upstreamCluster: "default/web-v1:80",
    requestBytes: 0,
    responseBytes: 12,
    responseCode: 503,
    flags: "UpstreamOverflow",
  };
}

function connection(): ConnRecord {
  const labels = {
    ...unknownLabels("source"),
    source_workload: "legacy",
    source_workload_namespace: "default",
    destination_service: "echo.default",
  };
  return {
    labels,
    direction: "outbound",
    start: performance.now(),
    srcAddr: "10.1.2.2",
    dstAddr: "10.96.0.10:80",
    hboneAddr: "",
    received: 5,
    sent: 7,
    reason: "denied",
    opened: false,
  };
}

function collect(hub: TapHub, o: TapOptions, accept = true) {
  const events: TapEvent[] = [];
  const ends: TapEvent[] = [];
  const end = hub.subscribe(
    o,
    (e) => (accept ? (events.push(e), true) : false),
    (s) => ends.push(s),
  );
  return { events, ends, end: end as () => void };
}

describe("TapHub", () => {
  it("is inactive with nobody tapping, active while a tap runs, and ends once with a summary", () => {
    const hub = new TapHub();
    expect(hub.active).toBe(false);
    const t = collect(hub, opts());
    expect(hub.active).toBe(true);
    hub.request(request(), 12.3456);
    t.end();
    t.end();
    expect(hub.active).toBe(false);
    expect(t.events[0]).toMatchObject({
      type: "request",
      method: "GET",
      status: 503,
      flags: "UpstreamOverflow",
      route: "default/web",
      duration_ms: 12.346,
      "src.workload": "client",
    });
    expect(t.ends).toEqual([{ type: "end", delivered: 1, dropped: 0, sampled_out: 0, rate_limited: 0 }]);
  });

  it.each([
    [{ workload: "echo-a" }, true],
    [{ workload: "default/client" }, true],
    [{ workload: "other/client" }, false],
    [{ service: "web-v1" }, true],
    [{ service: "web" }, false],
    [{ target: "web" }, true], // by its route
    [{ route: "default/web" }, true],
    [{ target: "nothing" }, false],
    [{ kind: "tcp" as const }, false],
    [{ reporter: "destination" as const }, false],
    [{ method: "POST" }, false],
    [{ path: "/api" }, true],
    [{ path: "/other" }, false],
    [{ namespace: "default" }, true],
  ])("filter %j matches the request: %s", (filter, match) => {
    const hub = new TapHub();
    const t = collect(hub, opts({ filter }));
    hub.request(request(), 1);
    expect(t.events.length).toBe(match ? 1 : 0);
  });

  it("streams connections with their outcome, bytes and error", () => {
    const hub = new TapHub();
    const t = collect(hub, opts({ filter: { kind: "tcp", workload: "legacy" } }));
    hub.connection(connection(), true);
    expect(t.events[0]).toMatchObject({
      type: "connection",
      outcome: "failed",
      error: "denied",
      bytes_sent: 7,
      bytes_received: 5,
      "dst.service": "echo.default",
    });
  });

  it("samples, then spends a per-second budget, and stops at maxEvents", () => {
    let now = 0;
    const rolls = [0.1, 0.9, 0.2, 0.3];
    const hub = new TapHub({ random: () => rolls.shift() ?? 0, now: () => now });
    const t = collect(hub, opts({ sample: 0.5, rate: 2, maxEvents: 3 }));
    for (let i = 0; i < 4; i++) hub.request(request(), 1); // 0.9 is sampled out; the budget of 2 admits two
    expect(t.events).toHaveLength(2);
    now = 1000; // a second later the budget is back
    hub.request(request(), 1);
    expect(t.events).toHaveLength(3);
    expect(hub.active).toBe(false);
    expect(t.ends[0]).toEqual({ type: "end", delivered: 3, dropped: 0, sampled_out: 1, rate_limited: 1 });
  });

  it("counts events a slow reader could not take as dropped, never queues them", () => {
    const hub = new TapHub();
    const t = collect(hub, opts(), false);
    hub.request(request(), 1);
    t.end();
    expect(t.ends[0]).toMatchObject({ delivered: 0, dropped: 1 });
  });

  it(`serves at most ${MAX_TAPS} taps at once`, () => {
    const hub = new TapHub();
    for (let i = 0; i < MAX_TAPS; i++)
      expect(
        hub.subscribe(
          opts(),
          () => true,
          () => undefined,
        ),
      ).toBeTypeOf("function");
    expect(
      hub.subscribe(
        opts(),
        () => true,
        () => undefined,
      ),
    ).toBeUndefined();
  });
});

describe("parseTapQuery", () => {
  it("fills the defaults and keeps the filters", () => {
    const o = parseTapQuery(new URLSearchParams("target=web&method=get&kind=http"));
    expect(o).toMatchObject({
      maxEvents: 100,
      seconds: 30,
      rate: 100,
      sample: 1,
      filter: { target: "web", method: "GET", kind: "http" },
    });
  });
  it.each([
    ["max=0", /max must be an integer in 1\.\.10000/],
    ["max=1.5", /max must be an integer/],
    ["seconds=601", /seconds must be a number in 0\.1\.\.600/],
    ["rate=5000", /rate must be an integer in 1\.\.1000/],
    ["sample=0", /sample must be > 0/],
    ["sample=abc", /sample must be a number/],
    ["kind=udp", /kind must be one of http, tcp/],
    ["reporter=me", /reporter must be one of source, destination/],
    ["path=api", /path must start with "\/"/],
  ])("refuses %s naming the parameter", (q, message) => {
    expect(() => parseTapQuery(new URLSearchParams(q))).toThrow(TapQueryError);
    expect(() => parseTapQuery(new URLSearchParams(q))).toThrow(message);
  });
});

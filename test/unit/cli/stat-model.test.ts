// `nodemesh stat` arithmetic: deltas per series (new and reset series), success as Linkerd classifies,
// quantiles as histogram_quantile interpolates, open TCP connections, grouping and selection.
import { describe, expect, it } from "vitest";
import type { Sample } from "../../../cli/prom-text.ts";
import { computeStats, isSuccess, quantile, selects } from "../../../cli/stat-model.ts";

const L = {
  reporter: "source",
  destination_service: "web.default",
  destination_workload_namespace: "default",
  destination_workload: "web-1",
  route_name: "default/web",
};
const req = (code: string, value: number, extra: Record<string, string> = {}): Sample => ({
  name: "nodemesh_requests_total",
  labels: { ...L, response_code: code, ...extra },
  value,
});
const bucket = (le: string, value: number): Sample => ({
  name: "nodemesh_request_duration_seconds_bucket",
  labels: { ...L, response_code: "200", le },
  value,
});

describe("computeStats", () => {
  const before = [req("200", 100), req("503", 10), bucket("0.1", 100), bucket("1", 110), bucket("+Inf", 110)];
  const after = [
    req("200", 190),
    req("503", 20),
    req("404", 0 + 10), // new series: all 10 in the window
    bucket("0.1", 150),
    bucket("1", 210),
    bucket("+Inf", 210),
    { name: "nodemesh_tcp_connections_opened_total", labels: { ...L }, value: 9 },
    { name: "nodemesh_tcp_connections_closed_total", labels: { ...L }, value: 4 },
    { name: "nodemesh_tcp_sent_bytes_total", labels: { ...L }, value: 1000 },
  ];
  it("differences counters and histograms over the window", () => {
    const [row] = computeStats("service", "source", [{ agent: "n1", before, after }], 10);
    expect(row?.name).toBe("web.default");
    expect(row?.requests).toBe(110);
    expect(row?.rps).toBe(11);
    expect(row?.successRate).toBeCloseTo(100 / 110);
    expect(row?.p50).toBeCloseTo(0.1); // rank 50 of 100 observations: the top of the first bucket
    expect(row?.p99).toBeCloseTo(0.1 + (0.9 * (99 - 50)) / 50);
    expect(row?.tcpConnections).toBe(5);
    expect(row?.tcpBytesPerSecond).toBe(100); // a new series counts from 0
  });
  it("treats a series that went down as reset, and ignores the other reporter", () => {
    const rows = computeStats(
      "service",
      "source",
      [
        {
          agent: "n1",
          before: [req("200", 500)],
          after: [req("200", 20), req("200", 7, { reporter: "destination" })],
        },
      ],
      1,
    );
    expect(rows[0]?.requests).toBe(20);
  });
  it("groups by workload or route and selects one row", () => {
    const scrapes = [
      {
        agent: "n1",
        before: [],
        after: [req("200", 5), req("200", 5, { destination_workload: "web-2", route_name: "" })],
      },
    ];
    expect(computeStats("workload", "source", scrapes, 1).map((r) => r.name)).toEqual([
      "default/web-1",
      "default/web-2",
    ]);
    expect(computeStats("workload", "source", scrapes, 1, "web-2").map((r) => r.name)).toEqual([
      "default/web-2",
    ]);
    const routes = computeStats("route", "source", scrapes, 1);
    expect(routes.map((r) => [r.name, r.tcpConnections])).toEqual([
      ["(no route)", undefined],
      ["default/web", undefined],
    ]);
  });
  it("a window without requests has no success rate or latency", () => {
    const [row] = computeStats(
      "service",
      "source",
      [{ agent: "n1", before: [req("200", 5)], after: [req("200", 5)] }],
      1,
    );
    expect(row).toMatchObject({ requests: 0, successRate: undefined, p50: undefined });
  });
});

describe("helpers", () => {
  it.each([
    [{ response_code: "200" }, true],
    [{ response_code: "404" }, true],
    [{ response_code: "503" }, false],
    [{ response_code: "0" }, false],
    [{ response_code: "200", grpc_response_status: "14" }, false],
    [{ response_code: "200", grpc_response_status: "0" }, true],
  ])("isSuccess(%j) = %s", (labels, ok) => expect(isSuccess(labels)).toBe(ok));
  it("quantile: +Inf answers the highest finite bound, none is undefined", () => {
    expect(
      quantile(0.99, [
        [1, 0],
        [Infinity, 10],
      ]),
    ).toBe(1);
    expect(quantile(0.5, [[Infinity, 0]])).toBeUndefined();
  });
  it("selects services by name or host, workloads by name or ns/name", () => {
    expect(selects("service", "web.default", "web")).toBe(true);
    expect(selects("service", "web-v1.default", "web")).toBe(false);
    expect(selects("workload", "default/web-1", "web-1")).toBe(true);
    expect(selects("route", "default/web", "web")).toBe(false);
  });
});

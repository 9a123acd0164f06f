// The commands' pure parts: flags → the agent query, target flags, curl's answer, table output, the
// explain answer picked and printed, the config dump's tables.
import { describe, expect, it } from "vitest";
import { pickAgent, formatDump } from "../../../cli/config.ts";
import { CliError } from "../../../cli/errors.ts";
import { choose, format as formatExplain } from "../../../cli/explain.ts";
import { parseCommand, parseCount, parseDuration } from "../../../cli/options.ts";
import { format as formatStat } from "../../../cli/stat.ts";
import { latency, percent, table } from "../../../cli/table.ts";
import { formatEvent, tapQuery } from "../../../cli/tap.ts";
import { parseAgentFlag, parseCurlResponse } from "../../../cli/targets.ts";

describe("options", () => {
  it("parses the common flags and refuses unknown ones and bad -o", () => {
    const { common, positionals } = parseCommand(
      "stat",
      ["service", "--agent", "n1=http://10.0.0.1:15000", "-o", "json"],
      {},
    );
    expect(common).toMatchObject({ agents: ["n1=http://10.0.0.1:15000"], output: "json" });
    expect(positionals).toEqual(["service"]);
    expect(() => parseCommand("stat", ["--bogus"], {})).toThrow(/stat: .*bogus.*nodemesh stat --help/);
    expect(() => parseCommand("stat", ["-o", "yaml"], {})).toThrow(/-o must be table or json, got "yaml"/);
  });
  it.each([
    ["10s", 10_000],
    ["500ms", 500],
    ["2m", 120_000],
    ["3", 3000],
  ])("duration %s", (v, ms) => expect(parseDuration("--window", v, 100, 600_000)).toBe(ms));
  it("duration and count errors name the flag", () => {
    expect(() => parseDuration("--window", "0.5s", 1000, 60_000)).toThrow(
      /--window must be a duration between 1s and 60s/,
    );
    expect(() => parseDuration("--window", "soon", 1000, 60_000)).toThrow(CliError);
    expect(() => parseCount("--max", "0", 1, 10)).toThrow(/--max must be a whole number in 1\.\.10, got "0"/);
  });
});

describe("targets", () => {
  it("--agent [node=]url", () => {
    expect(parseAgentFlag("n1=http://10.0.0.1:15000")).toEqual({ name: "n1", url: "http://10.0.0.1:15000" });
    expect(parseAgentFlag("10.0.0.2:15000")).toEqual({
      name: "10.0.0.2:15000",
      url: "http://10.0.0.2:15000",
    });
    expect(() => parseAgentFlag("https://x:1")).toThrow(/http:\/\/ admin address/);
    expect(() => parseAgentFlag("n1=http://[bad")).toThrow(/--agent must be \[node=\]http:\/\/host:port/);
  });
  it("reads curl -i output", () => {
    const r = parseCurlResponse(
      "HTTP/1.1 503 Service Unavailable\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\nnot ready\n",
    );
    expect(r).toEqual({ status: 503, date: "Thu, 01 Jan 2026 00:00:00 GMT", body: "not ready\n" });
    expect(parseCurlResponse("garbage")).toBeUndefined();
  });
});

describe("tap", () => {
  it("turns flags into the agents' query", () => {
    const q = tapQuery("service/web", {
      namespace: "prod",
      kind: "http",
      method: "post",
      path: "/api",
      max: "5",
      duration: "3s",
      sample: "0.5",
      rate: "10",
    });
    expect(Object.fromEntries(q.query)).toEqual({
      service: "web",
      namespace: "prod",
      kind: "http",
      method: "POST",
      path: "/api",
      max: "5",
      seconds: "3",
      sample: "0.5",
      rate: "10",
    });
    expect(tapQuery("web", {}).query.get("target")).toBe("web");
    expect(tapQuery("route/default/web", {}).query.get("route")).toBe("default/web");
  });
  it.each([
    [undefined, {}, /name a workload or service/],
    ["pod/x", {}, /workload\/, service\/ or route\//],
    ["web", { kind: "udp" }, /--kind must be http or tcp/],
    ["web", { path: "api" }, /--path must start with "\/"/],
    ["web", { sample: "0" }, /--sample must be a fraction/],
    ["web", { max: "20000" }, /--max must be a whole number in 1\.\.10000/],
  ])("refuses %s %j", (target, values, message) => expect(() => tapQuery(target, values)).toThrow(message));
  it("prints one line per event", () => {
    const line = formatEvent("n1", {
      type: "request",
      time: "T",
      reporter: "source",
      "src.namespace": "default",
      "src.workload": "client",
      "dst.service": "web.default",
      method: "GET",
      path: "/x",
      status: 503,
      flags: "UO",
      duration_ms: 1.5,
    });
    expect(line).toBe(
      "T n1 source      req  default/client -> web.default GET /x :status=503 flags=UO 1.5ms\n",
    );
    expect(
      formatEvent("n2", {
        type: "connection",
        time: "T",
        reporter: "destination",
        "src.namespace": "d",
        "src.workload": "a",
        "dst.service": "unknown",
        "dst.namespace": "d",
        "dst.workload": "b",
        outcome: "failed",
        bytes_sent: 0,
        bytes_received: 3,
        error: "denied",
        duration_ms: 2,
      }),
    ).toMatch(/conn d\/a -> d\/b failed sent=0B recv=3B error="denied" 2ms/);
  });
});

describe("output", () => {
  it("tables and units", () => {
    expect(table(["A", "LONGER"], [["xyz", "1"]])).toBe("A    LONGER\nxyz  1\n");
    expect([percent(0.98765), percent(undefined), latency(0.0004), latency(0.25), latency(2)]).toEqual([
      "98.77%",
      "-",
      "0.40ms",
      "250ms",
      "2.00s",
    ]);
  });
  it("stat's columns", () => {
    const out = formatStat("service", [
      {
        name: "web.default",
        requests: 10,
        rps: 1,
        successRate: 1,
        p50: 0.001,
        p95: 0.002,
        p99: 0.003,
        tcpConnections: undefined,
        tcpBytesPerSecond: undefined,
      },
    ]);
    expect(out.split("\n")[0]).toBe(
      "SERVICE      SUCCESS  RPS  LATENCY_P50  LATENCY_P95  LATENCY_P99  TCP_CONN",
    );
    expect(formatStat("route", [])).toBe("no route had traffic in the window\n");
  });
  it("explain: the pod's own agent answers; elsewhere answers are skipped", () => {
    const mine = { node: "n2", verdict: "denied", reasons: ["r"], source: { local: true } };
    expect(choose([{ node: "n1", verdict: "elsewhere", reasons: [] }, mine])).toBe(mine);
    const none = { node: "n1", verdict: "not-captured", reasons: ["no WorkloadEntry"] };
    expect(choose([none, { ...none, node: "n2" }])).toBe(none);
    const text = formatExplain({
      ...mine,
      endpoints: [
        {
          endpoint: "10.1.1.3:8080",
          workload: "default/echo",
          node: "n1",
          mtls: "STRICT",
          ejected: false,
          breaker: "closed",
          authz: { allowed: false, policy: "default/deny" },
        },
      ],
    });
    expect(text).toMatch(/^verdict: DENIED \(answered by the agent on n2\)/);
    expect(text).toMatch(
      /10\.1\.1\.3:8080\s+default\/echo\s+n1\s+STRICT\s+no\s+closed\s+DENY \(default\/deny\)/,
    );
  });
  it("config: picks the node's agent, prints its sections", () => {
    expect(() => pickAgent([{ name: "n1", url: "http://x" }], "n3")).toThrow(
      /no agent for node "n3"; known: n1/,
    );
    const out = formatDump(
      {
        node: "n1",
        version: "3",
        ready: true,
        pending: [],
        workloads: [
          {
            uid: "default/a",
            address: "10.1.1.2",
            identity: "spiffe://x",
            mtls: "STRICT",
            authorizationPolicies: [],
          },
        ],
        certificates: [{ spiffeId: "spiffe://x", notAfter: "2026" }],
      },
      "all",
    );
    expect(out).toMatch(/node n1 {2}config version 3 {2}ready true/);
    expect(out).toMatch(/default\/a\s+10\.1\.1\.2\s+spiffe:\/\/x\s+STRICT\s+-/);
    expect(formatDump({ services: [{ host: "web.default" }] }, "services")).toBe(
      "SERVICE      LOAD BALANCER  CONNECT TIMEOUT\nweb.default  default        default\n",
    );
  });
});

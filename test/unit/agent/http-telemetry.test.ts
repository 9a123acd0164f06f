// Request telemetry: the exported label set per profile, counter and histogram values after `finish`
// (labels as they were at the end, buckets cut at `le`), one access-log line per request with Istio's keys,
// nothing formatted when the log is off, and the whole /metrics page (TCP + request + detection metrics,
// hostile label values included) accepted by the real `promtool check metrics`.
import { spawnSync } from "node:child_process";
import { Writable } from "node:stream";
import { pino, type Logger } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AgentError } from "../../../agent/errors.ts";
import {
  DURATION_BUCKETS,
  LABEL_PROFILES,
  PROFILE_LABELS,
  RequestTelemetry,
  SIZE_BUCKETS,
  unknownRequestLabels,
  type LabelProfile,
  type RequestLabels,
  type RequestRecord,
} from "../../../agent/telemetry/http.ts";
import { AgentMetrics, unknownLabels } from "../../../agent/telemetry/metrics.ts";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a text exposition (label values unescaped). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    }
    out.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return out;
}

function sample(samples: Sample[], name: string, where: Record<string, string> = {}): number | undefined {
  const hits = samples.filter(
    (s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v),
  );
  if (hits.length > 1) throw new Error(`${name} ${JSON.stringify(where)} matches ${hits.length} samples`);
  return hits[0]?.value;
}

function capture(level = "info"): { access: Logger; lines: () => Record<string, unknown>[] } {
  const raw: string[] = [];
  const access = pino(
    { level, base: { component: "agent" } },
    new Writable({ write: (c: Buffer, _e, cb) => (raw.push(c.toString()), cb()) }),
  ).child({ log: "access" });
  return { access, lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

function labels(over: Partial<RequestLabels> = {}): RequestLabels {
  return {
    ...unknownRequestLabels("source"),
    source_workload: "client",
    source_workload_namespace: "default",
    source_principal: "spiffe://cluster.local/ns/default/sa/client",
    source_app: "client",
    destination_service: "reviews.shop.svc.cluster.local",
    destination_service_name: "reviews",
    destination_service_namespace: "shop",
    destination_workload: "reviews-v1",
    destination_workload_namespace: "shop",
    destination_principal: "spiffe://cluster.local/ns/shop/sa/reviews",
    destination_app: "reviews",
    connection_security_policy: "mutual_tls",
    route_name: "shop/reviews/by-user",
    ...over,
  };
}

function telemetry(profile: LabelProfile, access?: Logger) {
  const m = new AgentMetrics({
    version: "t",
    node: "n1",
    access: capture("silent").access,
    defaultMetrics: false,
  });
  return { m, t: new RequestTelemetry({ registry: m.registry, profile, access }) };
}

function request(t: RequestTelemetry, l = labels()): RequestRecord {
  return t.begin(l, {
    method: "GET",
    path: "/reviews/1?x=1",
    authority: "reviews.shop:9080",
    protocol: "HTTP/1.1",
    requestId: "4b2a0f1e-aaaa-bbbb-cccc-000000000001",
    userAgent: "curl/8.5.0",
    sourceAddress: "10.1.0.5:41234",
    forwardedFor: "203.0.113.9",
  });
}

describe("RequestTelemetry labels", () => {
  it.each(LABEL_PROFILES)(
    "%s exports exactly its profile's labels on every request metric",
    async (profile) => {
      const { m, t } = telemetry(profile);
      const rec = request(t);
      rec.responseCode = 200;
      t.finish(rec);
      const samples = parse(await m.text());
      const want = [...PROFILE_LABELS[profile]].sort();
      for (const name of ["nodemesh_requests_total", "nodemesh_request_duration_seconds_count"]) {
        expect(Object.keys(samples.find((s) => s.name === name)?.labels ?? {}).sort()).toEqual(want);
      }
      const bucket = samples.find((s) => s.name === "nodemesh_response_bytes_bucket");
      expect(Object.keys(bucket?.labels ?? {}).sort()).toEqual([...want, "le"].sort());
    },
  );

  it("profiles nest (minimal ⊂ standard ⊂ full) and full is Istio's set plus route_name", () => {
    const [minimal, standard, full] = LABEL_PROFILES.map((p) => new Set(PROFILE_LABELS[p]));
    for (const l of minimal ?? []) expect(standard?.has(l)).toBe(true);
    for (const l of standard ?? []) expect(full?.has(l)).toBe(true);
    expect([...(full ?? [])].sort()).toEqual(Object.keys(labels()).sort());
    expect(standard?.has("grpc_response_status")).toBe(true); // else a failed gRPC call reads as a 200
    expect(minimal?.has("route_name")).toBe(true);
  });

  it("rejects an unknown profile, naming the field", () => {
    const m = new AgentMetrics({
      version: "t",
      node: "n",
      access: capture("silent").access,
      defaultMetrics: false,
    });
    const make = () => new RequestTelemetry({ registry: m.registry, profile: "verbose" as LabelProfile });
    expect(make).toThrow(AgentError);
    expect(make).toThrow(/profile must be one of minimal, standard, full, got "verbose"/);
  });
});

describe("RequestTelemetry values", () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ["performance"] }));
  afterEach(() => vi.useRealTimers());

  it("counts each request once under its labels as they are at finish", async () => {
    const { m, t } = telemetry("full");
    for (const [code, flags] of [
      [200, ""],
      [200, "-"],
      [503, "UH"],
    ] as const) {
      const rec = request(t);
      rec.labels.destination_workload = code === 503 ? "reviews-v2" : "reviews-v1"; // chosen late
      rec.responseCode = code;
      rec.flags = flags;
      t.finish(rec);
      t.finish(rec); // the error and close paths may both end it
    }
    const grpc = request(t, labels({ request_protocol: "grpc" }));
    grpc.responseCode = 200;
    grpc.grpcStatus = "14";
    t.finish(grpc);
    const s = parse(await m.text());
    const ok = { response_code: "200", destination_workload: "reviews-v1", response_flags: "-" };
    expect(sample(s, "nodemesh_requests_total", { ...ok, request_protocol: "http" })).toBe(2);
    expect(sample(s, "nodemesh_requests_total", { ...ok, request_protocol: "grpc" })).toBe(1); // its own series
    expect(sample(s, "nodemesh_requests_total", { response_code: "503", response_flags: "UH" })).toBe(1);
    expect(sample(s, "nodemesh_requests_total", { destination_workload: "reviews-v2" })).toBe(1);
    expect(
      sample(s, "nodemesh_requests_total", { grpc_response_status: "14", request_protocol: "grpc" }),
    ).toBe(1);
    expect(t.seriesCount).toBe(3);
    // A second scrape with no traffic in between reads the same.
    expect(await m.text()).toBe(await m.text());
  });

  it("cuts durations and sizes at the documented buckets, upper bound inclusive", async () => {
    const { m, t } = telemetry("minimal");
    const cases = [
      { ms: 0.3, req: 0, resp: 1 },
      { ms: 7, req: 10, resp: 11 },
      { ms: 40_000, req: 2e8, resp: 5000 },
    ];
    for (const c of cases) {
      const rec = request(t);
      vi.advanceTimersByTime(c.ms);
      rec.responseCode = 200;
      rec.requestBytes = c.req;
      rec.responseBytes = c.resp;
      t.finish(rec);
    }
    const s = parse(await m.text());
    const les = (name: string) => s.filter((x) => x.name === `${name}_bucket`).map((x) => x.labels.le);
    expect(les("nodemesh_request_duration_seconds")).toEqual([...DURATION_BUCKETS.map(String), "+Inf"]);
    expect(les("nodemesh_request_bytes")).toEqual([...SIZE_BUCKETS.map(String), "+Inf"]);
    const le = (name: string, bound: string) => sample(s, `${name}_bucket`, { le: bound });
    expect(le("nodemesh_request_duration_seconds", "0.0005")).toBe(1);
    expect(le("nodemesh_request_duration_seconds", "0.005")).toBe(1);
    expect(le("nodemesh_request_duration_seconds", "0.01")).toBe(2);
    expect(le("nodemesh_request_duration_seconds", "30")).toBe(2);
    expect(le("nodemesh_request_duration_seconds", "+Inf")).toBe(3);
    expect(sample(s, "nodemesh_request_duration_seconds_sum")).toBeCloseTo(40.0073, 6);
    expect(sample(s, "nodemesh_request_duration_seconds_count")).toBe(3);
    expect([le("nodemesh_request_bytes", "1"), le("nodemesh_request_bytes", "10")]).toEqual([1, 2]);
    expect([le("nodemesh_request_bytes", "100000000"), le("nodemesh_request_bytes", "+Inf")]).toEqual([2, 3]);
    expect([le("nodemesh_response_bytes", "1"), le("nodemesh_response_bytes", "10")]).toEqual([1, 1]);
    expect([le("nodemesh_response_bytes", "100"), le("nodemesh_response_bytes", "10000")]).toEqual([2, 3]);
    expect(sample(s, "nodemesh_response_bytes_sum")).toBe(5012);
    expect(sample(s, "nodemesh_requests_total")).toBe(3);
  });

  it("refuses bad sizes and statuses before counting anything, naming the field", async () => {
    const { m, t } = telemetry("minimal");
    const bad: [keyof RequestRecord, number, RegExp][] = [
      ["requestBytes", Number.NaN, /requestBytes must be a number >= 0, got NaN/],
      ["responseBytes", -1, /responseBytes must be a number >= 0, got -1/],
      ["responseCode", 1000, /responseCode must be an integer 0-999, got 1000/],
      ["responseCode", 200.5, /responseCode must be an integer 0-999/],
    ];
    for (const [field, value, message] of bad) {
      const rec = request(t);
      Object.assign(rec, { responseCode: 200, [field]: value });
      expect(() => t.finish(rec)).toThrow(message);
      expect(rec.finished).toBe(false);
    }
    expect(t.seriesCount).toBe(0);
    expect(sample(parse(await m.text()), "nodemesh_requests_total")).toBeUndefined();
  });
});

describe("protocol detection metric", () => {
  it("counts each outcome per reporter and service, and refuses an unknown outcome", async () => {
    const { m, t } = telemetry("minimal");
    t.countDetection("http1", { destination_service: "reviews.shop.svc.cluster.local" });
    t.countDetection("http1", { destination_service: "reviews.shop.svc.cluster.local" });
    t.countDetection("timeout");
    t.countDetection("declared", {
      reporter: "destination",
      destination_service: "db.data.svc.cluster.local",
    });
    const s = parse(await m.text());
    const n = (where: Record<string, string>) => sample(s, "nodemesh_protocol_detection_total", where);
    expect(
      n({ result: "http1", reporter: "source", destination_service: "reviews.shop.svc.cluster.local" }),
    ).toBe(2);
    expect(n({ result: "timeout", destination_service: "unknown" })).toBe(1);
    expect(n({ result: "declared", reporter: "destination" })).toBe(1);
    expect(() => t.countDetection("h3" as "http1")).toThrow(/result must be one of http1, http2, tls/);
  });
});

describe("request access log", () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ["performance"] }));
  afterEach(() => vi.useRealTimers());

  it("writes one line per finished request with Istio's keys and ztunnel's identity keys", () => {
    const { access, lines } = capture();
    const { t } = telemetry("minimal", access);
    const rec = request(t);
    vi.advanceTimersByTime(12.5);
    Object.assign(rec, {
      responseCode: 403,
      flags: "DENY",
      reason: "denied by authorization policy",
      policy: "shop/deny-admin",
      requestBytes: 12,
      responseBytes: 19,
      upstreamHost: "10.2.0.7:9080",
      upstreamCluster: "outbound|9080||reviews.shop.svc.cluster.local",
      upstreamMs: 4.25,
      attempts: 2,
      traceId: "0af7651916cd43dd8448eb211c80319c",
    });
    t.finish(rec);
    t.finish(rec);
    expect(lines()).toHaveLength(1);
    const line = lines()[0] ?? {};
    expect(line).toMatchObject({
      level: 30,
      log: "access",
      msg: "request complete",
      direction: "outbound",
      reporter: "source",
      method: "GET",
      path: "/reviews/1?x=1",
      protocol: "HTTP/1.1",
      authority: "reviews.shop:9080",
      response_code: 403,
      response_flags: "DENY",
      response_code_details: "denied by authorization policy",
      bytes_received: 12,
      bytes_sent: 19,
      duration: 12.5,
      upstream_service_time: 4.25,
      x_forwarded_for: "203.0.113.9",
      user_agent: "curl/8.5.0",
      request_id: "4b2a0f1e-aaaa-bbbb-cccc-000000000001",
      trace_id: "0af7651916cd43dd8448eb211c80319c",
      upstream_host: "10.2.0.7:9080",
      upstream_cluster: "outbound|9080||reviews.shop.svc.cluster.local",
      downstream_remote_address: "10.1.0.5:41234",
      route_name: "shop/reviews/by-user",
      "src.workload": "client",
      "src.namespace": "default",
      "src.identity": "spiffe://cluster.local/ns/default/sa/client",
      "dst.service": "reviews.shop.svc.cluster.local",
      "dst.workload": "reviews-v1",
      "dst.namespace": "shop",
      "dst.identity": "spiffe://cluster.local/ns/shop/sa/reviews",
      attempts: 2,
      policy: "shop/deny-admin",
    });
    expect(new Date(line.start_time as string).getTime()).toBeCloseTo(performance.timeOrigin + rec.start, -1);
  });

  it("leaves out what is unknown or empty, and logs the destination reporter as inbound", () => {
    const { access, lines } = capture();
    const { t } = telemetry("full", access);
    const rec = t.begin(unknownRequestLabels("destination"), {
      method: "POST",
      path: "/",
      authority: "",
      protocol: "HTTP/2",
      requestId: "r",
      userAgent: "",
      sourceAddress: "",
    });
    t.finish(rec); // responseCode 0: the client went away before any response
    const line = lines()[0] ?? {};
    expect(line).toMatchObject({ direction: "inbound", response_code: 0, bytes_received: 0, bytes_sent: 0 });
    for (const key of [
      "authority",
      "user_agent",
      "response_flags",
      "upstream_host",
      "route_name",
      "src.identity",
    ]) {
      expect(line).not.toHaveProperty(key);
    }
  });

  it("formats nothing when the access log is off", async () => {
    const { access, lines } = capture("warn");
    const { m, t } = telemetry("minimal", access);
    const rec = request(t);
    // Only finish's own fields may be read: any access-line field read would throw.
    for (const key of ["method", "path", "userAgent", "requestId", "upstreamHost"] as const) {
      Object.defineProperty(rec, key, {
        get: () => {
          throw new Error(`${key} read with the access log off`);
        },
      });
    }
    rec.responseCode = 204;
    t.finish(rec);
    expect(lines()).toHaveLength(0);
    expect(sample(parse(await m.text()), "nodemesh_requests_total", { response_code: "204" })).toBe(1);
  });
});

describe("/metrics page", () => {
  it("passes `promtool check metrics` with TCP, request and detection series, hostile values included", async () => {
    const m = new AgentMetrics({ version: "0.1.0", node: "n1", access: capture("silent").access });
    const t = new RequestTelemetry({ registry: m.registry, profile: "full" });
    const conn = m.record("outbound", unknownLabels("source"), "10.1.0.5:1", "10.96.0.10:80");
    m.opened(conn);
    m.finish(conn, false);
    for (const route of ["plain", 'quo"te\\back\nline', "ünïcode"]) {
      const rec = request(t, labels({ route_name: route }));
      rec.responseCode = 200;
      rec.responseBytes = 1234;
      t.finish(rec);
    }
    t.countDetection("http2", { destination_service: "reviews.shop.svc.cluster.local" });
    const text = await m.text();
    const s = parse(text);
    expect(sample(s, "nodemesh_requests_total", { route_name: 'quo"te\\back\nline' })).toBe(1);
    expect(sample(s, "nodemesh_tcp_connections_opened_total")).toBe(1);
    const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    expect(r.error, "promtool not found: apt-get install -y prometheus").toBeUndefined();
    expect(`${r.stdout}${r.stderr}`).toBe("");
    expect(r.status).toBe(0);
  });

  it("keeps request series away from a registry reset (they are monotonic by design)", () => {
    const { m } = telemetry("minimal");
    expect(() => m.registry.resetMetrics()).toThrow(/cannot be reset through the registry/);
  });
});

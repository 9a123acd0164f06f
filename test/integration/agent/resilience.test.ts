// The resilience layers on two agents in one process (loopback datapath, real TLS 1.3 + HTTP/2):
// retries to success with the attempt header, no replay of a POST that reached the app, a timeout
// answering 504 UT and cancelling the backend's request, a breaker steering traffic off a failing
// endpoint, and the retry budget bounding a retry storm; metrics, access log and config dump show it.
import { createServer, request, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultInjection, HTTPRoute, TrafficPolicy, type MeshConfig } from "../../../controller/api/index.ts";
import { HEADER, startHarness, workload, type Harness } from "./harness.ts";

const PORT = 8093;
const PODS = { "res-a": "127.0.1.2", "res-b": "127.0.2.2" } as const;

/** What the apps saw, shared by both pods so a script can span retries to either. */
const seen: { pod: string; path: string; method: string; attempt: string; cancelled: boolean }[] = [];
const failures = new Map<string, number>();

/** `/flaky/<key>/<n>`: the first n requests for key answer 503; `/slow`: 1 s; `/fail-on/<pod>`: 500 there. */
function app(pod: string, host: string): Promise<Server> {
  const server = createServer((req, res) => {
    const path = req.url ?? "/";
    const rec = {
      pod,
      path,
      method: req.method ?? "",
      attempt: String(req.headers["x-nodemesh-attempt"]),
      cancelled: false,
    };
    seen.push(rec);
    const [, kind, a, b] = path.split("/");
    let status = 200;
    if (kind === "flaky") {
      const n = (failures.get(a!) ?? 0) + 1;
      failures.set(a!, n);
      status = n <= Number(b) ? 503 : 200;
    } else if (kind === "status") status = Number(a);
    else if (kind === "fail-on") status = a === pod ? 500 : 200;
    if (kind === "slow") {
      const t = setTimeout(() => res.end(pod), 1000);
      res.once("close", () => {
        if (res.writableFinished) return;
        rec.cancelled = true;
        clearTimeout(t);
      });
      return;
    }
    res.writeHead(status, { "content-type": "text/plain" }).end(pod);
  });
  return new Promise((r) => server.listen(PORT, host, () => r(server)));
}

function service(name: string, vip: string) {
  return {
    ...HEADER,
    kind: "Service" as const,
    metadata: { name, namespace: "default" },
    spec: {
      addresses: [vip],
      ports: [{ port: 80, targetPort: PORT, protocol: "TCP" as const, appProtocol: "http" }],
      selector: { app: "res" },
    },
  };
}

function policy(name: string, spec: object) {
  return TrafficPolicy.parse({
    ...HEADER,
    kind: "TrafficPolicy",
    metadata: { name, namespace: "default" },
    spec: { targetRefs: [{ kind: "Service", name }], ...spec },
  });
}

const VIPS = {
  retry: "10.96.1.1",
  slow: "10.96.1.2",
  brk: "10.96.1.3",
  storm: "10.96.1.4",
  fault: "10.96.1.5",
  delay: "10.96.1.6",
  limit: "10.96.1.7",
} as const;

describe("L7 resilience through the node agents", () => {
  let h: Harness;
  const servers: Server[] = [];
  const addr: Record<string, { host: string; port: number }> = {};

  const send = (svc: keyof typeof VIPS, path: string, method = "GET") =>
    new Promise<{ status: number; body: string; ms: number }>((resolve, reject) => {
      const start = performance.now();
      const req = request(
        { ...addr[svc], path, method, headers: { host: `${svc}.default` }, agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks).toString(),
              ms: performance.now() - start,
            }),
          );
        },
      );
      req.on("error", reject);
      req.end(method === "POST" ? "payload" : undefined);
    });
  const accessLog = (path: string) =>
    h.logs.lines.filter((l) => l["path"] === path && l["reporter"] !== "destination" && "response_code" in l);

  beforeAll(async () => {
    for (const [pod, ip] of Object.entries(PODS)) servers.push(await app(pod, ip));
    h = await startHarness();
    const next: MeshConfig = {
      ...h.config,
      version: "2",
      services: [...h.config.services, ...Object.entries(VIPS).map(([n, vip]) => service(n, vip))],
      workloads: [
        ...h.config.workloads.filter((w) => !["echo-a", "echo-b"].includes(w.metadata.name)),
        workload("res-a", "node-a", PODS["res-a"], { app: "res" }, "res"),
        workload("res-b", "node-b", PODS["res-b"], { app: "res" }, "res"),
      ],
      trafficPolicies: [
        policy("retry", { retries: { backoff: { baseInterval: "10ms" } } }),
        policy("slow", { timeout: "300ms" }),
        policy("brk", {
          loadBalancer: { simple: "ROUND_ROBIN" },
          retries: { attempts: 0 },
          circuitBreaker: { consecutiveFailures: 2, openTime: "30s" },
        }),
        policy("storm", {
          retries: {
            attempts: 3,
            backoff: { baseInterval: "0s" },
            budget: { retryRatio: 0.2, minRetriesPerSecond: 0 },
          },
          circuitBreaker: { consecutiveFailures: 0, failures: 0 },
        }),
        policy("fault", { fault: { abort: { httpStatus: 418, percentage: 50 } }, retries: { attempts: 0 } }),
        policy("delay", { fault: { delay: { fixedDelay: "300ms" } } }),
        policy("limit", {
          loadBalancer: { simple: "ROUND_ROBIN" },
          rateLimit: { maxTokens: 3, fillInterval: "1m" },
          retries: { attempts: 0 },
        }),
      ],
    };
    h.source.set(next);
    await Promise.all([h.agents.a.settled(), h.agents.b.settled()]);
    for (const [n, vip] of Object.entries(VIPS))
      addr[n] = await h.dp.a.captureAddress("default/client", { address: vip, port: 80 });
  }, 60_000);

  afterAll(async () => {
    await h?.stop();
    for (const s of servers) s.close();
  });

  it("retries a backend that fails the first two tries to success, numbering the attempts", async () => {
    const r = await send("retry", "/flaky/k1/2");
    expect(r.status).toBe(200);
    expect(seen.filter((s) => s.path === "/flaky/k1/2").map((s) => s.attempt)).toEqual(["1", "2", "3"]);
    // Each retry goes to another endpoint where one exists: never twice in a row to the same pod.
    const pods = seen.filter((s) => s.path === "/flaky/k1/2").map((s) => s.pod);
    expect(pods[0]).not.toBe(pods[1]);
    expect(accessLog("/flaky/k1/2")[0]?.["attempts"]).toBe(3);
    expect(await h.agents.a.metrics.text()).toMatch(
      /nodemesh_request_retries_total\{destination_service="default\/retry:80",reason="status"\} 2/,
    );
  });

  it("does not retry a POST that reached the application", async () => {
    const r = await send("retry", "/status/503", "POST");
    expect(r.status).toBe(503);
    expect(seen.filter((s) => s.path === "/status/503" && s.method === "POST")).toHaveLength(1);
  });

  it("answers 504 UT at the timeout and the backend sees the cancellation", async () => {
    const r = await send("slow", "/slow");
    expect(r.status).toBe(504);
    expect(r.ms).toBeLessThan(900);
    expect(accessLog("/slow")[0]?.["response_flags"]).toBe("UpstreamRequestTimeout");
    await new Promise((res) => setTimeout(res, 200));
    const tries = seen.filter((s) => s.path === "/slow");
    expect(tries.length).toBeGreaterThanOrEqual(1);
    expect(tries.every((s) => s.cancelled)).toBe(true);
  });

  it("opens the breaker of a failing endpoint and sends the traffic to the other", async () => {
    const codes: number[] = [];
    for (let i = 0; i < 12; i++) codes.push((await send("brk", "/fail-on/res-a")).status);
    const toA = seen.filter((s) => s.path === "/fail-on/res-a" && s.pod === "res-a").length;
    expect(toA).toBe(2); // round robin alternates until the second failure opens a's breaker
    expect(codes.slice(-8).every((c) => c === 200)).toBe(true);
    const metrics = await h.agents.a.metrics.text();
    expect(metrics).toMatch(
      /nodemesh_circuit_breaker_state\{destination_service="default\/brk:80",endpoint="127\.0\.1\.2:8093",state="open"\} 1/,
    );
    expect(metrics).toMatch(/nodemesh_circuit_breaker_transitions_total\{[^}]*from="closed",to="open"\} 1/);
    const dump = h.agents.a.configDump() as {
      circuitBreakers: { destination: string; endpoint: string; state: string }[];
    };
    expect(dump.circuitBreakers).toContainEqual(
      expect.objectContaining({ destination: "default/brk:80", endpoint: "127.0.1.2:8093", state: "open" }),
    );
  });

  it("keeps a retry storm within the retry budget", async () => {
    const n = 50;
    for (let i = 0; i < n; i++) expect((await send("storm", "/status/500")).status).toBe(500);
    const hits = seen.filter((s) => s.path === "/status/500").length;
    // Without a budget: 4 tries each (200); with 20 % of recent requests, at most ~1.2 × n.
    expect(hits).toBeLessThanOrEqual(Math.ceil(n * 1.2) + 1);
    expect(hits).toBeGreaterThan(n);
    expect(await h.agents.a.metrics.text()).toMatch(
      /nodemesh_retry_budget_exhausted_total\{destination_service="default\/storm:80"\} [1-9]/,
    );
  });

  it("injects aborts for about the configured share of requests, answered by the mesh", async () => {
    const codes: number[] = [];
    for (let i = 0; i < 200; i++) codes.push((await send("fault", "/fault")).status);
    const aborted = codes.filter((c) => c === 418).length;
    expect(aborted).toBeGreaterThan(60); // 50 % of 200: binomial, 6 standard deviations below 100
    expect(aborted).toBeLessThan(140);
    expect(codes.every((c) => c === 418 || c === 200)).toBe(true);
    const hits = seen.filter((s) => s.path === "/fault").length;
    expect(hits).toBe(200 - aborted); // an aborted request never left the node
    expect(accessLog("/fault").some((l) => l["response_flags"] === "FaultInjected")).toBe(true);
  });

  it("injects a fixed delay", async () => {
    const r = await send("delay", "/delayed");
    expect(r.status).toBe(200);
    expect(r.ms).toBeGreaterThanOrEqual(290);
  });

  it("rate limits per destination workload at the destination: 429 with retry-after beyond the bucket", async () => {
    const replies: { status: number; body: string }[] = [];
    for (let i = 0; i < 10; i++) replies.push(await send("limit", "/limited"));
    // Round robin over two pods, 3 tokens each per minute: 6 pass, 4 are refused at the destination.
    expect(replies.filter((r) => r.status === 200)).toHaveLength(6);
    expect(replies.filter((r) => r.status === 429)).toHaveLength(4);
    expect(replies.find((r) => r.status === 429)!.body).toContain("local rate limit exceeded");
    expect(seen.filter((s) => s.path === "/limited")).toHaveLength(6);
    const limited = h.logs.lines.find((l) => l["path"] === "/limited" && l["response_code"] === 429);
    expect(limited?.["response_flags"]).toBe("RateLimited");
  });

  it("injects a route rule's FaultInjection (ExtensionRef) only on the requests that rule matches", async () => {
    const next = structuredClone(h.source.current()!) as MeshConfig;
    next.version = "fi";
    next.faultInjections = [
      FaultInjection.parse({
        ...HEADER,
        kind: "FaultInjection",
        metadata: { name: "chaos", namespace: "default" },
        spec: { abort: { httpStatus: 503, percentage: 100 } },
      }),
    ];
    next.httpRoutes = [
      HTTPRoute.parse({
        apiVersion: "gateway.networking.k8s.io/v1",
        kind: "HTTPRoute",
        metadata: { name: "chaos", namespace: "default" },
        spec: {
          parentRefs: [{ group: "", kind: "Service", name: "delay" }],
          rules: [
            {
              matches: [{ path: { type: "PathPrefix", value: "/chaos" } }],
              filters: [
                {
                  type: "ExtensionRef",
                  extensionRef: { group: "nodemesh.io", kind: "FaultInjection", name: "chaos" },
                },
              ],
              backendRefs: [{ name: "delay", port: 80 }],
            },
            { backendRefs: [{ name: "delay", port: 80 }] },
          ],
        },
      }),
    ];
    // The delay service's own TrafficPolicy fault (300 ms) still applies to the unmatched rule.
    h.source.set(next);
    await Promise.all([h.agents.a.settled(), h.agents.b.settled()]);
    const before = seen.filter((s) => s.path === "/chaos/x").length;
    for (let i = 0; i < 5; i++) expect((await send("delay", "/chaos/x")).status).toBe(503);
    expect(seen.filter((s) => s.path === "/chaos/x").length).toBe(before);
    expect((await send("delay", "/other")).status).toBe(200);
    expect(accessLog("/chaos/x").some((l) => String(l["response_flags"]).includes("FaultInjected"))).toBe(
      true,
    );
  });
});

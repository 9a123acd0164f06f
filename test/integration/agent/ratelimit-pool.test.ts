// RateLimitPolicy and connection-pool limits on two agents in one process (loopback datapath, real TLS
// 1.3 + HTTP/2): a per-source limit throttles one client while another at the same rate passes, with the
// IETF RateLimit-* fields (asked for on admitted answers too) and retry-after, a gRPC call limited with RESOURCE_EXHAUSTED, a route-rule limit
// only on that rule; pool limits answering 503 UpstreamOverflow at once, a waiting slot, and
// maxRequestsPerConnection recycling the application connection. Metrics and access logs show it.
import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import { connect as h2connect, createServer as h2createServer, type Http2Server } from "node:http2";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HTTPRoute, RateLimitPolicy, TrafficPolicy, type MeshConfig } from "../../../controller/api/index.ts";
import { HEADER, startHarness, workload, type Harness } from "./harness.ts";

const PORT = 8095;
const GRPC_PORT = 8096;
const POD = "127.0.2.40"; // node-b: the destination agent is b, the callers' agent a
const CLIENT2 = "127.0.1.41";
const VIPS = {
  rl: "10.96.3.1",
  rule: "10.96.3.2",
  pool: "10.96.3.3",
  queue: "10.96.3.4",
  recycle: "10.96.3.5",
  grpc: "10.96.3.6",
};
type Svc = keyof typeof VIPS;

/** What the app saw: per path, the connections (remote ports) it came on. */
const conns = new Map<string, Set<number>>();
/** `/hold/<ms>` answers after ms. */
function app(): Promise<Server> {
  const server = createServer((req, res) => {
    const path = req.url ?? "/";
    const set = conns.get(path) ?? new Set<number>();
    set.add(req.socket.remotePort ?? 0);
    conns.set(path, set);
    const hold = /^\/hold\/(\d+)/.exec(path);
    setTimeout(() => res.writeHead(200).end("ok"), hold ? Number(hold[1]) : 0);
  });
  return new Promise((r) => server.listen(PORT, POD, () => r(server)));
}
function grpcApp(): Promise<Http2Server> {
  const server = h2createServer();
  server.on("stream", (s) => {
    s.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    s.once("wantTrailers", () => s.sendTrailers({ "grpc-status": "0" }));
    s.end();
  });
  return new Promise((r) => server.listen(GRPC_PORT, POD, () => r(server)));
}

const service = (name: Svc) => ({
  ...HEADER,
  kind: "Service" as const,
  metadata: { name, namespace: "default" },
  spec: {
    addresses: [VIPS[name]],
    ports: [
      name === "grpc"
        ? { port: 80, targetPort: GRPC_PORT, protocol: "TCP" as const, appProtocol: "grpc" }
        : { port: 80, targetPort: PORT, protocol: "TCP" as const, appProtocol: "http" },
    ],
    selector: { app: "rl" },
  },
});
const meta = (name: string) => ({ ...HEADER, metadata: { name, namespace: "default" } });
const rlp = (name: string, spec: object) =>
  RateLimitPolicy.parse({ ...meta(name), kind: "RateLimitPolicy", spec });
const tp = (name: Svc, spec: object) =>
  TrafficPolicy.parse({
    ...meta(name),
    kind: "TrafficPolicy",
    spec: { targetRefs: [{ kind: "Service", name }], ...spec },
  });

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  ms: number;
}

describe("RateLimitPolicy and connection-pool limits through the node agents", () => {
  let h: Harness;
  let servers: (Server | Http2Server)[] = [];
  const addr = new Map<string, { host: string; port: number }>();
  const send = async (svc: Svc, path: string, from = "default/client"): Promise<Reply> => {
    const key = `${from}>${svc}`;
    if (!addr.has(key)) addr.set(key, await h.dp.a.captureAddress(from, { address: VIPS[svc], port: 80 }));
    return new Promise((resolve, reject) => {
      const start = performance.now();
      const req = request(
        { ...addr.get(key), path, headers: { host: `${svc}.default` }, agent: false },
        (res) => {
          res.resume();
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, ms: performance.now() - start }),
          );
        },
      );
      req.on("error", reject);
      req.end();
    });
  };
  const metrics = (agent: "a" | "b") => h.agents[agent].metrics.text();

  beforeAll(async () => {
    servers = [await app(), await grpcApp()];
    h = await startHarness();
    const route = HTTPRoute.parse({
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "HTTPRoute",
      metadata: { name: "shop", namespace: "default" },
      spec: {
        parentRefs: [{ group: "", kind: "Service", name: "rule" }],
        rules: [
          {
            name: "checkout",
            matches: [{ path: { type: "PathPrefix", value: "/checkout" } }],
            backendRefs: [{ name: "rule", port: 80 }],
          },
          { name: "browse", backendRefs: [{ name: "rule", port: 80 }] },
        ],
      },
    });
    const next: MeshConfig = {
      ...h.config,
      version: "2",
      services: [...h.config.services, ...(Object.keys(VIPS) as Svc[]).map(service)],
      workloads: [
        ...h.config.workloads,
        workload("client-2", "node-a", CLIENT2, { app: "client" }),
        workload("rl-b", "node-b", POD, { app: "rl" }, "rl"),
      ],
      httpRoutes: [route],
      trafficPolicies: [
        tp("pool", { connectionPool: { http: { http2MaxRequests: 1 } }, retries: { attempts: 0 } }),
        tp("queue", { connectionPool: { http: { http2MaxRequests: 1, http1MaxPendingRequests: 1 } } }),
        tp("recycle", { connectionPool: { http: { maxRequestsPerConnection: 1 } } }),
      ],
      rateLimitPolicies: [
        rlp("per-client", {
          targetRefs: [{ kind: "Service", name: "rl" }],
          tokenBucket: { maxTokens: 3, fillInterval: "1m" },
          perSource: true,
          rateLimitHeaders: "Always",
        }),
        rlp("checkout", {
          targetRefs: [
            { group: "gateway.networking.k8s.io", kind: "HTTPRoute", name: "shop", sectionName: "checkout" },
          ],
          tokenBucket: { maxTokens: 1, fillInterval: "1m" },
        }),
        rlp("grpc", {
          targetRefs: [{ kind: "Service", name: "grpc" }],
          tokenBucket: { maxTokens: 1, fillInterval: "1m" },
        }),
      ],
    };
    h.source.set(next);
    await Promise.all([h.agents.a.settled(), h.agents.b.settled()]);
  }, 60_000);

  afterAll(async () => {
    await h?.stop();
    for (const s of servers) s.close();
  });

  it("throttles one client per its SPIFFE ID while another at the same rate passes", async () => {
    const one: Reply[] = [];
    const two: Reply[] = [];
    for (let i = 0; i < 5; i++) {
      one.push(await send("rl", "/rl", "default/client"));
      two.push(await send("rl", "/rl", "default/client-2"));
    }
    expect(one.map((r) => r.status)).toEqual([200, 200, 200, 429, 429]);
    expect(two.map((r) => r.status)).toEqual([200, 200, 200, 429, 429]);
    // Fresh identities each get the whole bucket: the limit is per caller, not shared.
    expect(one[0]!.headers).toMatchObject({
      "ratelimit-limit": "3",
      "ratelimit-remaining": "2",
      "ratelimit-policy": "3;w=60",
    });
    expect(one[3]!.headers).toMatchObject({
      "ratelimit-remaining": "0",
      "retry-after": expect.stringMatching(/^\d+$/),
    });
    expect(Number(one[3]!.headers["ratelimit-reset"])).toBeGreaterThan(50);
    expect(conns.get("/rl")).toBeDefined();
    const m = await metrics("b");
    expect(m).toMatch(
      /nodemesh_rate_limited_total\{destination_service="rl\.default",policy="RateLimitPolicy\/default\/per-client",source_principal="spiffe:\/\/cluster\.local\/ns\/default\/sa\/client"\} 2/,
    );
    const line = h.logs.lines.find(
      (l) => l["path"] === "/rl" && l["response_code"] === 429 && l["reporter"] === "destination",
    );
    expect(line).toMatchObject({
      response_flags: "RateLimited",
      policy: "RateLimitPolicy/default/per-client",
    });
  });

  it("limits a route rule only on the requests that rule matches, with RateLimit-* on the 429 only", async () => {
    const admitted = await send("rule", "/checkout");
    expect(admitted.status).toBe(200);
    expect(Object.keys(admitted.headers).filter((k) => k.startsWith("ratelimit-"))).toEqual([]);
    const refused = await send("rule", "/checkout/pay");
    expect(refused.status).toBe(429);
    expect(refused.headers).toMatchObject({ "ratelimit-limit": "1", "ratelimit-remaining": "0" });
    for (let i = 0; i < 3; i++) expect((await send("rule", "/browse")).status).toBe(200);
  });

  it("ends a limited gRPC call with RESOURCE_EXHAUSTED", async () => {
    const a = await h.dp.a.captureAddress("default/client", { address: VIPS.grpc, port: 80 });
    const session = h2connect("http://grpc.default", { createConnection: () => connect(a.port, a.host) });
    const call = () =>
      new Promise<string | undefined>((resolve, reject) => {
        const s = session.request({
          ":path": "/pkg.Svc/Do",
          ":method": "POST",
          "content-type": "application/grpc",
          te: "trailers",
        });
        let status: string | undefined;
        s.on("response", (hd) => (status = hd["grpc-status"] as string | undefined));
        s.on("trailers", (t) => (status = t["grpc-status"] as string | undefined));
        s.on("end", () => resolve(status));
        s.on("error", reject);
        s.resume();
        s.end();
      });
    expect(await call()).toBe("0");
    expect(await call()).toBe("8");
    session.close();
  });

  it("answers 503 UpstreamOverflow at once beyond http2MaxRequests", async () => {
    const slow = send("pool", "/hold/600");
    await new Promise((r) => setTimeout(r, 150)); // the first request holds the one slot
    const over = await send("pool", "/pool-over");
    expect(over.status).toBe(503);
    expect(over.ms).toBeLessThan(150);
    expect((await slow).status).toBe(200);
    expect(conns.has("/pool-over")).toBe(false);
    expect((await send("pool", "/pool-after")).status).toBe(200);
    const line = h.logs.lines.find((l) => l["path"] === "/pool-over" && l["reporter"] !== "destination");
    expect(line?.["response_flags"]).toBe("UpstreamOverflow");
    expect(await metrics("a")).toMatch(
      /nodemesh_upstream_overflow_total\{destination_service="default\/pool:80",limit="http2MaxRequests"\} 1/,
    );
  });

  it("lets http1MaxPendingRequests wait for the slot and refuses beyond", async () => {
    const first = send("queue", "/hold/400");
    await new Promise((r) => setTimeout(r, 100));
    const waiting = send("queue", "/queued");
    await new Promise((r) => setTimeout(r, 50));
    const over = await send("queue", "/queue-over");
    expect(over.status).toBe(503);
    expect((await first).status).toBe(200);
    const w = await waiting;
    expect(w.status).toBe(200);
    expect(w.ms).toBeGreaterThan(200); // it waited for the first to finish
  });

  it("opens a new application connection per request with maxRequestsPerConnection 1", async () => {
    for (let i = 0; i < 3; i++) expect((await send("recycle", "/recycle")).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await send("rule", "/kept")).status).toBe(200);
    expect(conns.get("/recycle")?.size).toBe(3);
    expect(conns.get("/kept")?.size).toBe(1); // without the limit the keep-alive connection is reused
  });
});

// The L7 path on two agents in one process (loopback datapath, real TLS 1.3 + HTTP/2 between them):
// HTTP/1.1 keep-alive and h2c from the client, per-request balancing, HTTPRoute matches and splits,
// L7 AuthorizationPolicy, protocol detection (HTTP sniffed, a server-first protocol not stalled), and the
// request metrics. The lab e2e tests (test/e2e/mesh/http.test.ts) repeat the user-facing ones with curl,
// grpc-js and the real eBPF capture.
import { createServer as createHttpServer, request, Agent, type Server as HttpServer } from "node:http";
import { connect as h2connect } from "node:http2";
import { createHash, randomBytes } from "node:crypto";
import { connect, createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AuthorizationPolicy,
  HTTPRoute,
  TrafficPolicy,
  type MeshConfig,
} from "../../../controller/api/index.ts";
import { HEADER, startHarness, workload, type Harness } from "./harness.ts";
import { expectBinomialShare } from "../../helpers/binomial.ts";

const WEB_VIP = "10.96.0.20";
const V2_VIP = "10.96.0.21";
const BANNER_VIP = "10.96.0.22";

function service(
  name: string,
  vip: string,
  port: number,
  targetPort: number,
  app: string,
  extra: object = {},
) {
  return {
    ...HEADER,
    kind: "Service" as const,
    metadata: { name, namespace: "default" },
    spec: {
      addresses: [vip],
      ports: [{ port, targetPort, protocol: "TCP" as const, ...extra }],
      selector: { app },
    },
  };
}

/** Parsed as the controller parses a file, so the schema's defaults apply (weight 1, kind Service). */
function route(name: string, rules: object[]) {
  return HTTPRoute.parse({
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    metadata: { name, namespace: "default" },
    spec: { parentRefs: [{ group: "", kind: "Service", name: "web", port: 80 }], rules },
  });
}

/**
 * An HTTP app answering JSON {pod, path, headers, bytes, sha256}; `?status=` sets the code, `?failOn=<pod>`
 * makes that pod answer 503; a request body is read to the end and hashed.
 */
async function webApp(pod: string, host: string, port: number): Promise<HttpServer> {
  const server = createHttpServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/abandoned") {
      const u = { bytes: 0, ended: false, closed: false };
      uploads.push(u);
      req.on("data", (c: Buffer) => (u.bytes += c.length));
      req.on("end", () => (u.ended = true));
      req.on("close", () => (u.closed = true));
      req.on("error", () => {});
    }
    const hash = createHash("sha256");
    let bytes = 0;
    req.on("data", (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
    });
    req.on("end", () => {
      const status =
        url.searchParams.get("failOn") === pod ? 503 : Number(url.searchParams.get("status") ?? 200);
      const body = JSON.stringify({
        pod,
        path: req.url,
        method: req.method,
        headers: req.headers,
        bytes,
        sha256: hash.digest("hex"),
      });
      res.writeHead(status, { "content-type": "application/json" });
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(port, host, r));
  return server;
}

/** What the apps saw of each request to /abandoned. */
const uploads: { bytes: number; ended: boolean; closed: boolean }[] = [];

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: { pod?: string; path?: string; headers?: Record<string, string> } & Record<string, unknown>;
  text: string;
}

describe("L7: HTTP through the node agents", () => {
  let h: Harness;
  const servers: (HttpServer | Server)[] = [];
  let addr: { host: string; port: number };
  let v2addr: { host: string; port: number };

  const get = (
    path: string,
    headers: Record<string, string> = {},
    agent?: Agent,
    method = "GET",
    to = addr,
    upload?: Buffer,
  ) =>
    new Promise<Reply>((resolve, reject) => {
      const req = request(
        {
          host: to.host,
          port: to.port,
          path,
          method,
          headers: { host: "web.default", ...headers },
          agent: agent ?? false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString();
            let body = {};
            try {
              body = JSON.parse(text) as object;
            } catch {
              /* a mesh answer is plain text */
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
          });
        },
      );
      req.on("error", reject);
      if (upload) {
        // Streamed in chunks (chunked transfer-encoding): the agent must not need the whole body first.
        for (let i = 0; i < upload.length; i += 64 * 1024) req.write(upload.subarray(i, i + 64 * 1024));
      }
      req.end();
    });

  beforeAll(async () => {
    servers.push(
      await webApp("web-a", "127.0.1.2", 8081),
      await webApp("web-b", "127.0.2.2", 8081),
      await webApp("web-v2", "127.0.2.3", 8081),
    );
    const banner = createServer((s) => {
      s.on("error", () => {});
      s.write("220 banner ready\r\n");
      s.on("data", (d) => s.write(d));
    });
    await new Promise<void>((r) => banner.listen(2525, "127.0.2.2", r));
    servers.push(banner);
    h = await startHarness();
    const next: MeshConfig = {
      ...h.config,
      version: "2",
      services: [
        ...h.config.services,
        service("web", WEB_VIP, 80, 8081, "web", { name: "http-web" }),
        service("web-v2", V2_VIP, 80, 8081, "web-v2", { appProtocol: "http" }),
        service("banner", BANNER_VIP, 25, 2525, "web"),
      ],
      workloads: [
        ...h.config.workloads,
        workload("web-a", "node-a", "127.1.1.2", { app: "web" }, "web"),
        workload("web-b", "node-b", "127.1.2.2", { app: "web" }, "web"),
        workload("web-v2", "node-b", "127.1.2.3", { app: "web-v2" }, "web"),
      ],
    };
    // The loopback datapath addresses workloads by their listen address: use the apps' own.
    next.workloads = next.workloads
      .map((w) =>
        w.metadata.name === "web-a"
          ? { ...w, spec: { ...w.spec, address: "127.0.1.2" } }
          : w.metadata.name === "web-b"
            ? { ...w, spec: { ...w.spec, address: "127.0.2.2" } }
            : w.metadata.name === "web-v2"
              ? { ...w, spec: { ...w.spec, address: "127.0.2.3" } }
              : w,
      )
      .filter((w) => !["echo-a", "echo-b"].includes(w.metadata.name));
    h.source.set(next);
    await Promise.all([h.agents.a.settled(), h.agents.b.settled()]);
    addr = await h.dp.a.captureAddress("default/client", { address: WEB_VIP, port: 80 });
    v2addr = await h.dp.a.captureAddress("default/client", { address: V2_VIP, port: 80 });
  }, 60_000);

  afterAll(async () => {
    await h?.stop();
    for (const s of servers) s.close();
  });

  it("carries HTTP/1.1 requests and spreads the requests of one keep-alive connection over endpoints", async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const pods = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const r = await get(`/hello?i=${i}`, {}, agent);
      expect(r.status).toBe(200);
      expect(r.body.path).toBe(`/hello?i=${i}`);
      expect(r.body.headers?.["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
      expect(r.body.headers?.["x-forwarded-for"]).toBe("127.0.1.1");
      pods.add(String(r.body.pod));
    }
    agent.destroy();
    expect(pods).toEqual(new Set(["web-a", "web-b"]));
  });

  it("streams a chunked 4 MiB upload through unchanged", async () => {
    const payload = randomBytes(4 * 1024 * 1024);
    const up = await get("/upload", {}, undefined, "POST", addr, payload);
    expect(up.status).toBe(200);
    expect(up.body).toMatchObject({
      bytes: payload.length,
      sha256: createHash("sha256").update(payload).digest("hex"),
    });
  });

  it("never delivers an upload the client abandoned as a complete request", async () => {
    // Node's stream.close(code) sends END_STREAM before RST_STREAM: the destination would end the
    // chunked request to the app, which would take the first KiB for the whole body.
    const before = uploads.length;
    const sock = connect(v2addr.port, v2addr.host);
    sock.on("error", () => {});
    sock.write(
      "POST /abandoned HTTP/1.1\r\nhost: web-v2.default\r\ntransfer-encoding: chunked\r\n\r\n" +
        `400\r\n${"a".repeat(1024)}\r\n`,
    );
    await until("the app to receive the first KiB", () => (uploads[before]?.bytes ?? 0) >= 1024);
    sock.destroy();
    const u = uploads[before]!;
    await until("the app's request to close", () => u.closed);
    expect(u).toEqual({ bytes: 1024, ended: false, closed: true });
  });

  it("answers pipelined HTTP/1.1 requests in order", async () => {
    const pipelined = await new Promise<string>((resolve, reject) => {
      const s = connect(addr.port, addr.host);
      let text = "";
      s.on("data", (d: Buffer) => {
        text += d.toString();
        const done = (text.match(/"path":"\/p\d"/g) ?? []).length === 3;
        if (done && (text.endsWith("0\r\n\r\n") || text.endsWith("}"))) s.end();
      });
      s.on("end", () => resolve(text));
      s.on("error", reject);
      s.write(["/p1", "/p2", "/p3"].map((p) => `GET ${p} HTTP/1.1\r\nhost: web.default\r\n\r\n`).join(""));
    });
    const order = [...pipelined.matchAll(/"path":"(\/p\d)"/g)].map((m) => m[1]);
    expect(order).toEqual(["/p1", "/p2", "/p3"]);
  });

  it("honours Expect: 100-continue", async () => {
    const expect100 = await new Promise<string>((resolve, reject) => {
      const s = connect(addr.port, addr.host);
      let text = "";
      s.on("data", (d: Buffer) => {
        text += d.toString();
        if (text.includes("100 Continue") && !text.includes("200")) s.write("hello");
        if (text.includes('"bytes":5')) s.end();
      });
      s.on("end", () => resolve(text));
      s.on("error", reject);
      s.write("POST /e HTTP/1.1\r\nhost: web.default\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n");
    });
    expect(expect100).toMatch(/^HTTP\/1\.1 100 Continue/);
    expect(expect100).toContain('"bytes":5');
  });

  it("stops sending requests to an endpoint that keeps answering 503 (EWMA penalty, then ejection)", async () => {
    const replies: number[] = [];
    for (let i = 0; i < 20; i++) replies.push((await get("/flaky?failOn=web-b")).status);
    // The outlier detector ejects web-b after 3 consecutive gateway errors (DEFAULT_OUTLIER).
    expect(replies.filter((s) => s === 503).length).toBeLessThanOrEqual(3);
    expect(replies.slice(-10).every((s) => s === 200)).toBe(true);
  });

  it("consistent hashing on a header keeps each user on one endpoint and spreads users over both", async () => {
    const next = structuredClone(h.source.current()!) as MeshConfig;
    next.version = "2h";
    next.trafficPolicies = [
      TrafficPolicy.parse({
        ...HEADER,
        kind: "TrafficPolicy",
        metadata: { name: "web-hash", namespace: "default" },
        spec: {
          targetRefs: [{ group: "", kind: "Service", name: "web" }],
          loadBalancer: { consistentHash: { httpHeaderName: "x-user" } },
        },
      }),
    ];
    h.source.set(next);
    await h.agents.a.settled();
    const podOf = new Map<string, Set<string>>();
    for (let u = 0; u < 16; u++) {
      for (let i = 0; i < 4; i++) {
        const r = await get("/who", { "x-user": `user-${u}` });
        const set = podOf.get(`user-${u}`) ?? new Set<string>();
        set.add(String(r.body.pod));
        podOf.set(`user-${u}`, set);
      }
    }
    for (const pods of podOf.values()) expect(pods.size).toBe(1);
    expect(new Set([...podOf.values()].map((p) => [...p][0]))).toEqual(new Set(["web-a", "web-b"]));
    const back = structuredClone(next);
    back.version = "2i";
    back.trafficPolicies = [];
    h.source.set(back);
    await h.agents.a.settled();
  });

  it("carries h2c (HTTP/2 prior knowledge) requests", async () => {
    const session = h2connect(`http://web.default`, {
      createConnection: () => connect(addr.port, addr.host),
    });
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const s = session.request({ ":path": "/h2", ":method": "GET" });
      let status = 0;
      const chunks: Buffer[] = [];
      s.on("response", (hd) => (status = Number(hd[":status"])));
      s.on("data", (c: Buffer) => chunks.push(c));
      s.on("end", () => resolve({ status, body: Buffer.concat(chunks).toString() }));
      s.on("error", reject);
    });
    session.close();
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ path: "/h2" });
  });

  it("routes by header and path with HTTPRoute, answers 404 when no rule matches, and splits by weight", async () => {
    const next = structuredClone(h.source.current()!) as MeshConfig;
    next.version = "3";
    next.httpRoutes = [
      route("web-routes", [
        {
          matches: [
            { path: { type: "PathPrefix", value: "/api" }, headers: [{ name: "x-canary", value: "yes" }] },
          ],
          backendRefs: [{ name: "web-v2", port: 80, weight: 1 }],
        },
        {
          matches: [{ path: { type: "PathPrefix", value: "/api" } }],
          backendRefs: [{ name: "web", port: 80, weight: 1 }],
        },
        {
          matches: [{ path: { type: "Exact", value: "/split" } }],
          backendRefs: [
            { name: "web", port: 80, weight: 90 },
            { name: "web-v2", port: 80, weight: 10 },
          ],
        },
        {
          matches: [{ path: { type: "Exact", value: "/none" } }],
          backendRefs: [
            { name: "web", port: 80, weight: 1 },
            { name: "web-v2", port: 80, weight: 0 },
          ],
        },
      ]),
    ];
    h.source.set(next);
    await h.agents.a.settled();
    const canary = await get("/api/x", { "x-canary": "yes" });
    expect(canary.text).toContain("web-v2");
    expect((await get("/api/x")).body.pod).not.toBe("web-v2");
    const miss = await get("/other");
    expect(miss.status).toBe(404);
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const replies = await Promise.all(Array.from({ length: 1000 }, () => get("/split", {}, agent)));
    agent.destroy();
    expectBinomialShare(
      replies.filter((r) => r.body.pod === "web-v2").length,
      1000,
      0.1,
      "requests to web-v2",
    );
    const zero = await Promise.all(Array.from({ length: 50 }, () => get("/none")));
    expect(zero.filter((r) => r.body.pod === "web-v2")).toHaveLength(0);
    const text = await (await fetch(`http://127.0.0.1:${h.agents.a.ports.metrics}/metrics`)).text();
    expect(text).toMatch(/nodemesh_requests_total\{[^}]*route_name="default\/web-routes"[^}]*\} \d+/);
    expect(text).toMatch(/nodemesh_request_duration_seconds_bucket\{/);
  });

  it("applies header modifiers, redirect, rewrite and mirror filters as the Gateway API says", async () => {
    const next = structuredClone(h.source.current()!) as MeshConfig;
    next.version = "3b";
    next.httpRoutes = [
      route("filters", [
        {
          matches: [{ path: { type: "PathPrefix", value: "/hdr" } }],
          filters: [
            {
              type: "RequestHeaderModifier",
              requestHeaderModifier: {
                set: [{ name: "x-set", value: "1" }],
                add: [{ name: "x-add", value: "a" }],
                remove: ["x-drop"],
              },
            },
            {
              type: "ResponseHeaderModifier",
              responseHeaderModifier: { add: [{ name: "x-resp", value: "yes" }] },
            },
          ],
          backendRefs: [{ name: "web-v2", port: 80 }],
        },
        {
          matches: [{ path: { type: "PathPrefix", value: "/old" } }],
          filters: [
            {
              type: "RequestRedirect",
              requestRedirect: {
                path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/new" },
                statusCode: 301,
              },
            },
          ],
        },
        {
          matches: [{ path: { type: "PathPrefix", value: "/v1" } }],
          filters: [
            {
              type: "URLRewrite",
              urlRewrite: {
                hostname: "rewritten.example",
                path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/v2" },
              },
            },
          ],
          backendRefs: [{ name: "web-v2", port: 80 }],
        },
        {
          matches: [{ path: { type: "PathPrefix", value: "/mirror" } }],
          filters: [{ type: "RequestMirror", requestMirror: { backendRef: { name: "web-v2", port: 80 } } }],
          backendRefs: [{ name: "web", port: 80 }],
        },
      ]),
    ];
    const seenByV2: string[] = [];
    const v2 = servers[2] as HttpServer;
    const spy = (req: { url?: string; headers: Record<string, unknown> }) =>
      seenByV2.push(`${String(req.headers["host"])} ${req.url}`);
    v2.on("request", spy);
    h.source.set(next);
    await h.agents.a.settled();
    const hdr = await get("/hdr", { "x-drop": "gone", "x-add": "z" });
    expect(hdr.body.headers).toMatchObject({ "x-set": "1", "x-add": "z,a" });
    expect(hdr.body.headers?.["x-drop"]).toBeUndefined();
    expect(hdr.headers["x-resp"]).toBe("yes");
    const redirect = await get("/old/page?q=1");
    expect(redirect.status).toBe(301);
    expect(redirect.headers["location"]).toBe("http://web.default/new/page?q=1");
    const rewritten = await get("/v1/users?id=7");
    expect(rewritten.body).toMatchObject({ pod: "web-v2", path: "/v2/users?id=7" });
    expect(rewritten.body.headers?.["host"]).toBe("rewritten.example");
    const mirrored = await get("/mirror/x");
    expect(["web-a", "web-b"]).toContain(mirrored.body.pod);
    await new Promise((r) => setTimeout(r, 300));
    expect(seenByV2).toContain("web.default-shadow /mirror/x");
    v2.off("request", spy);
  });

  it("denies by path with an L7 AuthorizationPolicy (403) and lets other paths pass", async () => {
    const next = structuredClone(h.source.current()!) as MeshConfig;
    next.version = "4";
    next.httpRoutes = [];
    next.authorizationPolicies = [
      AuthorizationPolicy.parse({
        ...HEADER,
        kind: "AuthorizationPolicy",
        metadata: { name: "no-admin", namespace: "default" },
        spec: {
          selector: { matchLabels: { app: "web" } },
          action: "DENY",
          rules: [{ to: [{ operation: { paths: ["/admin/*"] } }] }],
        },
      }),
    ];
    h.source.set(next);
    await Promise.all([h.agents.a.settled(), h.agents.b.settled()]);
    const denied = await get("/admin/users");
    expect(denied.status).toBe(403);
    expect(denied.text).toContain("RBAC: access denied");
    expect((await get("/public")).status).toBe(200);
  });

  it("an L7-only DENY rule fails closed on an opaque TCP connection (the agent cannot see its paths)", async () => {
    const b = await h.dp.a.captureAddress("default/client", { address: BANNER_VIP, port: 25 });
    const error = await new Promise<Error | undefined>((resolve) => {
      const s = connect(b.port, b.host);
      s.once("data", () => resolve(undefined));
      s.on("error", resolve);
      s.on("close", () => resolve(new Error("closed")));
    });
    expect(error).toBeDefined();
  });

  it("detects HTTP on an undeclared port and carries a server-first protocol without waiting long", async () => {
    const next = structuredClone(h.source.current()!) as MeshConfig;
    next.version = "5";
    next.authorizationPolicies = [];
    h.source.set(next);
    await Promise.all([h.agents.a.settled(), h.agents.b.settled()]);
    const b = await h.dp.a.captureAddress("default/client", { address: BANNER_VIP, port: 25 });
    const start = performance.now();
    const banner = await new Promise<string>((resolve, reject) => {
      const s = connect(b.port, b.host);
      s.once("data", (d: Buffer) => {
        resolve(d.toString());
        s.destroy();
      });
      s.on("error", reject);
    });
    const ms = performance.now() - start;
    expect(banner).toBe("220 banner ready\r\n");
    expect(ms).toBeLessThan(2000);
    const text = await (await fetch(`http://127.0.0.1:${h.agents.a.ports.metrics}/metrics`)).text();
    expect(text).toMatch(/nodemesh_protocol_detection_total\{[^}]*result="timeout"/);
    expect(text).toMatch(/nodemesh_protocol_detection_total\{[^}]*result="declared"/);
    expect(v2addr.port).toBeGreaterThan(0);
  });
});

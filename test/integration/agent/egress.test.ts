// Egress on two agents in one process (loopback datapath, real mTLS HTTP/2 between them): an HTTP
// ExternalService reached through the egress gateway workload on node-b (L7 on both agents, request
// metrics labelled with the external host), the gateway's AuthorizationPolicy allowing one source identity
// and denying another, TLS origination by the gateway, direct opaque egress from node-a, and REGISTRY_ONLY
// reported as not enforced (not ready) by a datapath that cannot capture everything. The lab e2e test
// (test/e2e/mesh/egress.test.ts) repeats the user-facing ones with curl, the eBPF capture and tcpdump.
import { mkdtempSync } from "node:fs";
import {
  createServer as createHttpServer,
  request,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthorizationPolicy, ExternalService, type MeshConfig } from "../../../controller/api/index.ts";
import { serverCert } from "../../helpers/server-cert.ts";
import { exchange, HEADER, startHarness, workload, type Harness } from "./harness.ts";

const OUTSIDE = "127.0.9.1";
const ports = { http: 18080, https: 18443, raw: 19000 };

function ext(name: string, spec: Record<string, unknown>) {
  return ExternalService.parse({
    ...HEADER,
    kind: "ExternalService",
    metadata: { name, namespace: "default" },
    spec,
  });
}

/** The outside HTTP(S) server: answers JSON {via, host, path, forwarded} so the test sees what left the mesh. */
function answer(via: string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          via,
          host: req.headers.host,
          path: req.url,
          forwarded: req.headers.forwarded ?? null,
        }),
      );
    });
  };
}

function get(addr: { host: string; port: number }, host: string, path = "/get") {
  return new Promise<{ status: number; body: string; flag: string }>((resolve, reject) => {
    const req = request({ ...addr, path, headers: { host }, agent: false }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          body,
          flag: String(res.headers["nodemesh-response-flag"] ?? ""),
        }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

describe("egress through a gateway and direct", () => {
  let h: Harness;
  const servers: (Server | HttpServer)[] = [];
  let next: MeshConfig;

  beforeAll(async () => {
    const cert = serverCert(mkdtempSync(join(tmpdir(), "nm-egress-it-")), "api.outside.test");
    const plain = createHttpServer(answer("plain"));
    const secure = createHttpsServer({ key: cert.key, cert: cert.cert }, answer("tls"));
    const raw = createServer((s) => s.pipe(s));
    for (const [s, p] of [
      [plain, ports.http],
      [secure, ports.https],
      [raw, ports.raw],
    ] as const) {
      await new Promise<void>((r) => s.listen(p, OUTSIDE, r));
      servers.push(s);
    }
    h = await startHarness();
    next = structuredClone(h.config);
    next.version = "2";
    next.workloads.push(
      workload("client2", "node-a", "127.0.1.3", { app: "client2" }),
      workload("egress", "node-b", "127.0.2.9", { app: "egress-gateway" }, "egress-gateway"),
    );
    const gateway = {
      egressGateway: { workload: "egress" },
      resolution: "STATIC",
      endpoints: [{ address: OUTSIDE }],
    };
    next.externalServices = [
      ext("web", {
        hosts: ["web.outside.test"],
        addresses: ["240.0.0.10"],
        ...gateway,
        ports: [{ number: 80, name: "http", protocol: "HTTP", targetPort: ports.http }],
      }),
      ext("api", {
        hosts: ["api.outside.test"],
        addresses: ["240.0.0.11"],
        ...gateway,
        ports: [{ number: 80, name: "http", protocol: "HTTP", targetPort: ports.https }],
        tls: { mode: "SIMPLE", caCertificates: cert.caFile },
      }),
      ext("raw", {
        hosts: ["raw.outside.test"],
        addresses: ["240.0.0.12"],
        resolution: "STATIC",
        endpoints: [{ address: OUTSIDE }],
        ports: [{ number: 9000, name: "raw", protocol: "TCP", targetPort: ports.raw }],
      }),
    ];
    next.authorizationPolicies.push(
      AuthorizationPolicy.parse({
        ...HEADER,
        kind: "AuthorizationPolicy",
        metadata: { name: "egress-allow-client", namespace: "default" },
        spec: {
          selector: { matchLabels: { app: "egress-gateway" } },
          action: "ALLOW",
          rules: [{ from: [{ source: { principals: ["cluster.local/ns/default/sa/client"] } }] }],
        },
      }),
    );
    h.source.set(next);
    await Promise.all([h.agents.a.settled(), h.agents.b.settled()]);
    await h.agents.b.whenReady(10_000);
  }, 60_000);

  afterAll(async () => {
    await h?.stop();
    for (const s of servers) s.close();
  });

  it("carries an allowed source's HTTP request out through the gateway, with L7 metrics on both agents", async () => {
    const addr = await h.dp.a.captureAddress("default/client", { address: "240.0.0.10", port: 80 });
    const r = await get(addr, "web.outside.test", "/get?x=1");
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body) as { via: string; host: string; path: string; forwarded: string | null };
    expect(seen).toEqual({ via: "plain", host: "web.outside.test", path: "/get?x=1", forwarded: null });
    const src = await h.agents.a.metrics.text();
    expect(src).toMatch(
      /nodemesh_requests_total\{[^}]*reporter="source"[^}]*destination_service="web\.outside\.test"[^}]*response_code="200"/,
    );
    const gw = await h.agents.b.metrics.text();
    expect(gw).toMatch(
      /nodemesh_requests_total\{[^}]*reporter="destination"[^}]*source_workload="client"[^}]*destination_service="web\.outside\.test"/,
    );
  });

  it("denies a source identity the gateway's policy does not allow (403 from the gateway)", async () => {
    const addr = await h.dp.a.captureAddress("default/client2", { address: "240.0.0.10", port: 80 });
    const r = await get(addr, "web.outside.test");
    expect(r.status).toBe(403);
    expect(r.body).toMatch(/RBAC: access denied/);
    const line = h.logs.lines.find(
      (l) =>
        l["response_flags"] === "AuthorizationPolicyDenied" &&
        String(l["src.identity"] ?? "").endsWith("/sa/client2"),
    );
    expect(line).toBeDefined();
  });

  it("originates TLS to the outside host at the gateway (plaintext from the application)", async () => {
    const addr = await h.dp.a.captureAddress("default/client", { address: "240.0.0.11", port: 80 });
    const r = await get(addr, "api.outside.test");
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ via: "tls", host: "api.outside.test" });
  });

  it("carries an ExternalService without gateway directly from the source agent, as opaque TCP", async () => {
    const r = await exchange(h, "ping", { address: "240.0.0.12", port: 9000 });
    expect(r.error).toBeUndefined();
    expect(r.data.toString()).toBe("ping");
    expect(await h.agents.a.metrics.text()).toMatch(
      /nodemesh_tcp_connections_opened_total\{[^}]*reporter="source"[^}]*destination_service="raw\.outside\.test"/,
    );
  });

  it("reports REGISTRY_ONLY as not enforced, and the agent not ready, on a datapath that cannot capture all", async () => {
    const strict = structuredClone(next);
    strict.version = "3";
    strict.outboundTrafficPolicy = { mode: "REGISTRY_ONLY" };
    h.source.set(strict);
    await h.agents.a.settled();
    expect(h.agents.a.ready).toBe(false);
    expect(h.agents.a.configDump()).toMatchObject({
      pending: expect.arrayContaining(["outbound-traffic-policy"]),
      egress: {
        outboundTrafficPolicy: { mode: "REGISTRY_ONLY", problem: expect.stringMatching(/not enforced/) },
      },
    });
    h.source.set({ ...next, version: "4" });
    await h.agents.a.settled();
    expect(h.agents.a.ready).toBe(true);
  });
});

// The ingress gateway role on two agents in one process (loopback datapath, real TLS and HBONE): an
// HTTPS client outside the mesh reaches backends on both nodes through node-a's Gateway, routed by host
// and path, with the certificate chosen by SNI and checked against the test's CA; plain HTTP is
// redirected; the backend sees the Gateway's SPIFFE identity, so a DENY on it answers 403; metrics say
// reporter="gateway"; X-Forwarded-For is believed for the Gateway's trusted proxy hops only
// (remoteIpBlocks); a broken certificate file is refused while the last good one keeps serving; with
// tracing on, the gateway's CLIENT span and the destination agent's SERVER span form one trace (OTLP to
// the test receiver), continuing the external client's traceparent when it sends one.
import { createServer, request as httpRequest, type Server } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { TLSSocket } from "node:tls";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Resource, Service, type MeshConfig } from "../../../controller/api/index.ts";
import { tracingSettingsFromEnv, type MeshTracer } from "../../../agent/telemetry/tracing/index.ts";
import { createMeshTracer } from "../../../agent/telemetry/tracing/tracer.ts";
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "../../helpers/otlp-receiver.ts";
import { opensslRoot, type PemPair } from "../../helpers/openssl-certs.ts";
import { opensslServerCert } from "../../helpers/server-certs.ts";
import { HEADER, startHarness, workload, type Harness } from "./harness.ts";

const APP_PORT = 8094;
const HTTP_PORT = 18080;
const HTTPS_PORT = 18443;
const GATEWAY_ID = "spiffe://cluster.local/ns/default/sa/ingress";
const PODS = { "gw-web-a": "127.0.1.2", "gw-web-b": "127.0.2.2" } as const;

function app(pod: string, host: string): Promise<Server> {
  const server = createServer((req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ pod, path: req.url, headers: req.headers }));
  });
  return new Promise((r) => server.listen(APP_PORT, host, () => r(server)));
}

const service = (name: string, vip: string, selector: Record<string, string>) =>
  Service.parse({
    ...HEADER,
    kind: "Service",
    metadata: { name, namespace: "default" },
    spec: { addresses: [vip], ports: [{ port: 80, targetPort: APP_PORT, appProtocol: "http" }], selector },
  });
const G = "gateway.networking.k8s.io/v1";

function gatewayDocs(certFiles: { certFile: string; keyFile: string }): Resource[] {
  return [
    {
      apiVersion: G,
      kind: "Gateway",
      metadata: {
        name: "ingress",
        namespace: "default",
        annotations: { "nodemesh.io/gateway-nodes": "node-a" },
      },
      spec: {
        gatewayClassName: "nodemesh",
        addresses: [{ value: "127.0.0.1" }],
        listeners: [
          { name: "http", port: HTTP_PORT, protocol: "HTTP" },
          {
            name: "https",
            port: HTTPS_PORT,
            protocol: "HTTPS",
            hostname: "*.example.com",
            tls: { certificateRefs: [{ group: "nodemesh.io", kind: "TLSCertificate", name: "shop" }] },
          },
        ],
      },
    },
    { ...HEADER, kind: "TLSCertificate", metadata: { name: "shop", namespace: "default" }, spec: certFiles },
    {
      apiVersion: G,
      kind: "HTTPRoute",
      metadata: { name: "shop", namespace: "default" },
      spec: {
        parentRefs: [{ name: "ingress", sectionName: "https" }],
        hostnames: ["shop.example.com"],
        rules: [
          { matches: [{ path: { value: "/b" } }], backendRefs: [{ name: "gw-web-b", port: 80 }] },
          { backendRefs: [{ name: "gw-web", port: 80 }] },
        ],
      },
    },
    {
      apiVersion: G,
      kind: "HTTPRoute",
      metadata: { name: "to-https", namespace: "default" },
      spec: {
        parentRefs: [{ name: "ingress", sectionName: "http" }],
        rules: [
          { filters: [{ type: "RequestRedirect", requestRedirect: { scheme: "https", statusCode: 301 } }] },
        ],
      },
    },
  ].map((d) => Resource.parse(d));
}

describe("the ingress gateway role", () => {
  let h: Harness;
  let dir: string;
  let ca: PemPair;
  let live: { certFile: string; keyFile: string };
  const servers: Server[] = [];
  let next: MeshConfig;
  let otlp: OtlpReceiver;
  const tracers: MeshTracer[] = [];

  const tracerFor = (node: string): MeshTracer => {
    const settings = tracingSettingsFromEnv({
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${otlp.port}`,
      OTEL_BSP_SCHEDULE_DELAY: "50",
    });
    const t = createMeshTracer(settings, { nodeName: node, version: "test" });
    tracers.push(t);
    return t;
  };

  const https = (host: string, path: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; body: string; fingerprint: string }>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: "127.0.0.1",
          port: HTTPS_PORT,
          path,
          servername: host,
          headers: { host, ...headers },
          ca: readFileSync(ca.cert),
          agent: false,
        },
        (res) => {
          const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
          let body = "";
          res.on("data", (c: Buffer) => (body += c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body, fingerprint }));
        },
      );
      req.on("error", reject);
      req.end();
    });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "gw-int-"));
    ca = opensslRoot(dir, "ca", "/CN=ingress test CA");
    const cert = opensslServerCert(dir, "shop", ["*.example.com"], ca);
    live = { certFile: join(dir, "live.crt"), keyFile: join(dir, "live.key") };
    copyFileSync(cert.cert, live.certFile);
    copyFileSync(cert.key, live.keyFile);
    for (const [pod, ip] of Object.entries(PODS)) servers.push(await app(pod, ip));
    otlp = await startOtlpReceiver();
    h = await startHarness({ tracer: tracerFor });
    const docs = gatewayDocs(live);
    const of = <K extends Resource["kind"]>(k: K) =>
      docs.filter((d) => d.kind === k) as Extract<Resource, { kind: K }>[];
    next = {
      ...h.config,
      version: "2",
      services: [
        ...h.config.services,
        service("gw-web", "10.96.2.1", { app: "gw-web" }),
        service("gw-web-b", "10.96.2.2", { app: "gw-web", pod: "b" }),
      ],
      workloads: [
        // The gw-web pods take the echo pods' addresses (one inbound listener per address).
        ...h.config.workloads.filter((w) => !["echo-a", "echo-b"].includes(w.metadata.name)),
        workload("gw-web-a", "node-a", PODS["gw-web-a"], { app: "gw-web", pod: "a" }),
        workload("gw-web-b", "node-b", PODS["gw-web-b"], { app: "gw-web", pod: "b" }),
      ],
      httpRoutes: of("HTTPRoute"),
      gateways: of("Gateway"),
      tlsCertificates: of("TLSCertificate"),
    };
    h.source.set(next);
    await Promise.all([h.agents.a.settled(), h.agents.b.settled()]);
    await h.agents.a.whenReady(10_000);
  }, 60_000);

  afterAll(async () => {
    await h?.stop();
    await Promise.all(tracers.map((t) => t.shutdown()));
    await otlp?.close();
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("routes HTTPS by host and path to both nodes under the gateway's identity", async () => {
    const b = await https("shop.example.com", "/b/x");
    expect(b.status).toBe(200);
    const echo = JSON.parse(b.body) as { pod: string; path: string; headers: Record<string, string> };
    expect(echo).toMatchObject({ pod: "gw-web-b", path: "/b/x" });
    expect(echo.headers["x-forwarded-for"]).toMatch(/^127\.0\.0\.1/);
    const pods = new Set<string>();
    for (let i = 0; i < 20; i++)
      pods.add((JSON.parse((await https("shop.example.com", "/")).body) as { pod: string }).pod);
    expect(pods).toEqual(new Set(["gw-web-a", "gw-web-b"]));
    expect((await https("cart.example.com", "/")).status).toBe(404); // no route for that host
  });

  /** The gateway's span and the destination's SERVER span of the trace whose app saw `traceparent`. */
  async function spansOf(traceparent: string | undefined): Promise<{ gw: ReceivedSpan; dst: ReceivedSpan }> {
    expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const traceId = traceparent!.split("-")[1]!;
    const spans = await otlp.waitFor((all) => all.filter((x) => x.traceId === traceId).length >= 2);
    const mine = spans.filter((x) => x.traceId === traceId);
    const gw = mine.find((x) => x.attributes["nodemesh.reporter"] === "gateway");
    const dst = mine.find((x) => x.kind === "SPAN_KIND_SERVER");
    expect(gw && dst, JSON.stringify(mine)).toBeTruthy();
    return { gw: gw!, dst: dst! };
  }

  it("traces a request: the gateway's CLIENT span is the parent of the destination's SERVER span", async () => {
    const r = await https("shop.example.com", "/b/traced?token=secret");
    expect(r.status).toBe(200);
    const echo = JSON.parse(r.body) as { headers: Record<string, string> };
    const { gw, dst } = await spansOf(echo.headers["traceparent"]);
    expect(gw).toMatchObject({
      kind: "SPAN_KIND_CLIENT",
      parentSpanId: "", // the external client sent no context: the gateway starts the trace
      name: "GET /b/*",
      resource: { "k8s.node.name": "node-a" },
      attributes: {
        "nodemesh.reporter": "gateway",
        "nodemesh.gateway": "default/ingress",
        "nodemesh.gateway.port": HTTPS_PORT,
        "nodemesh.gateway.protocol": "HTTPS",
        "nodemesh.source.workload": "ingress",
        "nodemesh.source.principal": GATEWAY_ID,
        "nodemesh.destination.workload": "gw-web-b",
        "nodemesh.destination.service": "gw-web-b.default",
        "nodemesh.route_name": "default/shop",
        "http.route": "/b/*",
        "http.request.method": "GET",
        "http.response.status_code": 200,
        "url.path": "/b/traced",
        "client.address": "127.0.0.1",
      },
    });
    expect(JSON.stringify(gw.attributes)).not.toContain("secret"); // no query string in a span
    expect(dst).toMatchObject({
      parentSpanId: gw.spanId,
      resource: { "k8s.node.name": "node-b" },
      attributes: { "nodemesh.source.principal": GATEWAY_ID, "nodemesh.destination.workload": "gw-web-b" },
    });
    // The app is the SERVER span's child, and the gateway's access line carries the trace id.
    expect(echo.headers["traceparent"]).toBe(`00-${gw.traceId}-${dst.spanId}-01`);
    const line = h.logs.lines.find((l) => l["reporter"] === "gateway" && l["trace_id"] === gw.traceId);
    expect(line).toMatchObject({ path: "/b/traced?token=secret", response_code: 200 });
  });

  it("continues an external client's W3C context and its tracestate", async () => {
    const trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    const parent = "00f067aa0ba902b7";
    const r = await https("shop.example.com", "/b/continued", {
      traceparent: `00-${trace}-${parent}-01`,
      tracestate: "shop=1",
    });
    const echo = JSON.parse(r.body) as { headers: Record<string, string> };
    const { gw, dst } = await spansOf(echo.headers["traceparent"]);
    expect(gw).toMatchObject({ traceId: trace, parentSpanId: parent, traceState: "shop=1" });
    expect(dst).toMatchObject({ traceId: trace, parentSpanId: gw.spanId });
    expect(echo.headers["tracestate"]).toBe("shop=1");
  });

  it("continues a B3 context and traces what the gateway answers itself (404)", async () => {
    const trace = "80f198ee56343ba864fe8b2a57d3eff7";
    const parent = "e457b5a2e4d86bd1";
    const r = await https("shop.example.com", "/b/b3", { b3: `${trace}-${parent}-1` });
    const echo = JSON.parse(r.body) as { headers: Record<string, string> };
    const { gw, dst } = await spansOf(echo.headers["traceparent"]);
    expect(gw).toMatchObject({ traceId: trace, parentSpanId: parent });
    expect(dst.parentSpanId).toBe(gw.spanId);
    expect((await https("cart.example.com", "/", { b3: `${trace}-${parent}-1` })).status).toBe(404);
    await otlp.waitFor((all) =>
      all.some((x) => x.traceId === trace && x.attributes["http.response.status_code"] === 404),
    );
    const nf = otlp.spans.find(
      (x) => x.traceId === trace && x.attributes["http.response.status_code"] === 404,
    );
    expect(nf).toMatchObject({
      kind: "SPAN_KIND_CLIENT",
      parentSpanId: parent,
      status: "STATUS_CODE_ERROR",
      attributes: { "nodemesh.reporter": "gateway", "nodemesh.response_flags": "NoRoute" },
    });
  });

  it("keeps an HTTPS client's connection for its next requests (keep-alive, no new handshake)", async () => {
    const agent = new HttpsAgent({ keepAlive: true, maxSockets: 1, ca: readFileSync(ca.cert) });
    try {
      const ports: number[] = [];
      for (let i = 0; i < 5; i++) {
        ports.push(
          await new Promise<number>((resolve, reject) => {
            const req = httpsRequest(
              {
                host: "127.0.0.1",
                port: HTTPS_PORT,
                path: "/b/ka",
                method: "POST",
                servername: "shop.example.com",
                headers: { host: "shop.example.com", "content-length": 1024 },
                agent,
              },
              (res) => {
                res.resume();
                res.on("end", () => resolve(res.socket?.localPort ?? 0));
              },
            );
            req.on("error", reject);
            req.end(Buffer.alloc(1024, 97));
          }),
        );
        await new Promise((r) => setImmediate(r));
      }
      expect(new Set(ports).size).toBe(1);
    } finally {
      agent.destroy();
    }
  });

  it("redirects plain HTTP to HTTPS", async () => {
    const r = await new Promise<{ status: number; location: string | undefined }>((resolve, reject) => {
      const req = httpRequest(
        { host: "127.0.0.1", port: HTTP_PORT, path: "/a?q=1", headers: { host: "shop.example.com" } },
        (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, location: res.headers.location });
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(r).toEqual({ status: 301, location: "https://shop.example.com/a?q=1" });
  });

  it('counts requests with reporter="gateway"', async () => {
    const text = await h.agents.a.metrics.text();
    const series = text
      .split("\n")
      .filter((l) => l.startsWith("nodemesh_requests_total{") && l.includes('reporter="gateway"'));
    // The standard label profile (no principals): the Gateway is the source workload.
    expect(series.every((l) => l.includes('source_workload="ingress"'))).toBe(true);
    expect(
      series.some((l) => l.includes('destination_workload="gw-web-b"') && l.includes('response_code="200"')),
    ).toBe(true);
    expect(
      series.some((l) => l.includes('route_name="default/to-https"') && l.includes('response_code="301"')),
    ).toBe(true);
  });

  it("an AuthorizationPolicy denying the gateway's identity answers 403", async () => {
    h.source.set({
      ...next,
      version: "3",
      authorizationPolicies: [
        Resource.parse({
          ...HEADER,
          kind: "AuthorizationPolicy",
          metadata: { name: "no-ingress", namespace: "default" },
          spec: {
            selector: { matchLabels: { pod: "b" } },
            action: "DENY",
            rules: [{ from: [{ source: { principals: [GATEWAY_ID.slice(9)] } }] }],
          },
        }) as MeshConfig["authorizationPolicies"][number],
      ],
    });
    await Promise.all([h.agents.a.settled(), h.agents.b.settled()]);
    const r = await https("shop.example.com", "/b");
    expect(r.status).toBe(403);
    expect(r.body).toMatch(/RBAC: access denied/);
  });

  it("believes X-Forwarded-For only from the proxies the Gateway trusts (remoteIpBlocks)", async () => {
    const denyRemote = (field: "remoteIpBlocks" | "ipBlocks") =>
      Resource.parse({
        ...HEADER,
        kind: "AuthorizationPolicy",
        metadata: { name: "no-203", namespace: "default" },
        spec: {
          selector: { matchLabels: { pod: "b" } },
          action: "DENY",
          rules: [{ from: [{ source: { [field]: ["203.0.113.7/32"] } }] }],
        },
      }) as MeshConfig["authorizationPolicies"][number];
    const withHops = (hops: string | undefined, field: "remoteIpBlocks" | "ipBlocks", version: string) => {
      const gw = next.gateways![0]!;
      const annotations = { ...gw.metadata.annotations };
      if (hops === undefined) delete annotations["nodemesh.io/num-trusted-proxies"];
      else annotations["nodemesh.io/num-trusted-proxies"] = hops;
      h.source.set({
        ...next,
        version,
        gateways: [{ ...gw, metadata: { ...gw.metadata, annotations } }],
        authorizationPolicies: [denyRemote(field)],
      });
      return Promise.all([h.agents.a.settled(), h.agents.b.settled()]);
    };
    const call = (xff?: string) =>
      https("shop.example.com", "/b", xff === undefined ? {} : { "x-forwarded-for": xff });

    await withHops("1", "remoteIpBlocks", "3.1");
    // One trusted proxy: the last entry it appended is the client.
    expect((await call("203.0.113.7")).status).toBe(403);
    const passed = await call("203.0.113.7, 198.51.100.2");
    expect(passed.status).toBe(200);
    const seen = JSON.parse(passed.body) as { headers: Record<string, string> };
    // The edge appends its peer once; the destination agent adds nothing behind a Gateway.
    expect(seen.headers["x-forwarded-for"]).toBe("203.0.113.7, 198.51.100.2, 127.0.0.1");
    expect(seen.headers["nodemesh-remote-ip"]).toBeUndefined();
    expect((await call()).status).toBe(200); // no header: the peer itself

    await withHops("2", "remoteIpBlocks", "3.2");
    expect((await call("203.0.113.7, 198.51.100.2")).status).toBe(403);
    expect((await call("198.51.100.2")).status).toBe(200); // fewer entries than hops: the peer

    // No trusted proxy (the default): a client's X-Forwarded-For is never believed.
    await withHops(undefined, "remoteIpBlocks", "3.3");
    expect((await call("203.0.113.7")).status).toBe(200);
    // ipBlocks stay the Gateway's peer whatever the proxies say.
    await withHops("1", "ipBlocks", "3.4");
    expect((await call("203.0.113.7")).status).toBe(200);
  });

  it("a broken certificate file is refused and the last good one keeps serving", async () => {
    h.source.set({ ...next, version: "4" }); // the DENY above is gone
    await Promise.all([h.agents.a.settled(), h.agents.b.settled()]);
    const before = await https("shop.example.com", "/");
    writeFileSync(live.certFile, "not a certificate\n");
    await h.agents.a.settled();
    await new Promise((r) => setTimeout(r, 2500)); // one poll of the files
    const err = h.logs.lines.find((l) => l["code"] === "NODEMESH_ERR_GATEWAY_CERT");
    expect(String(err?.["msg"])).toMatch(
      /certFile is not a PEM certificate .*keeps serving the last good certificate/,
    );
    const after = await https("shop.example.com", "/");
    expect(after.status).toBe(200);
    expect(after.fingerprint).toBe(before.fingerprint);
  });
});

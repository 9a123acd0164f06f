// The pure outbound decision and the protocol choices it rests on, as tables.
import { describe, expect, it } from "vitest";
import { planOutbound } from "../../../agent/proxy/plan.ts";
import { classifyHead } from "../../../agent/proxy/detect.ts";
import { portProtocol } from "../../../agent/state/protocol.ts";
import { MeshView } from "../../../agent/state/view.ts";
import { compose, type Layer } from "../../../agent/stack/compose.ts";
import { endToEnd, ensureRequestId } from "../../../agent/http/headers.ts";
import { HTTPRoute, type MeshConfig } from "../../../controller/api/index.ts";
import { baseConfig, HEADER, VIP } from "../../integration/agent/harness.ts";

function config(): MeshConfig {
  const c = baseConfig("1", ["pem"]);
  c.services.push(
    {
      ...HEADER,
      kind: "Service",
      metadata: { name: "web", namespace: "default" },
      spec: {
        addresses: ["10.96.0.20"],
        ports: [{ port: 80, protocol: "TCP", appProtocol: "http" }],
        selector: { app: "echo" },
      },
    },
    {
      ...HEADER,
      kind: "Service",
      metadata: { name: "empty", namespace: "default" },
      spec: {
        addresses: ["10.96.0.30"],
        ports: [{ port: 80, protocol: "TCP" }],
        selector: { app: "nobody" },
      },
    },
    {
      ...HEADER,
      kind: "Service",
      metadata: { name: "routed", namespace: "default" },
      spec: {
        addresses: ["10.96.0.31"],
        ports: [{ port: 80, protocol: "TCP", appProtocol: "http" }],
        selector: { app: "nobody" },
      },
    },
  );
  c.httpRoutes.push(
    HTTPRoute.parse({
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "HTTPRoute",
      metadata: { name: "to-web", namespace: "default" },
      spec: {
        parentRefs: [{ group: "", kind: "Service", name: "routed" }],
        rules: [{ backendRefs: [{ name: "web", port: 80 }] }],
      },
    }),
  );
  return c;
}

describe("planOutbound", () => {
  const view = new MeshView(config(), { nodeName: "node-a" });
  const settings = { connectTimeoutMs: 2000 };
  it.each([
    ["an unknown source", "default/nobody", { address: VIP, port: 80 }, { kind: "fail", flag: "NoRoute" }],
    ["no original destination", "default/client", undefined, { kind: "fail", flag: "NoRoute" }],
    [
      "a destination outside the mesh",
      "default/client",
      { address: "10.1.1.1", port: 80 },
      { kind: "fail", flag: "NoRoute" },
    ],
    [
      "a service without endpoints",
      "default/client",
      { address: "10.96.0.30", port: 80 },
      { kind: "fail", flag: "NoHealthyUpstream", service: "empty.default" },
    ],
    [
      "an undeclared service port",
      "default/client",
      { address: VIP, port: 80 },
      { kind: "forward", protocol: "tcp", serviceHost: "echo.default", destination: "default/echo:80" },
    ],
    [
      "a declared HTTP port",
      "default/client",
      { address: "10.96.0.20", port: 80 },
      { kind: "forward", protocol: "http", destination: "default/web:80" },
    ],
    [
      "a routed port with no endpoints of its own",
      "default/client",
      { address: "10.96.0.31", port: 80 },
      { kind: "forward", protocol: "http" },
    ],
    [
      "a workload address (opaque TCP)",
      "default/client",
      { address: "127.0.2.2", port: 9000 },
      { kind: "forward", protocol: "tcp", destination: "127.0.2.2:9000", serviceHost: "unknown" },
    ],
  ] as const)("%s", (_name, uid, dst, want) => {
    expect(planOutbound(view, uid, dst, settings)).toMatchObject(want);
  });
});

describe("portProtocol", () => {
  it.each([
    [{ appProtocol: "http" }, "http"],
    [{ appProtocol: "HTTP" }, "http"],
    [{ appProtocol: "kubernetes.io/h2c" }, "http2"],
    [{ appProtocol: "grpc" }, "grpc"],
    [{ appProtocol: "tcp", name: "http" }, "tcp"],
    [{ appProtocol: "https" }, "tcp"],
    [{ appProtocol: "something-else" }, "tcp"],
    [{ name: "http" }, "http"],
    [{ name: "http-web" }, "http"],
    [{ name: "grpc-api" }, "grpc"],
    [{ name: "http2-x" }, "http2"],
    [{ name: "tcp-db" }, "tcp"],
    [{ name: "web" }, "detect"],
    [{}, "detect"],
  ] as const)("%j → %s", (port, want) => expect(portProtocol(port)).toBe(want));
});

describe("classifyHead", () => {
  const b = (s: string | number[]) => (typeof s === "string" ? Buffer.from(s, "latin1") : Buffer.from(s));
  it.each([
    ["", undefined],
    ["GET / HTTP/1.1\r\n", "http1"],
    ["POST /api?x=1 HTTP/1.0\r\nhost: a\r\n", "http1"],
    ["GET / HT", undefined],
    ["PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "http2"],
    ["PRI * HTTP/2.0\r\n", undefined],
    ["SSH-2.0-OpenSSH_9.2\r\n", "opaque"],
    ["EHLO example.com\r\n", "opaque"],
    ["\x00\x00\x00\x01", "opaque"],
    [[0x16, 0x03, 0x01, 0x02, 0x00], "tls"],
    ["AVERYLONGMETHODNAMEMORETHANTWENTY / HTTP/1.1\r\n", "opaque"],
  ] as const)("%j → %s", (head, want) => expect(classifyHead(b(head as string))).toBe(want));
});

describe("compose", () => {
  it("runs layers outermost first and lets a layer answer without calling next", async () => {
    const seen: string[] = [];
    const tag =
      (name: string): Layer<string, string> =>
      (next) =>
      async (ctx) => {
        seen.push(name);
        return ctx === "stop" && name === "b" ? "answered by b" : `${name}(${await next(ctx)})`;
      };
    const h = compose([tag("a"), tag("b")], async (ctx) => `t:${ctx}`);
    expect(await h("x")).toBe("a(b(t:x))");
    expect(seen).toEqual(["a", "b"]);
    expect(await h("stop")).toBe("a(answered by b)");
  });
});

describe("header hygiene", () => {
  it("drops hop-by-hop, Connection-listed, pseudo and agent-internal headers; keeps te: trailers", () => {
    const out = endToEnd({
      ":path": "/",
      connection: "keep-alive, x-hop",
      "keep-alive": "timeout=5",
      "x-hop": "1",
      "transfer-encoding": "chunked",
      upgrade: "websocket",
      te: "trailers, deflate",
      host: "a",
      "nodemesh-target": "1.2.3.4:80",
      "x-end": "kept",
      "content-type": "application/grpc",
    });
    expect(out).toEqual({ "x-end": "kept", "content-type": "application/grpc", te: "trailers" });
    const out2 = endToEnd({ connection: "close, x-hop", "x-hop": "1" });
    expect(out2).toEqual({});
  });
  it("keeps a client's x-request-id and generates one otherwise", () => {
    expect(ensureRequestId({ "x-request-id": "abc" })).toBe("abc");
    const h: Record<string, string> = {};
    expect(ensureRequestId(h)).toMatch(/^[0-9a-f-]{36}$/);
    expect(h["x-request-id"]).toBeDefined();
  });
});

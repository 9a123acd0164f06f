// L7 through the mesh as a user sees it, on the lab with the real eBPF capture: unmodified curl
// (HTTP/1.1 and h2c), a grpc-js client and a WebSocket client in a pod, calling service VIPs; HTTPRoute
// header routing and a 90/10 split; an L7 DENY; a server-first protocol on an undeclared port; a real
// Prometheus scraping the request metrics with the route label.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectBinomialShare } from "../../helpers/binomial.ts";
import { BANNER_VIP, DEMO_ROUTES, GRPC_VIP, WEB_VIP } from "../../../demo/mesh-config.ts";

/** Say calls carrying x-canary: yes go to the v2-only gRPC service; every other call is unrouted. */
const GRPC_CANARY = {
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "GRPCRoute",
  metadata: { name: "echo-grpc", namespace: "default" },
  spec: {
    parentRefs: [{ group: "", kind: "Service", name: "echo-grpc", port: 9090 }],
    rules: [
      {
        matches: [
          {
            method: { service: "nodemesh.echo.v1.Echo", method: "Say" },
            headers: [{ name: "x-canary", value: "yes" }],
          },
        ],
        backendRefs: [{ name: "echo-grpc-v2", port: 9090 }],
      },
      { backendRefs: [{ name: "echo-grpc", port: 9090 }] },
    ],
  },
};
import { APPS, eventually, meshFixture, type MeshFixture } from "../../helpers/mesh-fixture.ts";
import { startPrometheus } from "../../helpers/prometheus.ts";

let fx: MeshFixture;

interface Echo {
  pod: string;
  path: string;
  protocol: string;
  headers: Record<string, string>;
}

/** `n` requests with curl on one keep-alive connection; one JSON body per line. */
async function curlMany(pod: string, url: string, n: number, args: string[] = []): Promise<Echo[]> {
  const urls = Array.from({ length: n }, () => url);
  const r = await fx.lab.exec(pod, ["curl", "-sS", "--max-time", "30", "-w", "\\n", ...args, ...urls]);
  expect(r.stderr).toBe("");
  return r.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Echo);
}

function node(pod: string, args: string[]) {
  return fx.lab.exec(pod, [process.execPath, "--disable-warning=ExperimentalWarning", ...args]);
}

beforeAll(async () => {
  fx = await meshFixture("l7");
}, 180_000);

afterAll(async () => {
  await fx?.close();
});

describe("HTTP from an unmodified client", () => {
  it("HTTP/1.1: the requests of one keep-alive connection spread over both backends", async () => {
    const replies = await curlMany("n1p1", `http://${WEB_VIP}/hello`, 20, ["--http1.1"]);
    expect(replies).toHaveLength(20);
    expect(new Set(replies.map((r) => r.pod))).toEqual(new Set(["n1p2", "n2p2"]));
    for (const r of replies) {
      expect(r.path).toBe("/hello");
      expect(r.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
      expect(r.headers["x-forwarded-for"]).toBe(fx.lab.pods.find((p) => p.name === "n1p1")!.address);
    }
  });

  it("h2c (HTTP/2 prior knowledge) reaches the backends", async () => {
    // One URL per curl: curl 7.88 fails to reuse a prior-knowledge connection to any Node HTTP/2 server
    // (seen against a bare node:http2 server, no mesh); one client connection carrying requests to
    // several endpoints is shown over HTTP/2 by the gRPC test below.
    for (let i = 0; i < 3; i++) {
      const [reply] = await curlMany("n1p1", `http://${WEB_VIP}/h2?i=${i}`, 1, ["--http2-prior-knowledge"]);
      expect(reply!.path).toBe("/h2");
    }
  });

  it("gRPC (grpc-js): unary calls and a server stream, with grpc-status errors carried through", async () => {
    const ok = await node("n1p1", [
      join(APPS, "grpc-client.ts"),
      `${GRPC_VIP}:9090`,
      "say",
      "hi",
      "--count",
      "6",
    ]);
    expect(ok.code, ok.stderr + ok.stdout).toBe(0);
    const pods = ok.stdout
      .split("\n")
      .filter((l) => l.includes('"pod"'))
      .map((l) => (JSON.parse(l) as { pod: string }).pod);
    expect(pods).toHaveLength(6);
    expect(new Set(pods).size).toBe(2);
    const failed = await node("n1p1", [
      join(APPS, "grpc-client.ts"),
      `${GRPC_VIP}:9090`,
      "say",
      "x",
      "--status",
      "5",
    ]);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/"code":5/);
    const stream = await node("n1p1", [join(APPS, "grpc-client.ts"), `${GRPC_VIP}:9090`, "count", "5"]);
    expect(stream.code, stream.stderr + stream.stdout).toBe(0);
  });

  it("a WebSocket echo works through the upgrade", async () => {
    const r = await node("n1p1", [join(APPS, "ws-client.ts"), `${WEB_VIP}:80`, "--count", "5"]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
  });

  it("a server-first protocol on an undeclared port is not held back beyond the detection timeout", async () => {
    const r = await node("n1p1", [join(APPS, "banner-client.ts"), `${BANNER_VIP}:25`]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const first = JSON.parse(r.stdout.split("\n").find((l) => l.includes("banner"))!) as {
      ms_to_banner: number;
    };
    // The agent waits 200 ms for client bytes; then it carries the connection as TCP.
    expect(first.ms_to_banner).toBeLessThan(3000);
    const metrics = await fx.mesh.agentHttp("n1", 15020, "/metrics");
    expect(metrics).toMatch(
      /nodemesh_protocol_detection_total\{[^}]*result="timeout"[^}]*destination_service="banner.default"/,
    );
  });
});

describe("HTTPRoute", () => {
  beforeAll(async () => {
    fx.applyExtra([...DEMO_ROUTES, GRPC_CANARY]);
    await eventually("the header route to apply", async () => {
      const r = await curlMany("n1p1", `http://${WEB_VIP}/`, 1, ["-H", "x-canary: yes"]);
      return r[0]?.pod === "n2p2";
    });
  });

  it("routes by header: x-canary: yes always reaches v2", async () => {
    const replies = await curlMany("n1p1", `http://${WEB_VIP}/c`, 20, ["-H", "x-canary: yes"]);
    expect(replies.every((r) => r.pod === "n2p2")).toBe(true);
  });

  it("GRPCRoute: a method + metadata match sends those calls to v2 only", async () => {
    const grpc = (args: string[]) =>
      node("n1p1", [join(APPS, "grpc-client.ts"), `${GRPC_VIP}:9090`, "say", "hi", "--count", "6", ...args]);
    const podsOf = (out: string) =>
      out
        .split("\n")
        .filter((l) => l.includes('"pod"'))
        .map((l) => (JSON.parse(l) as { pod: string }).pod);
    let canary = await grpc(["--metadata", "x-canary=yes"]);
    await eventually("the GRPCRoute to apply", async () => {
      canary = await grpc(["--metadata", "x-canary=yes"]);
      return canary.code === 0 && podsOf(canary.stdout).every((p) => p === "n2p2");
    });
    expect(podsOf(canary.stdout)).toHaveLength(6);
    const plain = await grpc([]);
    expect(plain.code, plain.stderr + plain.stdout).toBe(0);
    expect(new Set(podsOf(plain.stdout))).toEqual(new Set(["n1p2", "n2p2"]));
  });

  it("splits 90/10 over 2,000 requests (v2's share within 10 ± 4 points)", async () => {
    const replies = await curlMany("n1p1", `http://${WEB_VIP}/split`, 2000);
    expect(replies).toHaveLength(2000);
    expect(replies.every((r) => r.pod === "n1p2" || r.pod === "n2p2")).toBe(true);
    expectBinomialShare(replies.filter((r) => r.pod === "n2p2").length, 2000, 0.1, "requests to v2");
  });

  it("exports request metrics with the route label to a real Prometheus", async () => {
    const prom = startPrometheus(fx.lab, fx.lab.node(1));
    try {
      await curlMany("n1p1", `http://${WEB_VIP}/p`, 5);
      const result = await prom.query('nodemesh_requests_total{reporter="source",route_name="default/web"}');
      expect(result[0]!.metric["destination_service"]).toMatch(/^web-v[12]\.default$/);
      expect(result[0]!.metric["response_code"]).toBe("200");
      const hist = await prom.query(
        'nodemesh_request_duration_seconds_bucket{reporter="destination",le="+Inf",destination_service="web-v1.default"}',
      );
      expect(Number(hist[0]!.value[1])).toBeGreaterThan(0);
    } finally {
      await prom.stop();
    }
    const text = await fx.mesh.agentHttp("n1", 15020, "/metrics");
    const check = await fx.lab.exec(fx.lab.node(1), ["promtool", "check", "metrics"], { input: text });
    expect(check.stderr + check.stdout).not.toMatch(/error/i);
    expect(check.code).toBe(0);
  });
});

describe("L7 AuthorizationPolicy", () => {
  it("a DENY on a path answers 403 while other paths pass; the access log names the policy", async () => {
    fx.applyExtra([
      ...DEMO_ROUTES,
      GRPC_CANARY,
      {
        apiVersion: "nodemesh.io/v1alpha1",
        kind: "AuthorizationPolicy",
        metadata: { name: "no-admin", namespace: "default" },
        spec: {
          selector: { matchLabels: { app: "echo" } },
          action: "DENY",
          rules: [{ to: [{ operation: { paths: ["/admin/*"] } }] }],
        },
      },
    ]);
    await eventually("the DENY to apply", async () => {
      const r = await fx.curl("n1p1", `http://${WEB_VIP}/admin/x`, ["-o", "/dev/null", "-w", "%{http_code}"]);
      return r.body === "403";
    });
    const ok = await fx.curl("n1p1", `http://${WEB_VIP}/public`, ["-o", "/dev/null", "-w", "%{http_code}"]);
    expect(ok.body).toBe("200");
    const denied = await fx.curl("n1p1", `http://${WEB_VIP}/admin/users`);
    expect(denied.body).toContain("RBAC: access denied");
    // The agents write their logs in batches (at least every 100 ms).
    await eventually("the denied request's access line", () =>
      [...fx.agentLog("n1"), ...fx.agentLog("n2")].some(
        (l) => l["policy"] === "default/no-admin" && l["response_code"] === 403,
      ),
    );
  });
});

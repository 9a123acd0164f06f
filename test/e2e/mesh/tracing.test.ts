// Distributed tracing on the lab, as a user sees it: the agents export over OTLP/gRPC to a real
// TraceService (test/helpers/otlp-receiver.ts, from the official protocol definitions) listening on the
// controller host, where the agents reach the controller. curl in the client pod calls the `web`
// service on the other node; the echo backend reports the headers it received, which is what the
// application would continue its trace from.
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_ROUTES, WEB_VIP } from "../../../demo/mesh-config.ts";
import { CONTROLLER_ADDRESS } from "../../../lab/plan.ts";
import type { LabProcess } from "../../../lab/index.ts";
import { eventually, meshFixture, type MeshFixture } from "../../helpers/mesh-fixture.ts";
import type { ReceivedSpan } from "../../helpers/otlp-receiver.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const RECEIVER = join(ROOT, "test/helpers/otlp-receiver.ts");
const OTLP_PORT = 4317;
/** Short batches and deadlines so the test sees spans (and failed exports) within a second or two. */
const AGENT_ENV = {
  OTEL_EXPORTER_OTLP_ENDPOINT: `http://${CONTROLLER_ADDRESS}:${OTLP_PORT}`,
  OTEL_BSP_SCHEDULE_DELAY: "100",
  OTEL_BSP_EXPORT_TIMEOUT: "2000",
  OTEL_EXPORTER_OTLP_TIMEOUT: "1000",
  OTEL_BSP_MAX_QUEUE_SIZE: "64",
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "16",
};
const T = "4bf92f3577b34da6a3ce929d0e0e4736";
const S = "00f067aa0ba902b7";

interface Echo {
  pod: string;
  path: string;
  headers: Record<string, string>;
}

let fx: MeshFixture;
let receiver: LabProcess | undefined;
const spans: ReceivedSpan[] = [];

async function startReceiver(): Promise<void> {
  const p = fx.lab.spawn(fx.lab.root, [
    process.execPath,
    "--disable-warning=ExperimentalWarning",
    RECEIVER,
    "--listen",
    `${CONTROLLER_ADDRESS}:${OTLP_PORT}`,
  ]);
  createInterface({ input: p.stdout }).on("line", (l) => {
    if (l.startsWith('{"traceId"')) spans.push(JSON.parse(l) as ReceivedSpan);
  });
  await p.waitForOutput('"listening"');
  receiver = p;
}

/** A canary request (routed to web-v2, the echo pod on the other node) with extra headers. */
async function call(path: string, headers: string[] = []): Promise<Echo> {
  const args = ["curl", "-sS", "--max-time", "10", "-H", "x-canary: yes"];
  for (const h of headers) args.push("-H", h);
  const r = await fx.lab.exec("n1p1", [...args, `http://${WEB_VIP}${path}`]);
  expect(r.stderr).toBe("");
  return JSON.parse(r.stdout) as Echo;
}

/** The CLIENT and SERVER spans of one trace, once both arrived. */
async function clientAndServer(traceId: string): Promise<{ client: ReceivedSpan; server: ReceivedSpan }> {
  const of = (kind: string) => spans.find((s) => s.traceId === traceId && s.kind === kind);
  await eventually(
    `the CLIENT and SERVER spans of trace ${traceId}`,
    () => !!of("SPAN_KIND_CLIENT") && !!of("SPAN_KIND_SERVER"),
  );
  return { client: of("SPAN_KIND_CLIENT")!, server: of("SPAN_KIND_SERVER")! };
}

function address(pod: string): string {
  return fx.lab.pods.find((p) => p.name === pod)!.address;
}

beforeAll(async () => {
  fx = await meshFixture("trace", { mesh: { agentEnv: AGENT_ENV } });
  await startReceiver();
  fx.applyExtra([...DEMO_ROUTES]);
  await eventually("the canary route to apply", async () => (await call("/ready")).pod === "n2p2");
}, 180_000);

afterAll(async () => {
  receiver?.kill("SIGTERM");
  await fx?.close();
});

describe("tracing through two agents", () => {
  it("an incoming traceparent: a CLIENT span under it, a SERVER span under that, the app under the SERVER span", async () => {
    const echo = await call("/traced?q=secret", [`traceparent: 00-${T}-${S}-01`, "tracestate: app=1"]);
    expect(echo.pod).toBe("n2p2");
    const { client, server } = await clientAndServer(T);
    expect(client.parentSpanId).toBe(S);
    expect(server.parentSpanId).toBe(client.spanId);
    expect(echo.headers["traceparent"]).toBe(`00-${T}-${server.spanId}-01`);
    expect(echo.headers["tracestate"]).toBe("app=1");
    expect(client.name).toBe("GET /*");
    expect(client.attributes).toMatchObject({
      "http.request.method": "GET",
      "url.path": "/traced",
      "http.route": "/*",
      "http.response.status_code": 200,
      "server.address": WEB_VIP,
      "network.peer.address": address("n2p2"),
      "nodemesh.source.workload": "client-n1p1",
      "nodemesh.source.principal": "spiffe://cluster.local/ns/default/sa/client",
      "nodemesh.destination.workload": "echo-n2p2",
      "nodemesh.route_name": "default/web",
      "nodemesh.response_flags": "-",
    });
    expect(String(client.attributes["user_agent.original"])).toMatch(/^curl\//);
    expect(client.events.map((e) => e.name)).toEqual(["attempt"]);
    expect(JSON.stringify(client)).not.toContain("secret");
    expect(server.attributes).toMatchObject({
      "http.request.method": "GET",
      "url.path": "/traced",
      "http.response.status_code": 200,
      "client.address": address("n1p1"),
      "network.peer.address": address("n1p1"),
      "nodemesh.source.workload": "client-n1p1",
      "nodemesh.destination.workload": "echo-n2p2",
    });
    expect(client.resource["k8s.node.name"]).toBe("n1");
    expect(server.resource["k8s.node.name"]).toBe("n2");
    expect(client.status).toBe("STATUS_CODE_UNSET");
  });

  it("B3 in (single and multi): B3 and W3C out, in the same trace", async () => {
    const single = await call("/b3", [`b3: ${T.replace(/^4/, "5")}-${S}-1`]);
    const t1 = T.replace(/^4/, "5");
    const a = await clientAndServer(t1);
    expect(a.client.parentSpanId).toBe(S);
    expect(single.headers["b3"]).toBe(`${t1}-${a.server.spanId}-1-${a.client.spanId}`);
    expect(single.headers["traceparent"]).toBe(`00-${t1}-${a.server.spanId}-01`);
    // A 64-bit B3 trace id stays 64 bits on the B3 side and is padded on the W3C side.
    const t64 = "a3ce929d0e0e4736";
    const multi = await call("/b3multi", [`x-b3-traceid: ${t64}`, `x-b3-spanid: ${S}`, "x-b3-sampled: 1"]);
    const b = await clientAndServer(`0000000000000000${t64}`);
    expect(multi.headers["x-b3-traceid"]).toBe(t64);
    expect(multi.headers["x-b3-spanid"]).toBe(b.server.spanId);
    expect(multi.headers["x-b3-parentspanid"]).toBe(b.client.spanId);
    expect(multi.headers["x-b3-sampled"]).toBe("1");
    expect(multi.headers["traceparent"]).toBe(`00-0000000000000000${t64}-${b.server.spanId}-01`);
  });

  it("no trace header in: a new trace, rooted at the CLIENT span, and W3C only out", async () => {
    const echo = await call("/fresh");
    const traceId = echo.headers["traceparent"]!.split("-")[1]!;
    const { client, server } = await clientAndServer(traceId);
    expect(client.parentSpanId).toBe("");
    expect(server.parentSpanId).toBe(client.spanId);
    expect(echo.headers["b3"]).toBeUndefined();
    expect(echo.headers["x-b3-traceid"]).toBeUndefined();
  });

  it("the collector stopped: requests unaffected, the lost spans counted on both agents", async () => {
    receiver!.kill("SIGTERM");
    await receiver!.exited;
    receiver = undefined;
    const n = 30;
    const t0 = performance.now();
    // curl applies one -o per URL: every body is discarded, only the status codes are printed.
    const urls = Array.from({ length: n }, (_, i) => [
      "-o",
      "/dev/null",
      `http://${WEB_VIP}/down?i=${i}`,
    ]).flat();
    const r = await fx.lab.exec("n1p1", [
      "curl",
      "-sS",
      "--max-time",
      "10",
      "-H",
      "x-canary: yes",
      "-w",
      "%{http_code}\\n",
      ...urls,
    ]);
    const elapsedMs = performance.now() - t0;
    expect(r.stderr).toBe("");
    expect(r.stdout.trim().split("\n")).toEqual(Array.from({ length: n }, () => "200"));
    // Exports are given up after 1 s; were a request waiting on one, 30 of them would take 30 s.
    expect(elapsedMs).toBeLessThan(5_000);
    const dropped = async (node: string) => {
      const text = await fx.mesh.agentHttp(node, 15020, "/metrics");
      const m = /^nodemesh_trace_spans_dropped_total\{reason="export_failed"\} (\d+)/m.exec(text);
      return Number(m?.[1] ?? 0);
    };
    await eventually(
      "dropped spans to be counted on n1 and n2",
      async () => (await dropped("n1")) > 0 && (await dropped("n2")) > 0,
    );
    const text = await fx.mesh.agentHttp("n1", 15020, "/metrics");
    expect(text).toMatch(/^nodemesh_trace_spans_exported_total \d+/m);
    expect(text).toMatch(/^nodemesh_trace_spans_dropped_total\{reason="queue_full"\} \d+/m);
  });
});

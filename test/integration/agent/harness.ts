// Two agents in one process on 127.0.0.0/8 with the loopback datapath, an in-test CA and echo apps.
// Addresses: node-a workloads 127.0.1.x, node-b 127.0.2.x; service VIPs are never dialled (captured).
import { createServer, connect, type Server, type Socket } from "node:net";
import { Writable } from "node:stream";
import { pino } from "pino";
import type { MeshConfig } from "../../../controller/api/index.ts";
import { createAgent, type Agent } from "../../../agent/app.ts";
import { parseAgentSettings } from "../../../agent/config.ts";
import { LoopbackDatapath } from "../../../agent/datapath/loopback.ts";
import { StaticConfigSource } from "../../../agent/state/source.ts";
import type { MeshTracer } from "../../../agent/telemetry/tracing/index.ts";
import { createTestCa, type TestCa } from "../../helpers/test-ca.ts";

export const TD = "cluster.local";
export const VIP = "10.96.0.10";
export const HEADER = { apiVersion: "nodemesh.io/v1alpha1" as const };

export function workload(
  name: string,
  node: string,
  address: string,
  labels: Record<string, string>,
  sa = name,
) {
  return {
    ...HEADER,
    kind: "WorkloadEntry" as const,
    metadata: { name, namespace: "default" },
    spec: { address, serviceAccount: sa, labels, node, netns: `/var/run/netns/${name}` },
  };
}

export function baseConfig(version: string, trustBundle: string[]): MeshConfig {
  return {
    version,
    trustDomain: TD,
    rootNamespace: "nodemesh-system",
    trustBundle,
    services: [
      {
        ...HEADER,
        kind: "Service",
        metadata: { name: "echo", namespace: "default" },
        spec: {
          addresses: [VIP],
          ports: [{ name: "tcp", port: 80, targetPort: 8080, protocol: "TCP" }],
          selector: { app: "echo" },
        },
      },
    ],
    workloads: [
      workload("client", "node-a", "127.0.1.1", { app: "client" }),
      workload("echo-a", "node-a", "127.0.1.2", { app: "echo" }, "echo"),
      workload("echo-b", "node-b", "127.0.2.2", { app: "echo" }, "echo"),
    ],
    authorizationPolicies: [],
    peerAuthentications: [],
    trafficPolicies: [],
    httpRoutes: [],
    grpcRoutes: [],
    faultInjections: [],
  };
}

/** Echo app: answers "<name>|" then echoes; on the client's FIN writes "|bye" and ends (half-close). */
export async function echoApp(name: string, host: string, port = 8080): Promise<Server & { seen: Buffer[] }> {
  const seen: Buffer[] = [];
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.on("error", () => {});
    s.write(`${name}|`);
    s.on("data", (d: Buffer) => {
      seen.push(d);
      s.write(d);
    });
    s.on("end", () => s.end("|bye"));
  });
  await new Promise<void>((r) => server.listen(port, host, r));
  return Object.assign(server, { seen });
}

export interface LogSink {
  lines: Record<string, unknown>[];
}

export interface Harness {
  ca: TestCa;
  source: StaticConfigSource;
  agents: { a: Agent; b: Agent };
  dp: { a: LoopbackDatapath; b: LoopbackDatapath };
  logs: LogSink;
  config: MeshConfig;
  stop(): Promise<void>;
}

export async function startHarness(
  opts: {
    lifetimeMs?: number;
    settings?: Record<string, unknown>;
    /** a tracer per agent (request spans); default none: tracing off */
    tracer?: (node: string) => MeshTracer;
    /** another mesh (its own addresses, e.g. the fuzzers'); default baseConfig() */
    config?: (trustBundle: string[]) => MeshConfig;
  } = {},
) {
  const ca = createTestCa();
  const config = opts.config ? opts.config([ca.certPem]) : baseConfig("1", [ca.certPem]);
  const source = new StaticConfigSource(config);
  const logs: LogSink = { lines: [] };
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split("\n")) if (line) logs.lines.push(JSON.parse(line));
      cb();
    },
  });
  const mk = (node: string, dp: LoopbackDatapath) =>
    createAgent({
      settings: parseAgentSettings({
        nodeName: node,
        adminPort: 0,
        metricsPort: 0,
        healthPort: 0,
        metricsHost: "127.0.0.1",
        drainMs: 200,
        connectTimeoutMs: 1000,
        ...opts.settings,
      }),
      datapath: dp,
      configSource: source,
      signer: ca.signer({ lifetimeMs: opts.lifetimeMs ?? 3600_000 }),
      log: pino({ level: "info" }, sink).child({ node }),
      ...(opts.tracer ? { tracer: opts.tracer(node) } : {}),
    });
  const dp = { a: new LoopbackDatapath(), b: new LoopbackDatapath() };
  const agents = { a: mk("node-a", dp.a), b: mk("node-b", dp.b) };
  await agents.a.start();
  await agents.b.start();
  await Promise.all([agents.a.whenReady(10_000), agents.b.whenReady(10_000)]);
  const h: Harness = {
    ca,
    source,
    agents,
    dp,
    logs,
    config,
    async stop() {
      await Promise.all([agents.a.stop(), agents.b.stop()]);
      await Promise.all([dp.a.close(), dp.b.close()]);
    },
  };
  return h;
}

/** One exchange through the mesh: connect to the capture port, send `payload`, half-close, read all. */
export async function exchange(
  h: Harness,
  payload: Buffer | string,
  dst = { address: VIP, port: 80 },
  from = "default/client",
): Promise<{ data: Buffer; error?: Error; ms: number }> {
  const addr = await h.dp.a.captureAddress(from, dst);
  const start = performance.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s: Socket = connect({ ...addr, allowHalfOpen: true });
    let error: Error | undefined;
    s.on("error", (e) => (error = e));
    s.on("data", (d: Buffer) => chunks.push(d));
    s.on("connect", () => s.end(payload));
    s.on("close", () => resolve({ data: Buffer.concat(chunks), error, ms: performance.now() - start }));
  });
}

export function backendOf(reply: Buffer): string {
  return reply.toString().split("|")[0] ?? "";
}

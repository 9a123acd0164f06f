// Two agents in this process on the loopback datapath for the end-to-end fuzzers: the integration
// harness (test/integration/agent/harness.ts) over a mesh of its own, on addresses of its own (127.0.5.x on node-a, 127.0.6.x on
// node-b), so a fuzz run and another engineer's integration run on the same machine never compete for
// the same address and port. One client pod, an HTTP app and a TCP echo app, both on node-b.
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server } from "node:net";
import type { MeshConfig } from "../../controller/api/index.ts";
import type { LoopbackDatapath } from "../../agent/datapath/loopback.ts";
import { HEADER, startHarness, workload } from "../integration/agent/harness.ts";
import type { TestCa } from "../helpers/test-ca.ts";

export const CLIENT = "127.0.5.1";
export const WEB = { vip: "10.96.5.1", pod: "127.0.6.1", port: 18061 };
export const ECHO = { vip: "10.96.5.2", pod: "127.0.6.2", port: 18062 };

export interface FuzzMesh {
  readonly ca: TestCa;
  readonly dp: { readonly a: LoopbackDatapath; readonly b: LoopbackDatapath };
  stop(): Promise<void>;
}

function service(name: string, vip: string, targetPort: number, appProtocol?: string) {
  return {
    ...HEADER,
    kind: "Service" as const,
    metadata: { name, namespace: "default" },
    spec: {
      addresses: [vip],
      ports: [{ port: 80, targetPort, protocol: "TCP" as const, ...(appProtocol && { appProtocol }) }],
      selector: { app: name },
    },
  };
}

function config(trustBundle: string[]): MeshConfig {
  return {
    version: "1",
    trustDomain: "cluster.local",
    rootNamespace: "nodemesh-system",
    trustBundle,
    services: [service("web", WEB.vip, WEB.port, "http"), service("echo", ECHO.vip, ECHO.port)],
    workloads: [
      workload("client", "node-a", CLIENT, { app: "client" }),
      workload("web", "node-b", WEB.pod, { app: "web" }),
      workload("echo", "node-b", ECHO.pod, { app: "echo" }),
    ],
    authorizationPolicies: [],
    peerAuthentications: [],
    trafficPolicies: [],
    httpRoutes: [],
    grpcRoutes: [],
    faultInjections: [],
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
}

/** The apps (an HTTP app answering "ok", a TCP echo) and both agents, ready. */
export async function startFuzzMesh(): Promise<FuzzMesh> {
  const web = createHttpServer((req, res) => {
    req.resume();
    req.on("end", () => res.end("ok"));
  });
  const echo = createServer((s) => {
    s.on("error", () => {});
    s.pipe(s);
  });
  await listen(web, WEB.port, WEB.pod);
  await listen(echo, ECHO.port, ECHO.pod);
  const h = await startHarness({ config });
  return {
    ca: h.ca,
    dp: h.dp,
    async stop() {
      await h.stop();
      web.close();
      echo.close();
    },
  };
}

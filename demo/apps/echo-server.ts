// Sample backend for the demo and the end-to-end tests: plain servers with no mesh code. Every
// answer says which pod served it and what arrived, so a caller can see where it was routed and
// that the request arrived unchanged.
//   PORT (8080)             HTTP/1.1 and h2c on one port: JSON report, ?delay= ?status= ?fail= ?bytes=
//                           ?echo=, and a WebSocket echo on /ws (see lib/http-handler.ts, lib/websocket.ts)
//   GRPC_PORT (9090|off)    gRPC nodemesh.echo.v1.Echo (proto/echo.proto)
//   TCP_BANNER_PORT (off)   server-first line protocol: "220 <pod> ready" on connect, then line echo
//   POD_NAME (unknown)      the name every answer carries, also in the x-served-by header
//   FAIL_PERCENT (0)        answer 503 to this share of requests that do not set ?fail= (a bad canary)
// Port 0 picks a free port. Once everything listens it prints one line,
// {"listening":<http port>,"pod":<name>,"grpc":<port|null>,"banner":<port|null>}; SIGTERM drains.
import type { Server as GrpcServer } from "@grpc/grpc-js";
import type { Server as TcpServer } from "node:net";
import { startBanner } from "./lib/banner.ts";
import { DualServer } from "./lib/dual-server.ts";
import { startGrpcEcho } from "./lib/grpc-echo.ts";
import { parsePercent } from "./lib/behaviour.ts";
import { createHandler } from "./lib/http-handler.ts";
import { createWebSocketEcho } from "./lib/websocket.ts";

const HOST = "0.0.0.0";
// In-flight requests get this long to finish after SIGTERM; the lab stops pods with a 10 s budget.
const SHUTDOWN_GRACE_MS = 5_000;

/** A port from the environment: `fallback` when unset, null for "off", else 0..65535. */
function portFromEnv(name: string, raw: string | undefined, fallback: number | null): number | null {
  if (raw === undefined || raw === "") return fallback;
  if (raw === "off") return null;
  const port = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new Error(`${name} must be a TCP port 0..65535 or "off", got ${JSON.stringify(raw)}`);
  }
  return port;
}

interface Config {
  pod: string;
  http: number;
  grpc: number | null;
  banner: number | null;
  /** FAIL_PERCENT: share (0..100) of requests answered 503 unless the request sets ?fail= itself. */
  failPercent: number;
}

function readConfig(env: NodeJS.ProcessEnv): Config {
  const http = portFromEnv("PORT", env.PORT, 8080);
  if (http === null) throw new Error('PORT cannot be "off": the HTTP server is the backend itself');
  return {
    pod: env.POD_NAME || "unknown",
    http,
    grpc: portFromEnv("GRPC_PORT", env.GRPC_PORT, 9090),
    banner: portFromEnv("TCP_BANNER_PORT", env.TCP_BANNER_PORT, null),
    failPercent: env.FAIL_PERCENT ? parsePercent("FAIL_PERCENT", env.FAIL_PERCENT) : 0,
  };
}

async function stopGrpc(server: GrpcServer | undefined): Promise<void> {
  if (server === undefined) return;
  const force = setTimeout(() => server.forceShutdown(), SHUTDOWN_GRACE_MS);
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  clearTimeout(force);
}

async function main(): Promise<void> {
  const config = readConfig(process.env);
  const web = new DualServer(createHandler(config.pod, config.failPercent), createWebSocketEcho(config.pod));
  const httpPort = await web.listen(config.http, HOST).catch((err: Error) => {
    throw new Error(`PORT ${config.http}: cannot listen: ${err.message}`);
  });
  const grpc = config.grpc === null ? undefined : await startGrpcEcho(config.pod, HOST, config.grpc);
  const banner = config.banner === null ? undefined : await startBanner(config.pod, HOST, config.banner);
  const ready = {
    listening: httpPort,
    pod: config.pod,
    grpc: grpc?.port ?? null,
    banner: banner?.port ?? null,
  };
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const bannerServer: TcpServer | undefined = banner?.server;
    bannerServer?.close();
    await Promise.all([web.shutdown(SHUTDOWN_GRACE_MS), stopGrpc(grpc?.server)]);
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
  // Only now: stdout to a pipe is written synchronously, so a parent may signal the moment it reads
  // this line, and a SIGTERM before the handlers exist would kill the process instead of draining it.
  process.stdout.write(`${JSON.stringify(ready)}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`echo-server: ${err.message}\n`);
  process.exit(2);
});

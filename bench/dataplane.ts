// The data-plane benchmark (issues 4 and 7): 1 KiB HTTP/1.1 requests from pod n1p1 to a server in
// pod n2p1 of a 2-node lab, over five paths on the same cores:
//   (a) direct        pod -> pod, no proxy                                baseline for latency
//   L4 (opaque TCP; keep-alive and a new connection per request):
//   (b) mesh          pod -> agent node1 -> mTLS HBONE -> agent node2 -> pod, port declared `tcp`
//   (c) haproxy       pod -> HAProxy node1 -> mTLS -> HAProxy node2 -> pod, TCP mode
//   L7 (HTTP/1.1 keep-alive):
//   (b) mesh-http     the same agents, port declared `appProtocol: http` with one HTTPRoute
//   (c) haproxy-http  the same HAProxies in HTTP mode, HTTP/2 between them
//   (d) node-relay    two bare Node processes (node:http -> node:http2 over mTLS -> node:http): the floor
//                     of an L7 proxy on Node's own stacks (bench/node-relay.ts)
//   and for L4, node-relay-tcp: the same processes carrying each TCP connection in an HTTP/2 CONNECT
//                     stream (HBONE's shape), the floor of the L4 mesh on Node's stacks
// The mesh runs last: once it is up, its redirection captures the client's connections. Both mesh
// paths share one mesh (bench/mesh-path.ts). If it fails to start, the mesh rows are reported as
// "not available (<reason>)" and the rest runs.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Lab } from "../lab/index.ts";
import { startHaproxy, type HaproxyPath } from "./haproxy.ts";
import { startNodeRelay } from "./node-relay-path.ts";
import { emptyResult, Measurer } from "./measure.ts";
import type { Durations, PathResult, PathUnderTest } from "./measure.ts";
import { MESH_PATHS, startBenchMesh } from "./mesh-path.ts";
import type { MeshPathName } from "./mesh-path.ts";

export interface DataplaneOptions {
  quick?: boolean;
  /** lab name (1-6 of [a-z0-9]) */
  labName?: string;
  log?: (line: string) => void;
  /** which paths to run (default all), e.g. ["mesh-http"] while working on the agent */
  paths?: readonly PathName[];
}

export const PATH_NAMES = [
  "direct",
  "haproxy",
  "haproxy-http",
  "node-relay",
  "node-relay-tcp",
  "mesh",
  "mesh-http",
  "mesh-http-layers",
] as const;
export type PathName = (typeof PATH_NAMES)[number];

export const DEFAULT_DURATIONS: Durations = { warmup: 1, duration: 5, maxDuration: 5, connections: 1000 };
export const QUICK_DURATIONS: Durations = { warmup: 0.5, duration: 2, maxDuration: 2, connections: 1000 };

const SERVER = fileURLToPath(new URL("./bench-server.ts", import.meta.url));
const SERVER_PORT = 8080;

/** Runs the chosen paths and returns one result per path (mesh paths possibly unavailable). */
export async function runDataplane(opts: DataplaneOptions = {}): Promise<PathResult[]> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const durations = opts.quick ? QUICK_DURATIONS : DEFAULT_DURATIONS;
  const lab = await Lab.up({ name: opts.labName ?? "bdp", nodes: 2, podsPerNode: 2 });
  const tmp = await mkdtemp(join(tmpdir(), "nodemesh-bench-"));
  try {
    await tuneLab(lab);
    const serverPod = lab.pod(2, 1);
    const server = lab.spawn(serverPod, [process.execPath, "--disable-warning=ExperimentalWarning", SERVER], {
      env: { ...process.env, PORT: String(SERVER_PORT) },
    });
    await server.waitForOutput("listening", 10_000);
    const serverAddr = `${serverPod.address}:${SERVER_PORT}`;
    const m = new Measurer(lab, lab.pod(1, 1), durations, tmp, log);
    const results: PathResult[] = [];
    const wanted = (p: PathName) => !opts.paths || opts.paths.includes(p);

    if (wanted("direct")) {
      const direct: PathUnderTest = { name: "direct", target: serverAddr, proxies: [] };
      await m.waitReady(direct);
      results.push(await m.measure(direct));
    }
    // The peer paths, each a pair of processes in the HAProxies' places; the HTTP ones run keep-alive only.
    const peers: { name: PathName; http: boolean; start: () => Promise<HaproxyPath> }[] = [
      { name: "haproxy", http: false, start: () => startHaproxy(lab, serverAddr, "tcp") },
      { name: "haproxy-http", http: true, start: () => startHaproxy(lab, serverAddr, "http") },
      { name: "node-relay-tcp", http: false, start: () => startNodeRelay(lab, serverAddr, "tcp") },
      { name: "node-relay", http: true, start: () => startNodeRelay(lab, serverAddr, "http") },
    ];
    for (const { name, start, http } of peers) {
      if (!wanted(name)) continue;
      const hap = await start();
      try {
        const path: PathUnderTest = {
          name,
          target: hap.target,
          proxies: hap.proxies,
          ...(http ? { conns: ["keepalive"] as const } : {}),
        };
        await m.waitReady(path);
        results.push(await m.measure(path));
      } finally {
        await hap.stop();
      }
    }
    const meshPaths = MESH_PATHS.filter(wanted);
    if (meshPaths.length) results.push(...(await measureMesh(lab, m, meshPaths, log)));
    return results;
  } finally {
    await lab.down().catch((err: Error) => log(`lab teardown: ${err.message}`));
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Measures the mesh paths on one mesh; on any failure the rest are reported unavailable. */
async function measureMesh(
  lab: Lab,
  m: Measurer,
  names: readonly MeshPathName[],
  log: (l: string) => void,
): Promise<PathResult[]> {
  const out: PathResult[] = [];
  const unavailable = (name: string, reason: string): PathResult => {
    log(`${name}: not available (${reason})`);
    return { ...emptyResult(name), reason };
  };
  let mesh: Awaited<ReturnType<typeof startBenchMesh>> | undefined;
  try {
    mesh = await startBenchMesh(lab, SERVER_PORT);
    for (const name of names) {
      const path = mesh.paths[name];
      try {
        await m.waitReady(path);
        out.push(await m.measure(path));
      } catch (err) {
        const trouble = mesh.diagnose();
        out.push(unavailable(name, `${(err as Error).message}${trouble ? `; ${trouble}` : ""}`));
      }
    }
    await pairedRounds(m, mesh.paths, out);
  } catch (err) {
    for (const name of names)
      if (!out.some((r) => r.name === name)) out.push(unavailable(name, (err as Error).message));
  } finally {
    await mesh?.stop().catch((err: Error) => log(`mesh stop: ${err.message}`));
  }
  return out;
}

/** Rounds per path of the layer-cost comparison (bench/report.ts takes the median of the paired ratios). */
export const PAIRED_ROUNDS = 5;
/** The fixed rate of those rounds: below the L7 paths' saturation on 2 cores, so p50 is the path, not a queue. */
export const PAIRED_RATE = 500;

/**
 * Issue 8's layer cost is a 10 % bound, finer than the drift between two paths measured minutes apart
 * on a shared machine: the bare and the layered route are measured again in alternating rounds
 * (bare first in even rounds, layered first in odd ones), so drift falls on both alike.
 */
async function pairedRounds(
  m: Measurer,
  paths: Record<MeshPathName, PathUnderTest>,
  out: PathResult[],
): Promise<void> {
  const bare = out.find((r) => r.name === "mesh-http" && r.available);
  const layers = out.find((r) => r.name === "mesh-http-layers" && r.available);
  if (!bare || !layers) return;
  bare.rounds = [];
  layers.rounds = [];
  for (let i = 0; i < PAIRED_ROUNDS; i++) {
    const order = i % 2 === 0 ? [bare, layers] : [layers, bare];
    for (const r of order) r.rounds!.push(await m.round(paths[r.name as MeshPathName], PAIRED_RATE));
  }
}

/**
 * Per-namespace TCP settings for the new-connection runs: a wide ephemeral port range and
 * TIME_WAIT reuse, so thousands of short connections per second do not run out of ports.
 * Only lab namespaces are touched.
 */
async function tuneLab(lab: Lab): Promise<void> {
  const hosts = [...lab.nodes, ...lab.pods];
  await Promise.all(
    hosts.map((h) =>
      lab.exec(
        h,
        [
          "sysctl",
          "-q",
          "-w",
          "net.ipv4.tcp_tw_reuse=1",
          "net.ipv4.ip_local_port_range=1024 65000",
          // The wide range would let the client's ports of the paths measured before the mesh sit on the
          // agent's in-pod listener ports, and its bind then fails (EADDRINUSE) when the mesh starts.
          "net.ipv4.ip_local_reserved_ports=15000-15021",
        ],
        { check: true },
      ),
    ),
  );
}

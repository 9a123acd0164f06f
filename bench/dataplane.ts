// The data-plane benchmark (issue 4): 1 KiB HTTP/1.1 requests from pod n1p1 to a server in pod
// n2p1 of a 2-node lab, over three paths on the same cores:
//   (a) direct   pod -> pod, no proxy                                   baseline for latency
//   (b) mesh     pod -> agent node1 -> mTLS HBONE -> agent node2 -> pod  demo/mesh.ts startMesh(),
//                called by the service VIP (unroutable without the mesh, so a reply proves capture)
//   (c) haproxy  pod -> HAProxy node1 -> mTLS -> HAProxy node2 -> pod   peer proxy, TCP mode
// The mesh runs last: once it is up, its redirection captures the client's connections. If
// demo/mesh.ts is missing or fails, (b) is reported as "not available (<reason>)" and the rest runs.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Lab } from "../lab/index.ts";
import { startHaproxy } from "./haproxy.ts";
import { emptyResult, Measurer } from "./measure.ts";
import type { Durations, PathResult, PathUnderTest } from "./measure.ts";

export interface DataplaneOptions {
  quick?: boolean;
  /** lab name (1-6 of [a-z0-9]) */
  labName?: string;
  log?: (line: string) => void;
  /** which paths to run (default all three), e.g. ["mesh"] while working on the agent */
  paths?: readonly PathName[];
}

export const PATH_NAMES = ["direct", "haproxy", "mesh"] as const;
export type PathName = (typeof PATH_NAMES)[number];

export const DEFAULT_DURATIONS: Durations = { warmup: 1, duration: 5, maxDuration: 5, connections: 1000 };
export const QUICK_DURATIONS: Durations = { warmup: 0.5, duration: 2, maxDuration: 2, connections: 1000 };

const SERVER = fileURLToPath(new URL("./bench-server.ts", import.meta.url));
const MESH_MODULE = new URL("../demo/mesh.ts", import.meta.url);
const MESH_CONFIG_MODULE = new URL("../demo/mesh-config.ts", import.meta.url);
/** The bench service's VIP: unroutable in the lab, so a reply proves the mesh carried the request. */
const MESH_VIP = "10.96.0.80";
const SERVER_PORT = 8080;
const MESH_START_TIMEOUT_MS = 60_000;

// demo/mesh.ts and demo/mesh-config.ts belong to the lead and are loaded at run time, so the bench
// still runs (without the mesh) when they are missing or broken. Only what the bench uses is typed.
interface MeshAgent {
  node: string | { name: string };
  pid?: number;
  process?: { pid: number };
}
interface MeshHandle {
  agents: MeshAgent[];
  stop(): Promise<void>;
}
interface MeshModule {
  startMesh(opts: { lab: Lab; yaml: string; log?: (line: string) => void }): Promise<MeshHandle>;
}
interface MeshConfigModule {
  meshConfigForLab(lab: Lab, spec: { pods: Record<string, { app: string }>; services: object[] }): string;
}

/** Runs the three paths and returns one result per path (mesh possibly unavailable). */
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
    if (wanted("haproxy")) {
      const hap = await startHaproxy(lab, serverAddr);
      try {
        const path: PathUnderTest = { name: "haproxy", target: hap.target, proxies: hap.proxies };
        await m.waitReady(path);
        results.push(await m.measure(path));
      } finally {
        await hap.stop();
      }
    }
    if (wanted("mesh")) results.push(await measureMesh(lab, m, serverAddr, log));
    return results;
  } finally {
    await lab.down().catch((err: Error) => log(`lab teardown: ${err.message}`));
    await rm(tmp, { recursive: true, force: true });
  }
}

async function measureMesh(
  lab: Lab,
  m: Measurer,
  serverAddr: string,
  log: (l: string) => void,
): Promise<PathResult> {
  const unavailable = (reason: string): PathResult => {
    log(`mesh: not available (${reason})`);
    return { ...emptyResult("mesh"), reason };
  };
  for (const f of [MESH_MODULE, MESH_CONFIG_MODULE]) {
    if (!existsSync(fileURLToPath(f))) return unavailable(`demo/${f.pathname.split("/").pop()} is missing`);
  }
  let mod: Partial<MeshModule & MeshConfigModule>;
  try {
    mod = {
      ...((await import(MESH_CONFIG_MODULE.href)) as Partial<MeshConfigModule>),
      ...((await import(MESH_MODULE.href)) as Partial<MeshModule>),
    };
  } catch (err) {
    return unavailable(`demo/mesh.ts does not load: ${(err as Error).message}`);
  }
  if (typeof mod.startMesh !== "function" || typeof mod.meshConfigForLab !== "function") {
    return unavailable("demo/mesh.ts does not export startMesh() or demo/mesh-config.ts meshConfigForLab()");
  }
  const meshLog: string[] = [];
  let mesh: MeshHandle | undefined;
  try {
    const port = Number(serverAddr.split(":")[1]);
    const yaml = mod.meshConfigForLab(lab, {
      pods: { n1p1: { app: "bench-client" }, n2p1: { app: "bench-server" } },
      services: [{ name: "bench-server", vip: MESH_VIP, port, targetPort: port, app: "bench-server" }],
    });
    mesh = await withTimeout(
      mod.startMesh({
        lab,
        yaml,
        log: (l) => {
          meshLog.push(l);
          if (meshLog.length > 20) meshLog.shift();
        },
      }),
      MESH_START_TIMEOUT_MS,
      "startMesh()",
    );
    const path: PathUnderTest = {
      name: "mesh",
      target: `${MESH_VIP}:${port}`,
      proxies: mesh.agents.map((a) => ({
        node: typeof a.node === "string" ? a.node : a.node.name,
        pid: a.pid ?? a.process?.pid ?? 0,
      })),
    };
    await m.waitReady(path);
    return await m.measure(path);
  } catch (err) {
    const tail = meshLog.length ? `; last mesh log: ${meshLog.slice(-3).join(" | ")}` : "";
    return unavailable(`${(err as Error).message}${tail}`);
  } finally {
    await mesh?.stop().catch((err: Error) => log(`mesh stop: ${err.message}`));
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
        ["sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1", "net.ipv4.ip_local_port_range=1024 65000"],
        {
          check: true,
        },
      ),
    ),
  );
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

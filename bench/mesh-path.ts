// The mesh paths of the data-plane benchmark: one mesh (demo/mesh.ts startMesh()) carrying two
// services over the same server pod, so the L4 and L7 rows come from the same agents in one start:
//   mesh       VIP 10.96.0.80, port declared `tcp`: opaque TCP, one HBONE CONNECT per connection
//   mesh-http  VIP 10.96.0.81, `appProtocol: http` and one HTTPRoute: per-request routing, one
//              HTTP/2 stream per request on the pooled mTLS session
//   mesh-http-layers  VIP 10.96.0.82, the same route plus a TrafficPolicy (timeout, retries, circuit
//              breaker) and a RateLimitPolicy whose bucket never empties: issue 8's layer cost
// VIPs have no route in the lab, so every reply proves the mesh carried the request.
// demo/mesh.ts and demo/mesh-config.ts belong to the lead and are loaded at run time, so the bench
// still runs (without the mesh) when they are missing or broken; only what the bench uses is typed.
import { existsSync } from "node:fs";
import { isAbsolute } from "node:path";
import { fileURLToPath } from "node:url";
import type { Lab } from "../lab/index.ts";
import { warmCompileCache } from "./compile-cache.ts";
import type { PathUnderTest } from "./measure.ts";

export const MESH_PATHS = ["mesh", "mesh-http", "mesh-http-layers"] as const;
export type MeshPathName = (typeof MESH_PATHS)[number];

export const MESH_VIP = "10.96.0.80";
export const MESH_HTTP_VIP = "10.96.0.81";
export const MESH_LAYERS_VIP = "10.96.0.82";
export const BENCH_ROUTE = "bench-web";
export const BENCH_LAYERS = "bench-web-layers";
/** Set to a directory to run the agents under `node --cpu-prof` (profiles are written when they stop). */
export const CPU_PROF_ENV = "NODEMESH_BENCH_CPU_PROF";

const MESH_MODULE = new URL("../demo/mesh.ts", import.meta.url);
const MESH_CONFIG_MODULE = new URL("../demo/mesh-config.ts", import.meta.url);
// startMesh() gives each of its steps (controller, each agent) 60 s and cleans up after itself when
// one fails, with the process's output in the error; this outer bound only catches a hang.
const MESH_START_TIMEOUT_MS = 240_000;
const LATE_STOP_MS = 30_000;

interface MeshAgent {
  node: string | { name: string };
  pid?: number;
  process?: { pid: number; output?: string };
}
interface MeshHandle {
  agents: MeshAgent[];
  stop(): Promise<void>;
}
export interface BenchMeshSpec {
  pods: Record<string, { app: string }>;
  services: {
    name: string;
    vip: string;
    port: number;
    targetPort: number;
    app: string;
    appProtocol?: string;
  }[];
  extra: object[];
}
interface MeshModules {
  startMesh(opts: {
    lab: Lab;
    yaml: string;
    agentEnv?: Record<string, string>;
    log?: (line: string) => void;
  }): Promise<MeshHandle>;
  meshConfigForLab(lab: Lab, spec: BenchMeshSpec): string;
}

export interface BenchMesh {
  paths: Record<MeshPathName, PathUnderTest>;
  /** every agent of the mesh (the ingress bench counts the gateway's and the destination's) */
  proxies: { node: string; pid: number }[];
  /** The agents' last warnings and errors, for a path that does not answer. */
  diagnose(): string;
  stop(): Promise<void>;
}

/** The bench's mesh: client n1p1, server n2p1, the TCP and the HTTP service, one HTTPRoute. */
export function benchMeshSpec(port: number): BenchMeshSpec {
  const svc = { port, targetPort: port, app: "bench-server" };
  return {
    pods: { n1p1: { app: "bench-client" }, n2p1: { app: "bench-server" } },
    services: [
      { name: "bench-server", vip: MESH_VIP, ...svc },
      { name: BENCH_ROUTE, vip: MESH_HTTP_VIP, appProtocol: "http", ...svc },
      { name: BENCH_LAYERS, vip: MESH_LAYERS_VIP, appProtocol: "http", ...svc },
    ],
    // A catch-all prefix rule back to the Service itself: every request goes through the route
    // table's match and the weighted backend pick, the work any routed service pays.
    extra: [benchRoute(BENCH_ROUTE, port), benchRoute(BENCH_LAYERS, port), ...layerPolicies(BENCH_LAYERS)],
  };
}

function benchRoute(service: string, port: number): object {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    metadata: { name: service, namespace: "default" },
    spec: {
      parentRefs: [{ group: "", kind: "Service", name: service, port }],
      rules: [
        {
          name: "all",
          matches: [{ path: { type: "PathPrefix", value: "/" } }],
          backendRefs: [{ name: service, port }],
        },
      ],
    },
  };
}

/** Every issue-8 layer on `service`, sized so that none fires under the bench's load. */
function layerPolicies(service: string): object[] {
  const targetRefs = [{ group: "", kind: "Service", name: service }];
  const meta = { name: service, namespace: "default" };
  return [
    {
      apiVersion: "nodemesh.io/v1alpha1",
      kind: "TrafficPolicy",
      metadata: meta,
      spec: {
        targetRefs,
        timeout: "10s",
        retries: { attempts: 2, codes: [502, 503], perTryTimeout: "5s" },
        circuitBreaker: { consecutiveFailures: 5, openTime: "30s" },
      },
    },
    {
      apiVersion: "nodemesh.io/v1alpha1",
      kind: "RateLimitPolicy",
      metadata: meta,
      spec: {
        targetRefs,
        tokenBucket: { maxTokens: 1_000_000, tokensPerFill: 1_000_000, fillInterval: "1s" },
      },
    },
  ];
}

/** The agents' extra environment: `--cpu-prof` into `$NODEMESH_BENCH_CPU_PROF` when it is set. */
export function agentEnvFor(env: NodeJS.ProcessEnv): Record<string, string> {
  const dir = env[CPU_PROF_ENV];
  if (dir === undefined || dir === "") return {};
  if (!isAbsolute(dir) || /\s/.test(dir)) {
    throw new Error(`${CPU_PROF_ENV}: expected an absolute directory without spaces, got "${dir}"`);
  }
  const prior = env["NODE_OPTIONS"] ? `${env["NODE_OPTIONS"]} ` : "";
  return { NODE_OPTIONS: `${prior}--cpu-prof --cpu-prof-dir=${dir}` };
}

async function loadModules(): Promise<MeshModules> {
  for (const f of [MESH_MODULE, MESH_CONFIG_MODULE]) {
    if (!existsSync(fileURLToPath(f))) throw new Error(`demo/${f.pathname.split("/").pop()} is missing`);
  }
  let mod: Partial<MeshModules>;
  try {
    mod = {
      ...((await import(MESH_CONFIG_MODULE.href)) as Partial<MeshModules>),
      ...((await import(MESH_MODULE.href)) as Partial<MeshModules>),
    };
  } catch (err) {
    throw new Error(`demo/mesh.ts does not load: ${(err as Error).message}`, { cause: err });
  }
  if (typeof mod.startMesh !== "function" || typeof mod.meshConfigForLab !== "function") {
    throw new Error("demo/mesh.ts does not export startMesh() or demo/mesh-config.ts meshConfigForLab()");
  }
  return mod as MeshModules;
}

/**
 * Starts the bench mesh (`spec`: another layout, as the ingress bench's); an error names what failed,
 * with the tail of the mesh's log.
 */
export async function startBenchMesh(
  lab: Lab,
  port: number,
  spec: BenchMeshSpec = benchMeshSpec(port),
): Promise<BenchMesh> {
  const mod = await loadModules();
  warmCompileCache(["controller", "agent"]);
  const meshLog: string[] = [];
  const starting = mod.startMesh({
    lab,
    yaml: mod.meshConfigForLab(lab, spec),
    agentEnv: agentEnvFor(process.env),
    log: (l) => {
      meshLog.push(l);
      if (meshLog.length > 20) meshLog.shift();
    },
  });
  let mesh: MeshHandle;
  try {
    mesh = await withTimeout(starting, MESH_START_TIMEOUT_MS, "startMesh()");
  } catch (err) {
    // A start that finishes after the timeout must not leave agents and pins behind: stop it
    // before the caller takes the lab down.
    const lateStop = starting.then(
      (late) => late.stop(),
      () => undefined,
    );
    await withTimeout(lateStop, LATE_STOP_MS, "stopping the late mesh").catch(() => undefined);
    const tail = meshLog.length ? `; last mesh log: ${meshLog.slice(-3).join(" | ")}` : "";
    throw new Error(`${(err as Error).message}${tail}`, { cause: err });
  }
  const proxies = mesh.agents.map((a) => ({
    node: typeof a.node === "string" ? a.node : a.node.name,
    pid: a.pid ?? a.process?.pid ?? 0,
  }));
  const handle = mesh;
  return {
    proxies,
    paths: {
      mesh: { name: "mesh", target: `${MESH_VIP}:${port}`, proxies },
      "mesh-http": { name: "mesh-http", target: `${MESH_HTTP_VIP}:${port}`, proxies, conns: ["keepalive"] },
      "mesh-http-layers": {
        name: "mesh-http-layers",
        target: `${MESH_LAYERS_VIP}:${port}`,
        proxies,
        conns: ["keepalive"],
      },
    },
    diagnose: () => agentTrouble(handle.agents),
    stop: () => handle.stop(),
  };
}

/** The last few warn/error lines (pino levels 40+) of each agent's output. */
export function agentTrouble(agents: readonly MeshAgent[]): string {
  const parts: string[] = [];
  for (const a of agents) {
    const lines = (a.process?.output ?? "").split("\n").filter((l) => /"level":(4|5|6)\d/.test(l));
    if (lines.length > 0) parts.push(`agent ${agentNode(a)}: ${lines.slice(-3).join(" | ")}`);
  }
  return parts.join("; ");
}

function agentNode(a: MeshAgent): string {
  return typeof a.node === "string" ? a.node : a.node.name;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

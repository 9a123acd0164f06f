// A whole mesh on a lab for end-to-end tests: 2 nodes x 2 pods, the controller, one agent per node
// (real processes, real eBPF, real mTLS), echo servers in the backend pods. Tests drive it with real
// clients (curl in a pod) and read what a user reads: responses, access logs, metrics, config dumps.
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Lab, type LabProcess } from "../../lab/index.ts";
import { DEMO_MESH, DEMO_VIP, meshConfigForLab, type LabMeshSpec } from "../../demo/mesh-config.ts";
import { startMesh, type Mesh, type MeshOptions } from "../../demo/mesh.ts";
import { requireRoot } from "./privileges.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const APPS = join(ROOT, "demo/apps");
/** client (n1p1, sa client), legacy (n2p1, sa legacy), echo backends on n1p2 (same node) and n2p2. */
export const STANDARD_MESH: LabMeshSpec = DEMO_MESH;
export const VIP = DEMO_VIP;

/** One report of demo/apps/load-client.ts (per REPORT_MS window). */
export interface LoadWindow {
  ok: number;
  failed: number;
  byBackend: Record<string, number>;
  statuses: Record<string, number>;
  errors: Record<string, number>;
  p50ms: number;
  p99ms: number;
}

export interface LoadClient {
  /** Every window reported so far, in order. */
  readonly windows: LoadWindow[];
  stop(): Promise<void>;
}

export interface MeshFixture {
  readonly lab: Lab;
  readonly mesh: Mesh;
  readonly spec: LabMeshSpec;
  readonly echo: Map<string, LabProcess>;
  startEcho(pod: string): Promise<LabProcess>;
  /** The sample load client in a pod: RATE requests/s to the VIP, one new connection each. */
  startLoad(pod: string, opts: { rate: number; reportMs: number }): LoadClient;
  /** curl inside a pod; returns the exit code, body and stderr. */
  curl(pod: string, url: string, args?: string[]): Promise<{ code: number; body: string; stderr: string }>;
  /** Rewrites the mesh YAML with extra documents (policies); the controller pushes the change. */
  applyExtra(extra: object[]): void;
  /** Every JSON line an agent printed so far. */
  agentLog(node: string): Record<string, unknown>[];
  close(): Promise<void>;
}

export async function meshFixture(
  name: string,
  opts: {
    spec?: LabMeshSpec;
    mesh?: Partial<Omit<MeshOptions, "lab" | "yaml">>;
    /** Adds the lab's `outside` host (in no mesh: external clients, the internet). */
    outside?: boolean;
  } = {},
): Promise<MeshFixture> {
  requireRoot("the mesh end-to-end tests");
  const spec = opts.spec ?? STANDARD_MESH;
  const lab = await Lab.up({ name, nodes: 2, podsPerNode: 2, ...(opts.outside ? { outside: true } : {}) });
  let mesh: Mesh | undefined;
  const echo = new Map<string, LabProcess>();
  try {
    mesh = await startMesh({ lab, yaml: meshConfigForLab(lab, spec), ...opts.mesh });
    const m = mesh;
    const fx: MeshFixture = {
      lab,
      mesh: m,
      spec,
      echo,
      async startEcho(pod) {
        const p = lab.spawn(pod, [process.execPath, join(APPS, "echo-server.ts")], {
          env: { ...process.env, POD_NAME: pod, GRPC_PORT: "9090", TCP_BANNER_PORT: "2525" },
        });
        await p.waitForOutput("listening");
        echo.set(pod, p);
        return p;
      },
      startLoad(pod, opts) {
        const p = lab.spawn(pod, [process.execPath, join(APPS, "load-client.ts")], {
          env: {
            ...process.env,
            TARGET_URL: `http://${VIP}/`,
            RATE: String(opts.rate),
            REPORT_MS: String(opts.reportMs),
          },
        });
        const windows: LoadWindow[] = [];
        createInterface({ input: p.stdout }).on("line", (l) => windows.push(JSON.parse(l) as LoadWindow));
        return {
          windows,
          async stop() {
            p.kill("SIGTERM");
            await p.exited;
          },
        };
      },
      async curl(pod, url, args = []) {
        const r = await lab.exec(pod, ["curl", "-sS", "--max-time", "5", ...args, url]);
        return { code: r.code ?? -1, body: r.stdout, stderr: r.stderr };
      },
      applyExtra(extra) {
        m.writeConfig(meshConfigForLab(lab, { ...spec, extra }));
      },
      agentLog(node) {
        return m
          .agent(node)
          .process.output.split("\n")
          .filter((l) => l.startsWith("{"))
          .map((l) => {
            try {
              return JSON.parse(l) as Record<string, unknown>;
            } catch {
              return {};
            }
          });
      },
      async close() {
        await m.stop();
        await lab.down();
      },
    };
    for (const [pod, role] of Object.entries(spec.pods)) if (role.app === "echo") await fx.startEcho(pod);
    return fx;
  } catch (err) {
    await mesh?.stop().catch(() => undefined);
    await lab.down();
    throw err;
  }
}

/** Polls `check` until it returns true (or throws with `what`). */
export async function eventually(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

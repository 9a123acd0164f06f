// Brings a whole mesh up on a lab: the controller in the lab's root namespace (the "controller host"),
// one agent per lab node (in the node's namespace, with its own bpffs pin directory), all as real
// processes started the way an operator would. Used by the demo, the end-to-end tests and the bench.
//
// Invariants: stop() always leaves no process and no pinned BPF object behind, also when start failed
// halfway (each started piece registers its own cleanup before the next starts).
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { Lab, LabNode, LabProcess } from "../lab/index.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CLI = join(ROOT, "bin/nodemesh.js");
const NODE = [process.execPath, "--disable-warning=ExperimentalWarning"];
export const CONTROLLER_PORT = 15012;
/**
 * Node flags of the agent process (the chart sets the same through NODE_OPTIONS). A 4 MiB young
 * generation: the agent's allocations are short-lived buffers and stream wrappers, and V8's default
 * (up to 16 MiB per semi-space) only grows RSS. 1 MiB, used before, made scavenges so frequent that the
 * HTTP path lost a quarter of its throughput per core (bench, 2026-12-02, mesh-http max rps per proxy
 * core: 1074 and 1017 at 1 MiB, 1306 and 1660 at 4 MiB; L4 CPU per request unchanged; RSS +5 MiB idle,
 * +10 MiB after load; docs/benchmarks.md "Young generation"). The compile cache is turned on by the
 * launcher, bin/nodemesh.js.
 */
export const AGENT_NODE_FLAGS = ["--max-semi-space-size=4"];
/**
 * Node flags of the controller: a 4 MiB young generation keeps its RSS under the 200 MiB budget with
 * 10,000 workloads and 100 agents (bench/controller.ts measures it with the same flag); the default lets
 * short-lived snapshot buffers push it to ~340 MiB at peak.
 */
export const CONTROLLER_NODE_FLAGS = ["--max-semi-space-size=4"];

export interface MeshOptions {
  readonly lab: Lab;
  /** Multi-document YAML of Services, WorkloadEntries and policies. */
  readonly yaml: string;
  /** Workload certificate lifetime, e.g. "20s" (default 24h). */
  readonly svidTtl?: string;
  /** Extra environment for the agents (NODEMESH_* settings). */
  readonly agentEnv?: Record<string, string>;
  readonly log?: (line: string) => void;
}

export interface RunningAgent {
  readonly node: LabNode;
  readonly pinDir: string;
  process: LabProcess;
}

export interface Mesh {
  readonly lab: Lab;
  readonly dir: string;
  readonly configFile: string;
  readonly caFile: string;
  controller: LabProcess;
  readonly agents: RunningAgent[];
  agent(node: string): RunningAgent;
  /** Rewrites the mesh YAML (the controller watches it). */
  writeConfig(yaml: string): void;
  startController(): Promise<LabProcess>;
  /** Stops an agent, then starts a new one (what a crash or a plain restart looks like). */
  restartAgent(node: string): Promise<RunningAgent>;
  /** SIGKILLs an agent (a crash), and starts the next one `downMs` after it died. */
  crashAgent(node: string, downMs: number): Promise<RunningAgent>;
  /**
   * Hand-over: starts the new agent while the old one still serves (both bind the in-pod ports with
   * SO_REUSEPORT), waits until the new one is ready, then stops the old one, which drains.
   */
  upgradeAgent(node: string): Promise<RunningAgent>;
  /** GET on an agent's loopback admin/metrics/health port, from inside its node namespace. */
  agentHttp(node: string, port: number, path: string): Promise<string>;
  stop(): Promise<void>;
}

export function pinDirOf(lab: Lab, node: LabNode): string {
  return `/sys/fs/bpf/nodemesh-${lab.name}-${node.name}`;
}

export async function startMesh(opts: MeshOptions): Promise<Mesh> {
  const { lab } = opts;
  const log = opts.log ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), `nodemesh-${lab.name}-`));
  const configFile = join(dir, "mesh.yaml");
  const caDir = join(dir, "ca");
  const caFile = join(caDir, "ca-cert.pem");
  const tokensFile = join(dir, "node-tokens");
  const tokens = new Map(lab.nodes.map((n) => [n.name, randomBytes(24).toString("hex")]));
  writeFileSync(tokensFile, [...tokens].map(([n, t]) => `${n}=${t}`).join("\n") + "\n", { mode: 0o600 });
  for (const [n, t] of tokens) writeFileSync(join(dir, `token-${n}`), t, { mode: 0o600 });
  writeFileSync(configFile, opts.yaml);

  const agents: RunningAgent[] = [];
  let controller: LabProcess | undefined;
  let stopped = false;

  const startController = async (): Promise<LabProcess> => {
    const args = [
      ...NODE,
      ...CONTROLLER_NODE_FLAGS,
      CLI,
      "controller",
      "--config",
      configFile,
      "--listen",
      `${lab.controllerAddress}:${CONTROLLER_PORT}`,
      "--monitoring",
      "127.0.0.1:15014",
      "--ca-dir",
      caDir,
      "--node-tokens-file",
      tokensFile,
      "--server-name",
      lab.controllerAddress,
      ...(opts.svidTtl ? ["--svid-ttl", opts.svidTtl] : []),
    ];
    const p = lab.spawn(lab.root, args);
    controller = p;
    await waitHttp(lab, lab.root.name, 15014, "/readyz", p, "controller");
    log(`controller up at ${lab.controllerAddress}:${CONTROLLER_PORT} (pid ${p.pid})`);
    return p;
  };

  const spawnAgent = (node: LabNode, pinDir: string): LabProcess =>
    lab.spawn(
      node,
      [
        ...NODE,
        ...AGENT_NODE_FLAGS,
        CLI,
        "agent",
        "--node",
        node.name,
        "--controller",
        `${lab.controllerAddress}:${CONTROLLER_PORT}`,
        "--token-file",
        join(dir, `token-${node.name}`),
        "--ca-file",
        caFile,
        "--pin-dir",
        pinDir,
      ],
      { env: { ...process.env, ...opts.agentEnv } },
    );

  const mesh: Mesh = {
    lab,
    dir,
    configFile,
    caFile,
    get controller() {
      if (!controller) throw new Error("controller not started");
      return controller;
    },
    set controller(p: LabProcess) {
      controller = p;
    },
    agents,
    agent(name) {
      const a = agents.find((x) => x.node.name === name);
      if (!a) throw new Error(`no agent on node ${name}`);
      return a;
    },
    writeConfig(yaml) {
      writeFileSync(configFile, yaml);
    },
    startController,
    async restartAgent(name) {
      const a = mesh.agent(name);
      a.process.kill("SIGTERM");
      await a.process.exited;
      a.process = spawnAgent(a.node, a.pinDir);
      await waitHttp(lab, a.node.name, 15021, "/healthz/ready", a.process, `agent ${name}`);
      return a;
    },
    async crashAgent(name, downMs) {
      const a = mesh.agent(name);
      a.process.kill("SIGKILL");
      await a.process.exited;
      await new Promise((r) => setTimeout(r, downMs));
      a.process = spawnAgent(a.node, a.pinDir);
      await waitHttp(lab, a.node.name, 15021, "/healthz/ready", a.process, `agent ${name}`);
      return a;
    },
    async upgradeAgent(name) {
      const a = mesh.agent(name);
      const old = a.process;
      const next = spawnAgent(a.node, a.pinDir);
      await Promise.race([
        next.waitForOutput('"msg":"agent ready"', 60_000),
        next.exited.then((e) => {
          throw new Error(`new agent on ${name} exited (${JSON.stringify(e)}):\n${tail(next.output)}`);
        }),
      ]);
      a.process = next;
      old.kill("SIGTERM");
      await exitWithin(old, 15_000);
      return a;
    },
    async agentHttp(node, port, path) {
      const r = await lab.exec(node, ["curl", "-sS", "--max-time", "5", `http://127.0.0.1:${port}${path}`]);
      if (r.code !== 0) throw new Error(`GET ${path} on ${node}:${port} failed: ${r.stderr}`);
      return r.stdout;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const a of agents) a.process.kill("SIGTERM");
      controller?.kill("SIGTERM");
      await Promise.all([
        ...agents.map((a) => exitWithin(a.process, 8000)),
        controller ? exitWithin(controller, 5000) : undefined,
      ]);
      for (const a of agents) await uninstallPins(lab, a.node, a.pinDir);
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    await startController();
    if (!existsSync(caFile)) throw new Error(`controller did not write its CA certificate ${caFile}`);
    for (const node of lab.nodes) {
      const pinDir = pinDirOf(lab, node);
      await uninstallPins(lab, node, pinDir); // leftovers of a crashed run must not be re-adopted
      agents.push({ node, pinDir, process: spawnAgent(node, pinDir) });
    }
    for (const a of agents) {
      await waitHttp(lab, a.node.name, 15021, "/healthz/ready", a.process, `agent ${a.node.name}`);
      log(`agent ${a.node.name} ready (pid ${a.process.pid}, pins ${a.pinDir})`);
    }
    return mesh;
  } catch (err) {
    await mesh.stop();
    throw err;
  }
}

/** Removes an agent's pinned programs and maps through the agent's own --uninstall. */
export async function uninstallPins(lab: Lab, node: LabNode, pinDir: string): Promise<void> {
  if (!existsSync(pinDir)) return;
  const r = await lab.exec(node, [...NODE, CLI, "agent", "--uninstall", "--pin-dir", pinDir]);
  if (r.code !== 0 || existsSync(pinDir)) throw new Error(`cannot remove BPF pins ${pinDir}: ${r.stderr}`);
}

async function exitWithin(p: LabProcess, ms: number): Promise<void> {
  const timer = setTimeout(() => p.kill("SIGKILL"), ms);
  await p.exited;
  clearTimeout(timer);
}

/** Polls GET http://127.0.0.1:<port><path> inside a lab namespace until 200; fails fast if `p` exits. */
async function waitHttp(
  lab: Lab,
  host: string,
  port: number,
  path: string,
  p: LabProcess,
  what: string,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  let last = "";
  while (Date.now() < deadline) {
    if (p.exitStatus !== undefined) {
      throw new Error(
        `${what} exited (${JSON.stringify(p.exitStatus)}) before it was ready:\n${tail(p.output)}`,
      );
    }
    const r = await lab.exec(host, [
      "curl",
      "-sS",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "--max-time",
      "2",
      `http://127.0.0.1:${port}${path}`,
    ]);
    last = r.stdout || r.stderr;
    if (r.stdout === "200") return;
    await sleep(100);
  }
  throw new Error(`${what} not ready after 60 s (last answer: ${last}):\n${tail(p.output)}`);
}

function tail(s: string): string {
  return s.split("\n").slice(-30).join("\n");
}

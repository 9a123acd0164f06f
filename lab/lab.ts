// A local multi-host network built from network namespaces and cgroups (see plan.ts for the
// topology and docs/lab.md for how to use it). `Lab.up()` builds, `lab.down()` / `Lab.down(name)`
// remove everything, also after a crash, because teardown finds what to remove by name.
//
// Invariants:
// - nothing is added to the host namespace: links are created directly inside lab namespaces;
// - a process the lab runs in a pod is in the pod's cgroup before its program executes;
// - a failed `up()` leaves nothing behind; while a Lab object is up, a process-exit hook removes it
//   (`cleanupOnExit: false` turns that off, as the CLI's `up` does).
import { spawn, spawnSync } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { LabError } from "./errors.ts";
import {
  createBatch,
  findHost,
  netnsName,
  nodeBatch,
  outsideBatch,
  parseNetnsName,
  planLab,
  podBatch,
  rootBatch,
  validateLabName,
} from "./plan.ts";
import type { LabHost, LabNode, LabOutside, LabPlan, LabPod, LabRoot, LabSpec } from "./plan.ts";
import { LabProcess } from "./process.ts";
import { cgroup2Mount, listNetns, requireRoot, run } from "./system.ts";
import type { ExecResult, RunOptions } from "./system.ts";
import { listLabs, teardownLab } from "./teardown.ts";
import type { TeardownReport } from "./teardown.ts";

export interface LabOptions {
  /** Remove the lab when this process exits without calling down() (default true). */
  cleanupOnExit?: boolean;
}

export type ExecOptions = RunOptions;

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));

export class Lab {
  readonly name: string;
  readonly root: LabRoot;
  readonly nodes: readonly LabNode[];
  readonly pods: readonly LabPod[];
  /** The host in no mesh (`outside: true` in the spec), else undefined. */
  readonly outside: LabOutside | undefined;
  /** `<cgroup2>/nodemesh-lab/<name>`: all the lab's cgroups are below it. */
  readonly cgroupPath: string;
  #plan: LabPlan;
  #processes = new Set<LabProcess>();
  #exitHook: (() => void) | undefined;

  private constructor(plan: LabPlan, opts: LabOptions) {
    this.#plan = plan;
    this.name = plan.name;
    this.root = plan.root;
    this.nodes = plan.nodes;
    this.pods = plan.pods;
    this.outside = plan.outside;
    this.cgroupPath = plan.cgroupPath;
    if (opts.cleanupOnExit ?? true) {
      const name = plan.name;
      // `exit` handlers must be synchronous: run the CLI's teardown in a child and wait for it.
      this.#exitHook = () => {
        spawnSync(process.execPath, ["--disable-warning=ExperimentalWarning", MAIN, "down", "--name", name], {
          stdio: "ignore",
          timeout: 15_000,
        });
      };
      process.once("exit", this.#exitHook);
    }
  }

  /** Builds a lab; leftovers of a lab of the same name are removed first. */
  static async up(spec: LabSpec, opts: LabOptions = {}): Promise<Lab> {
    requireRoot("building a lab");
    const plan = planLab(spec, await cgroup2Mount());
    await teardownLab(plan.name);
    try {
      await build(plan);
    } catch (err) {
      await teardownLab(plan.name).catch(() => {});
      throw err;
    }
    return new Lab(plan, opts);
  }

  /** Removes every namespace, link, cgroup and process of lab `name`; works after a crash. */
  static down(name: string): Promise<TeardownReport> {
    requireRoot("removing a lab");
    return teardownLab(validateLabName(name));
  }

  static downAll(): Promise<TeardownReport> {
    requireRoot("removing labs");
    return teardownLab({ all: true });
  }

  /** Names of the labs that exist on this machine (namespaces or cgroups). */
  static list(): Promise<string[]> {
    return listLabs();
  }

  /** A handle on a lab built by another process (e.g. `nodemesh lab up`), re-derived from names. */
  static async attach(name: string): Promise<Lab> {
    validateLabName(name);
    const hosts = (await listNetns()).map(parseNetnsName).filter((h) => h?.lab === name);
    if (!hosts.some((h) => h?.host === "root")) {
      throw new LabError(
        "NODEMESH_ERR_LAB_NOT_FOUND",
        `no lab named ${name} (no namespace ${netnsName(name, "root")}); build it with \`nodemesh lab up --name ${name}\``,
      );
    }
    const nodes = Math.max(0, ...hosts.map((h) => h?.node ?? 0));
    const podsPerNode = Math.max(0, ...hosts.map((h) => h?.pod ?? 0));
    const outside = hosts.some((h) => h?.host === "outside");
    return new Lab(planLab({ name, nodes, podsPerNode, outside }, await cgroup2Mount()), {
      cleanupOnExit: false,
    });
  }

  get rootNetns(): string {
    return this.root.netns;
  }

  /** The controller host's address (on the bridge, in the root namespace): 10.0.0.254. */
  get controllerAddress(): string {
    return this.root.address;
  }

  /** Node `i` (1-based). */
  node(i: number): LabNode {
    const node = this.nodes[i - 1];
    if (!node) throw this.#noHost(`n${i}`);
    return node;
  }

  /** Pod `j` (1-based) of node `i` (1-based). */
  pod(i: number, j: number): LabPod {
    const pod = this.pods.find((p) => p.node === i && p.index === j);
    if (!pod) throw this.#noHost(`n${i}p${j}`);
    return pod;
  }

  /** A host by its short name: `root`, `n<i>` or `n<i>p<j>`. */
  host(name: string): LabHost {
    const host = findHost(this.#plan, name);
    if (!host) throw this.#noHost(name);
    return host;
  }

  /** Runs argv to completion inside `target` (its namespace, and its cgroup for a pod). */
  exec(target: LabHost | string, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return run(wrap(this.#resolve(target), argv), opts);
  }

  /** Starts a long-lived process inside `target`; it is killed at down() at the latest. */
  spawn(target: LabHost | string, argv: readonly string[], opts: SpawnOptions = {}): LabProcess {
    const host = this.#resolve(target);
    const [file, ...args] = wrap(host, argv);
    const child = spawn(file ?? "ip", args, {
      stdio: ["pipe", "pipe", "pipe"],
      env: opts.env ?? process.env,
      ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    });
    const proc = new LabProcess(host, argv, child);
    this.#processes.add(proc);
    void proc.exited.then(() => this.#processes.delete(proc));
    return proc;
  }

  /** Kills the lab's processes and removes all its namespaces, links and cgroups. */
  async down(): Promise<TeardownReport> {
    const report = await teardownLab(this.name);
    await Promise.all([...this.#processes].map((p) => p.exited));
    if (this.#exitHook) process.removeListener("exit", this.#exitHook);
    this.#exitHook = undefined;
    return report;
  }

  #resolve(target: LabHost | string): LabHost {
    return typeof target === "string" ? this.host(target) : target;
  }

  #noHost(name: string): LabError {
    return new LabError(
      "NODEMESH_ERR_LAB_NOT_FOUND",
      `lab ${this.name} has no host ${name}; it has root, ${this.nodes.map((n) => n.name).join(", ")}` +
        (this.pods.length ? ` and pods ${this.pods.map((p) => p.name).join(", ")}` : ""),
    );
  }
}

/**
 * The command line that runs argv inside `host`. `nsenter --net` execs (no fork) and switches only the
 * network namespace: unlike `ip netns exec`, it does not remount /sys in a private mount namespace, so an
 * agent on a node still sees the host's cgroup2 and bpffs mounts, as a hostNetwork DaemonSet pod would.
 * For a pod the shell writes its own pid to the pod's cgroup before exec'ing, so the pid the caller sees
 * is the program's and the program starts inside its cgroup.
 */
export function wrap(host: LabHost, argv: readonly string[]): string[] {
  if (argv.length === 0)
    throw new LabError("NODEMESH_ERR_LAB_BAD_ARGS", "empty command: give a program to run");
  if (host.kind !== "pod") return ["nsenter", `--net=${host.netnsPath}`, "--", ...argv];
  return [
    "sh",
    "-c",
    'echo $$ > "$0/cgroup.procs" && ns="$1" && shift && exec nsenter --net="$ns" -- "$@"',
    host.cgroupPath,
    host.netnsPath,
    ...argv,
  ];
}

async function build(plan: LabPlan): Promise<void> {
  for (const pod of plan.pods) await mkdir(pod.cgroupPath, { recursive: true });
  for (const node of plan.nodes) await mkdir(node.cgroupPath, { recursive: true });
  await run(["ip", "-batch", "-"], { input: createBatch(plan), check: true });
  const steps: Promise<ExecResult>[] = [
    run(["ip", "-n", plan.root.netns, "-batch", "-"], { input: rootBatch(plan), check: true }),
  ];
  for (const node of plan.nodes) {
    // rp_filter off: the mesh's redirection makes some paths asymmetric on purpose.
    const sysctls =
      "echo 1 > /proc/sys/net/ipv4/ip_forward && " +
      "for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > $f; done && exec ip -batch -";
    steps.push(
      run(["ip", "netns", "exec", node.netns, "sh", "-c", sysctls], {
        input: nodeBatch(plan, node),
        check: true,
      }),
    );
  }
  for (const pod of plan.pods) {
    steps.push(run(["ip", "-n", pod.netns, "-batch", "-"], { input: podBatch(plan, pod), check: true }));
  }
  if (plan.outside)
    steps.push(
      run(["ip", "-n", plan.outside.netns, "-batch", "-"], {
        input: outsideBatch(plan.outside),
        check: true,
      }),
    );
  const results = await Promise.allSettled(steps);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}

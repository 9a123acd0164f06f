// The lab's I/O primitives: running a command, finding the cgroup v2 mount, listing namespaces and
// the processes inside them. Everything the lab does to the machine goes through here.
import { spawn } from "node:child_process";
import { readFile, readdir, readlink, stat } from "node:fs/promises";
import { LabError } from "./errors.ts";
import { NETNS_DIR } from "./plan.ts";

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** exit status; null when killed by a signal (then `signal` says which) */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
  /** throw NODEMESH_ERR_LAB_COMMAND unless the exit status is 0 */
  check?: boolean;
}

export function run(argv: readonly string[], opts: RunOptions = {}): Promise<ExecResult> {
  const [file, ...args] = argv;
  if (file === undefined)
    throw new LabError("NODEMESH_ERR_LAB_BAD_ARGS", "empty command: give a program to run");
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ["pipe", "pipe", "pipe"],
      env: opts.env ?? process.env,
      ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
      ...(opts.timeoutMs === undefined ? {} : { timeout: opts.timeoutMs, killSignal: "SIGKILL" }),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.stdin.on("error", () => {}); // the program may exit without reading its input
    child.stdin.end(opts.input ?? "");
    child.on("error", (err) =>
      reject(
        new LabError("NODEMESH_ERR_LAB_COMMAND", `cannot run ${file}: ${err.message}; is it installed?`, {
          cause: err,
        }),
      ),
    );
    child.on("close", (code, signal) => {
      if (opts.check && code !== 0) {
        const why = code === null ? `killed by ${signal}` : `exit status ${code}`;
        reject(
          new LabError(
            "NODEMESH_ERR_LAB_COMMAND",
            `${argv.join(" ")} failed (${why}): ${stderr.trim() || stdout.trim() || "no output"}`,
          ),
        );
      } else resolve({ stdout, stderr, code, signal });
    });
  });
}

/** The cgroup v2 mount point, read from /proc/mounts (hybrid hosts mount it at .../unified). */
export async function cgroup2Mount(): Promise<string> {
  const mounts = await readFile("/proc/mounts", "utf8");
  const line = mounts.split("\n").find((l) => l.split(" ")[2] === "cgroup2");
  const mount = line?.split(" ")[1];
  if (!mount) {
    throw new LabError(
      "NODEMESH_ERR_LAB_NO_CGROUP2",
      "no cgroup2 filesystem is mounted (see /proc/mounts); mount one, e.g. `mount -t cgroup2 none /sys/fs/cgroup/unified`",
    );
  }
  return mount;
}

export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) {
    throw new LabError(
      "NODEMESH_ERR_LAB_NOT_ROOT",
      `${what} needs root (network namespaces and cgroups); run it with sudo or as root`,
    );
  }
}

/** Names of the named network namespaces (`ip netns list`, read from /run/netns directly). */
export async function listNetns(): Promise<string[]> {
  try {
    return await readdir(NETNS_DIR);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

/**
 * Pids of the processes whose network namespace is one of `netnsNames` (what `ip netns pids`
 * does, for many namespaces in one pass over /proc).
 */
export async function pidsInNetns(netnsNames: readonly string[]): Promise<number[]> {
  const inodes = new Set<number>();
  for (const ns of netnsNames) {
    try {
      inodes.add((await stat(`${NETNS_DIR}/${ns}`)).ino);
    } catch {
      // already gone
    }
  }
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const link = await readlink(`/proc/${entry}/ns/net`); // "net:[4026532290]"
      const ino = Number(/\[(\d+)\]/.exec(link)?.[1]);
      if (inodes.has(ino)) pids.push(Number(entry));
    } catch {
      // exited meanwhile, or a zombie (no namespaces left)
    }
  }
  return pids;
}

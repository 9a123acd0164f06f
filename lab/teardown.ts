// Teardown that works from names alone, so it also cleans up after a crashed run: every lab
// namespace is `nm-<lab>-*` and every lab cgroup is below `<cgroup2>/nodemesh-lab/<lab>`.
// Order matters: kill (cgroup.kill for pods, SIGKILL for anything else inside a lab namespace),
// wait until nothing is left, remove the cgroup directories deepest first, delete the namespaces
// (which destroys every veth and the bridge with them).
import { readFile, readdir, rmdir, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { LabError } from "./errors.ts";
import { CGROUP_DIR, parseNetnsName } from "./plan.ts";
import { cgroup2Mount, listNetns, pidsInNetns, run } from "./system.ts";

export interface TeardownReport {
  netns: string[];
  cgroups: string[];
}

const KILL_WAIT_MS = 5_000;

/** Lab names that have a namespace or a cgroup on this machine. */
export async function listLabs(): Promise<string[]> {
  const names = new Set<string>();
  for (const ns of await listNetns()) {
    const parsed = parseNetnsName(ns);
    if (parsed) names.add(parsed.lab);
  }
  for (const dir of await subdirs(`${await cgroup2Mount()}/${CGROUP_DIR}`)) names.add(dir);
  return [...names].sort();
}

/** Removes everything of lab `name` (or of every lab, with `{ all: true }`). Idempotent. */
export async function teardownLab(target: string | { all: true }): Promise<TeardownReport> {
  const mount = await cgroup2Mount();
  const wanted = (lab: string) => typeof target !== "string" || lab === target;
  const netns = (await listNetns()).filter((ns) => {
    const parsed = parseNetnsName(ns);
    return parsed !== undefined && wanted(parsed.lab);
  });
  const base = `${mount}/${CGROUP_DIR}`;
  const cgroupRoots = (await subdirs(base)).filter(wanted).map((lab) => `${base}/${lab}`);

  await killAll(cgroupRoots, netns);
  const cgroups: string[] = [];
  for (const root of cgroupRoots) await removeCgroupTree(root, cgroups);
  if (netns.length > 0) {
    const script = netns.map((ns) => `netns del ${ns}`).join("\n") + "\n";
    const res = await run(["ip", "-force", "-batch", "-"], { input: script });
    const left = (await listNetns()).filter((ns) => netns.includes(ns));
    if (left.length > 0) {
      throw new LabError(
        "NODEMESH_ERR_LAB_TEARDOWN",
        `could not delete network namespaces ${left.join(", ")}: ${res.stderr.trim()}; try \`ip netns del <name>\``,
      );
    }
  }
  return { netns, cgroups };
}

async function killAll(cgroupRoots: readonly string[], netns: readonly string[]): Promise<void> {
  const deadline = Date.now() + KILL_WAIT_MS;
  for (;;) {
    let alive = false;
    for (const cg of cgroupRoots) {
      if (await populated(cg)) {
        alive = true;
        // cgroup.kill (Linux 5.14+) kills the whole subtree, including processes forked meanwhile.
        await writeFile(`${cg}/cgroup.kill`, "1").catch(() => killCgroupProcs(cg));
      }
    }
    for (const pid of await pidsInNetns(netns)) {
      if (pid === process.pid) continue;
      alive = true;
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // exited meanwhile
      }
    }
    if (!alive) return;
    if (Date.now() > deadline) {
      throw new LabError(
        "NODEMESH_ERR_LAB_TEARDOWN",
        `processes in lab namespaces or cgroups survive SIGKILL (${[...cgroupRoots, ...netns].join(", ")}); ` +
          "look for processes in uninterruptible sleep (ps -eo pid,stat,cmd | grep ' D')",
      );
    }
    await sleep(20);
  }
}

async function populated(cg: string): Promise<boolean> {
  try {
    return /^populated 1$/m.test(await readFile(`${cg}/cgroup.events`, "utf8"));
  } catch {
    return false;
  }
}

/** Fallback for kernels without cgroup.kill (< 5.14). */
async function killCgroupProcs(cg: string): Promise<void> {
  for (const dir of await subdirs(cg)) await killCgroupProcs(`${cg}/${dir}`);
  const procs = await readFile(`${cg}/cgroup.procs`, "utf8").catch(() => "");
  for (const pid of procs.split("\n").filter(Boolean)) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // exited meanwhile
    }
  }
}

async function removeCgroupTree(dir: string, removed: string[]): Promise<void> {
  for (const child of await subdirs(dir)) await removeCgroupTree(`${dir}/${child}`, removed);
  // A cgroup whose last process just exited can report EBUSY for a moment.
  for (let attempt = 0; ; attempt++) {
    try {
      await rmdir(dir);
      removed.push(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY" || attempt >= 50) {
        throw new LabError(
          "NODEMESH_ERR_LAB_TEARDOWN",
          `cannot remove cgroup ${dir}: ${code}; see ${dir}/cgroup.procs for processes still in it`,
          { cause: err },
        );
      }
      await sleep(20);
    }
  }
}

async function subdirs(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

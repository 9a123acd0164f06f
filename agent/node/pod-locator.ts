// Kubernetes pods on this node, found from their UID alone (ztunnel calls this "inpod"): the
// kubelet puts every pod in a cgroup named after its UID, so the agent needs no CRI socket and no
// change to the pod. From the pod cgroup we take a process of one of its containers; its
// /proc/<pid>/ns/net is the pod's network namespace (all containers of a pod share the sandbox's).
//
// Layouts (kubelet pkg/kubelet/cm, the `cgroupDriver` setting):
//   systemd   /kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid with _>.slice/
//             guaranteed: /kubepods.slice/kubepods-pod<uid with _>.slice/
//             containers: cri-containerd-<id>.scope (containerd), crio-<id>.scope (CRI-O)
//   cgroupfs  /kubepods/<qos>/pod<uid>/ , guaranteed /kubepods/pod<uid>/; containers: <id>/
// Nested kubelets (kind, k3d) add a prefix; a bounded search finds the pod cgroup under it.
//
// Fail closed: CRI-O's conmon (crio-conmon-*.scope) runs in the host network namespace, so its
// processes are skipped, and a process whose netns is the host's (pid 1's) is never returned.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

export interface PodLocatorOptions {
  /** Mount point of the cgroup v2 hierarchy; default /sys/fs/cgroup. */
  cgroupRoot?: string;
  /** The host's /proc (a DaemonSet mounts it at /host/proc); default /proc. */
  procRoot?: string;
  /** How deep to search for the pod cgroup below cgroupRoot when no known path exists; default 4. */
  searchDepth?: number;
}

export interface PodLocation {
  /** Pod cgroup, relative to the cgroup root ("/kubepods.slice/…"), as WorkloadEntry.spec.cgroup. */
  cgroup: string;
  /** /proc/<pid>/ns/net of a process in the pod, as WorkloadEntry.spec.netns. */
  netns: string;
  pid: number;
}

const QOS = ["burstable", "besteffort", "guaranteed"] as const;

/** Pure: the paths a kubelet would use for this pod, most likely first. */
export function podCgroupCandidates(uid: string, qosClass?: string): string[] {
  const u = uid.replaceAll("-", "_");
  const qos = qosClass?.toLowerCase();
  const order =
    qos && (QOS as readonly string[]).includes(qos) ? [qos, ...QOS.filter((q) => q !== qos)] : [...QOS];
  const out: string[] = [];
  for (const q of order) {
    if (q === "guaranteed") out.push(`/kubepods.slice/kubepods-pod${u}.slice`, `/kubepods/pod${uid}`);
    else
      out.push(`/kubepods.slice/kubepods-${q}.slice/kubepods-${q}-pod${u}.slice`, `/kubepods/${q}/pod${uid}`);
  }
  return out;
}

/** Whether a cgroup directory name is this pod's (either driver). */
export function isPodCgroupName(name: string, uid: string): boolean {
  const u = uid.replaceAll("-", "_");
  return name === `pod${uid}` || (name.startsWith("kubepods-") && name.endsWith(`pod${u}.slice`));
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function subdirs(p: string): string[] {
  try {
    return readdirSync(p, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return [];
  }
}

/** The pod's cgroup (relative to the root), or undefined when this node has none for the UID. */
export function findPodCgroup(
  uid: string,
  qosClass: string | undefined,
  opts: PodLocatorOptions = {},
): string | undefined {
  const root = opts.cgroupRoot ?? "/sys/fs/cgroup";
  for (const c of podCgroupCandidates(uid, qosClass)) if (isDir(join(root, c))) return c;
  // Breadth-first under the root, pruned to kubelet-looking branches after the first level.
  let level = [""];
  for (let depth = 0; depth < (opts.searchDepth ?? 4) && level.length > 0; depth++) {
    const next: string[] = [];
    for (const rel of level)
      for (const name of subdirs(join(root, rel))) {
        const child = `${rel}/${name}`;
        if (isPodCgroupName(name, uid)) return child;
        if (
          depth === 0 ||
          name.startsWith("kubepods") ||
          name.startsWith("kubelet") ||
          QOS.some((q) => name === q)
        )
          next.push(child);
      }
    level = next;
  }
  return undefined;
}

function pidsOf(dir: string): number[] {
  try {
    return readFileSync(join(dir, "cgroup.procs"), "utf8")
      .split("\n")
      .filter((l) => /^\d+$/.test(l))
      .map(Number);
  } catch {
    return [];
  }
}

/** Pids of the pod's containers (never conmon's), the pod cgroup itself first. */
export function podPids(podCgroupDir: string): number[] {
  const out = pidsOf(podCgroupDir);
  const walk = (dir: string, depth: number) => {
    for (const name of subdirs(dir)) {
      if (name.startsWith("crio-conmon-")) continue;
      out.push(...pidsOf(join(dir, name)));
      if (depth < 2) walk(join(dir, name), depth + 1);
    }
  };
  walk(podCgroupDir, 0);
  return out;
}

function inode(p: string): bigint | undefined {
  try {
    return statSync(p, { bigint: true }).ino;
  } catch {
    return undefined;
  }
}

/** Finds the pod's cgroup and network namespace from its UID; undefined until both exist. */
export function locatePod(
  uid: string,
  qosClass: string | undefined,
  opts: PodLocatorOptions = {},
): PodLocation | undefined {
  const root = opts.cgroupRoot ?? "/sys/fs/cgroup";
  const proc = opts.procRoot ?? "/proc";
  const cgroup = findPodCgroup(uid, qosClass, opts);
  if (!cgroup) return undefined;
  const hostNet = inode(join(proc, "1/ns/net"));
  for (const pid of podPids(join(root, cgroup))) {
    const netns = join(proc, String(pid), "ns/net");
    const ino = inode(netns);
    if (ino !== undefined && ino !== hostNet) return { cgroup, netns, pid };
  }
  return undefined;
}

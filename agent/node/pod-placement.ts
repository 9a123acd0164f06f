// Where a local workload lives on this node (its network namespace and cgroup), as the datapath
// needs it to enroll. Plain-host WorkloadEntries name their netns; Kubernetes pods cannot (the
// controller sees no node-local paths), so the controller's Kubernetes source sends the pod UID and
// QoS class as annotations and a cgroup guessed for the systemd driver, and the agent finds the
// real cgroup and a container's /proc/<pid>/ns/net itself (pod-locator.ts). That happens only for
// an entry with the pod-UID annotation and no netns; anything else is used as given.
//
// The chained CNI plugin (cni/, agent/node/cni-server.ts) hints a pod's netns path while its
// sandbox is set up, before any of its processes run: a hinted pod is placed in that netns without
// a look. Without a hint, a short bounded backoff covers a cgroup that is still being populated.
// When the pod is still not found the error says so and enrollment fails for this config version
// (app.ts logs it and tries again at the next one or at a hint): the agent never enrolls a guess.
import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import { AgentError } from "../errors.ts";
import { locatePod } from "./pod-locator.ts";
import type { PodLocation, PodLocatorOptions } from "./pod-locator.ts";

/** Set by the controller's Kubernetes source (controller/sources/kube/map.ts uses the same names). */
export const POD_UID_ANNOTATION = "nodemesh.io/pod-uid";
export const QOS_ANNOTATION = "nodemesh.io/qos-class";

/** The host's /proc as mounted into the agent's container (the chart: /host/proc). */
export const ENV_PROC_ROOT = "NODEMESH_PROC_ROOT";

/** What placement reads of a workload (a structural subset of agent/state/view.ts WorkloadInfo). */
export interface PlaceableWorkload {
  readonly uid: string;
  readonly netns: string | undefined;
  readonly cgroup: string | undefined;
  readonly entry: { readonly metadata: { readonly annotations?: Readonly<Record<string, string>> } };
}

export interface Placement {
  readonly netns: string | undefined;
  readonly cgroup: string | undefined;
  /** The pod UID it was found from, when it had to be found. */
  readonly podUid?: string;
}

export interface PodPlacerOptions {
  readonly locator: PodLocatorOptions;
  readonly log: Logger;
  /** Looks before giving up; default 8 (about 3.5 s with the default delays). */
  readonly attempts?: number;
  /** First delay between looks, doubled each time up to maxDelayMs; default 50 ms and 1 s. */
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Tests inject these. */
  readonly locate?: typeof locatePod;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Pure: the pod to look for, or undefined when the entry says where it is (or is no pod). */
export function podToLocate(w: PlaceableWorkload): { uid: string; qosClass: string | undefined } | undefined {
  const uid = w.entry.metadata.annotations?.[POD_UID_ANNOTATION];
  if (!uid || w.netns !== undefined) return undefined;
  return { uid, qosClass: w.entry.metadata.annotations?.[QOS_ANNOTATION] };
}

/** Pure: the mount point of the cgroup v2 hierarchy in a /proc/mounts text (first one wins). */
export function cgroup2MountOf(mounts: string): string | undefined {
  for (const line of mounts.split("\n")) {
    const f = line.split(" ");
    // Octal escapes (\040 for a space) are how the kernel writes odd characters in mount points.
    if (f[2] === "cgroup2" && f[1])
      return f[1].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  }
  return undefined;
}

/** The locator's roots in this process: NODEMESH_PROC_ROOT, and cgroup2 from /proc/mounts. */
export function podLocatorOptionsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  readMounts: () => string = () => readFileSync("/proc/mounts", "utf8"),
): PodLocatorOptions {
  let cgroupRoot: string | undefined;
  try {
    cgroupRoot = cgroup2MountOf(readMounts());
  } catch {
    cgroupRoot = undefined; // no /proc/mounts: fall back to the locator's default
  }
  const procRoot = env[ENV_PROC_ROOT];
  return { ...(cgroupRoot ? { cgroupRoot } : {}), ...(procRoot ? { procRoot } : {}) };
}

export class PodPlacer {
  readonly #opts: PodPlacerOptions;
  /** Pod UID → netns path told by the CNI plugin; trusted as the runtime's own answer. */
  readonly #hints = new Map<string, string>();

  constructor(opts: PodPlacerOptions) {
    this.#opts = opts;
  }

  hint(podUid: string, netns: string): void {
    this.#hints.set(podUid, netns);
  }
  forget(podUid: string): void {
    this.#hints.delete(podUid);
  }

  /** Where to enroll `w`; looks the pod up by UID when needed; throws when it is not on this node. */
  async place(w: PlaceableWorkload): Promise<Placement> {
    const pod = podToLocate(w);
    if (!pod) return { netns: w.netns, cgroup: w.cgroup };
    const hinted = this.#hints.get(pod.uid);
    if (hinted) return { netns: hinted, cgroup: w.cgroup, podUid: pod.uid };
    const found = await this.#find(w.uid, pod.uid, pod.qosClass);
    this.#opts.log.info(
      { workload: w.uid, podUid: pod.uid, cgroup: found.cgroup, pid: found.pid },
      "found the pod on this node",
    );
    return { netns: found.netns, cgroup: found.cgroup, podUid: pod.uid };
  }

  async #find(workload: string, uid: string, qos: string | undefined): Promise<PodLocation> {
    const { locator, log } = this.#opts;
    const locate = this.#opts.locate ?? locatePod;
    const sleep = this.#opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const attempts = Math.max(1, this.#opts.attempts ?? 8);
    let delay = this.#opts.initialDelayMs ?? 50;
    for (let i = 1; ; i++) {
      const found = locate(uid, qos, locator);
      if (found) return found;
      if (i >= attempts) break;
      log.debug({ workload, podUid: uid, attempt: i, retryInMs: delay }, "pod not found on this node yet");
      await sleep(delay);
      delay = Math.min(delay * 2, this.#opts.maxDelayMs ?? 1000);
    }
    throw new AgentError(
      "NODEMESH_ERR_POD_NOT_FOUND",
      `pod ${workload} (uid ${uid}) has no cgroup with a running process under ` +
        `${locator.cgroupRoot ?? "/sys/fs/cgroup"} (processes read from ${locator.procRoot ?? "/proc"}) ` +
        `after ${attempts} looks; check that the agent mounts the host's cgroup2 and /proc ` +
        `(${ENV_PROC_ROOT}) and that the pod runs on this node`,
    );
  }
}

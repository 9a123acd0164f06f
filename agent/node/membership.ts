// Whether the controller's config names a pod of this node as meshed, as not meshed, or not at all:
// what the agent answers the CNI plugin's ADD with (agent/node/cni-server.ts). Meshed means a
// WorkloadEntry of this node with the pod's UID annotation, or a PendingWorkload of this node; not
// meshed means an UnmeshedPod of this node (controller/api/resources.ts). Pure: the config in, the
// answer out; the index over a config is built once per config object (a waiting ADD asks every
// 20 ms, and a node may have hundreds of pods in a config of 10,000).
//
// Fail closed: only entries for this node count (a controller never sends another node's, and a
// confused one must not open this node's gate); a UID named both ways is meshed (held until it is
// enrolled); an UnmeshedPod whose names disagree with the runtime's is not trusted; anything else is
// unknown, and the plugin's ADD waits for the controller, then fails.
import type { MeshConfig } from "../../controller/api/index.ts";
import { nameConflict, type CniPodHint } from "./pending-pods.ts";
import { POD_UID_ANNOTATION } from "./pod-placement.ts";

export type PodMembership =
  | { readonly state: "meshed" }
  | { readonly state: "unmeshed" }
  /** `why` only when the config says something about the pod that cannot be trusted, or nothing at all. */
  | { readonly state: "unknown"; readonly why?: string };

interface Index {
  readonly meshed: ReadonlySet<string>;
  /** Pod UID → the pod's names, as the controller knows them. */
  readonly unmeshed: ReadonlyMap<string, { readonly namespace: string; readonly name: string }>;
}

/** One agent asks for one node: the index of a config is kept for the node it was built for. */
const indexes = new WeakMap<MeshConfig, Index & { readonly node: string }>();

function indexOf(config: MeshConfig, node: string): Index {
  const have = indexes.get(config);
  if (have?.node === node) return have;
  const meshed = new Set<string>();
  for (const w of config.workloads) {
    const uid = w.metadata.annotations?.[POD_UID_ANNOTATION];
    if (uid !== undefined && w.spec.node === node) meshed.add(uid);
  }
  for (const p of config.pendingWorkloads ?? []) if (p.spec.node === node) meshed.add(p.spec.podUid);
  const unmeshed = new Map<string, { namespace: string; name: string }>();
  for (const u of config.unmeshedPods ?? [])
    if (u.spec.node === node && !meshed.has(u.spec.podUid)) unmeshed.set(u.spec.podUid, u.metadata);
  const ix = { node, meshed, unmeshed };
  indexes.set(config, ix);
  return ix;
}

/** What `config` (the controller's, undefined before the first) says of pod `podUid` on `node`. */
export function podMembership(
  config: MeshConfig | undefined,
  node: string,
  podUid: string,
  hint?: CniPodHint,
): PodMembership {
  if (!config)
    return {
      state: "unknown",
      why: "the agent has no config from the controller yet (is the controller reachable?)",
    };
  const ix = indexOf(config, node);
  if (ix.meshed.has(podUid)) return { state: "meshed" };
  const names = ix.unmeshed.get(podUid);
  if (names) {
    const conflict = hint && nameConflict(podUid, hint, names);
    return conflict ? { state: "unknown", why: conflict } : { state: "unmeshed" };
  }
  // The caller words this one: it knows more (a pod the controller knows under another UID).
  return { state: "unknown" };
}

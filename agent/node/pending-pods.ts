// Pods enrolled at CNI ADD, before their IP is in the Kubernetes API. A kubelet publishes
// status.podIP only after ADD returns, and the chained plugin holds ADD until the pod is enrolled, so
// the controller sends the node's scheduled pods without an IP as PendingWorkloads (identity facts
// only) and the plugin sends the address from the previous plugin's result with the netns. The
// agent's config is then the controller's plus one entry per pending pod that has such a hint,
// built as the controller will build it once the IP is published (controller/api/pending.ts): the
// ordinary entry replaces it with no re-enrolment when the addresses agree, and wins when they
// do not. Pure: the controller's config and the hints in, the config to apply out.
//
// Trust: identity (namespace, service account, labels) comes only from the controller; the plugin
// (root on this node, through a root-only socket) supplies the netns and the address, as the
// runtime's own answer. A hint that disagrees with the controller about which pod a UID is, or whose
// address another workload still holds, is refused with the reason, and the pod stays unenrolled
// (its ADD fails closed).
import { entryOfPending, type MeshConfig, type WorkloadEntry } from "../../controller/api/index.ts";
import { POD_UID_ANNOTATION } from "./pod-placement.ts";

/** What the CNI plugin said about a pod's sandbox (cni/wire.ts "add"). */
export interface CniPodHint {
  readonly netns: string;
  /** The pod's IPv4 address from the CNI result; absent from a plugin older than PendingWorkloads. */
  readonly address?: string;
  /** K8S_POD_NAMESPACE / K8S_POD_NAME, checked against the controller's pod of that UID. */
  readonly namespace?: string;
  readonly name?: string;
}

export interface HintedConfig {
  /** `config` with an entry for every usable hint of a pending pod (the same object when none). */
  readonly config: MeshConfig;
  /** Pod UID → why its hint is not used (the CNI plugin's answer names it). */
  readonly refused: ReadonlyMap<string, string>;
  /** Workload uids ("namespace/name") of the entries built from a hint. */
  readonly fromHint: ReadonlySet<string>;
}

const podUidOf = (w: { metadata: { annotations?: Readonly<Record<string, string>> } }) =>
  w.metadata.annotations?.[POD_UID_ANNOTATION];

/** Why the runtime's pod names disagree with the controller's pod of that UID, if they do. */
export function nameConflict(
  podUid: string,
  hint: CniPodHint,
  meta: { readonly namespace: string; readonly name: string },
): string | undefined {
  if (hint.namespace === undefined && hint.name === undefined) return undefined;
  if ((hint.namespace ?? meta.namespace) === meta.namespace && (hint.name ?? meta.name) === meta.name)
    return undefined;
  return (
    `the runtime says uid ${podUid} is pod ${hint.namespace ?? "?"}/${hint.name ?? "?"}, but the ` +
    `controller's pod with that uid is ${meta.namespace}/${meta.name}; refusing to enroll it`
  );
}

/** The config to apply on `node`: the controller's, plus the hinted pending pods (see the top). */
export function withHintedPods(
  config: MeshConfig,
  hints: ReadonlyMap<string, CniPodHint>,
  node: string,
): HintedConfig {
  const refused = new Map<string, string>();
  const fromHint = new Set<string>();
  if (hints.size === 0) return { config, refused, fromHint };
  const ordinary = new Set<string>();
  const holder = new Map<string, WorkloadEntry>();
  for (const w of config.workloads) {
    holder.set(w.spec.address, w);
    const uid = podUidOf(w);
    if (uid === undefined || w.spec.node !== node) continue;
    ordinary.add(uid);
    const hint = hints.get(uid);
    const conflict = hint && nameConflict(uid, hint, w.metadata);
    if (conflict) refused.set(uid, conflict);
  }
  const added: WorkloadEntry[] = [];
  for (const p of config.pendingWorkloads ?? []) {
    const uid = p.spec.podUid;
    const hint = hints.get(uid);
    // The ordinary entry, once sent, is the truth: its published address wins over the hint's.
    if (!hint || p.spec.node !== node || ordinary.has(uid)) continue;
    const why = pendingRefusal(uid, hint, p.metadata, holder);
    if (why) {
      refused.set(uid, why);
      continue;
    }
    const entry = entryOfPending(p, hint.address as string);
    holder.set(entry.spec.address, entry);
    added.push(entry);
    fromHint.add(`${p.metadata.namespace}/${p.metadata.name}`);
  }
  if (added.length === 0) return { config, refused, fromHint };
  return { config: { ...config, workloads: [...config.workloads, ...added] }, refused, fromHint };
}

function pendingRefusal(
  uid: string,
  hint: CniPodHint,
  meta: { readonly namespace: string; readonly name: string },
  holder: ReadonlyMap<string, WorkloadEntry>,
): string | undefined {
  const conflict = nameConflict(uid, hint, meta);
  if (conflict) return conflict;
  if (hint.address === undefined)
    return (
      "the CNI plugin sent no IPv4 address for the pod (the previous plugin's result has none, or the " +
      "plugin is older than the agent: reinstall it from the agent's image) and the controller has no IP for it yet"
    );
  const other = holder.get(hint.address);
  if (other)
    return (
      `address ${hint.address} from the CNI result is still held by workload ` +
      `${other.metadata.namespace}/${other.metadata.name} in the controller's config ` +
      "(a reused address whose old pod is not gone yet); waiting for it to go"
    );
  return undefined;
}

// What changed between two models' entries, and the checks buildModel can skip when only
// WorkloadEntries changed (pods coming and going: by far the most frequent change).
//
// A full build runs every cross-document check over all entries: at 10,000 workloads that was most
// of the controller's ~70 ms per change in bench/controller.ts (the address map, the Service and
// policy selector scans of danglingReferences, the ExternalService conflict sets). When every added,
// changed or removed entry is a WorkloadEntry, the only checks whose answer can change are the
// address conflicts of the changed workloads and the selector warnings of the Services and policies
// in the namespaces they touch; the rest is taken from the previous model. Whatever the incremental
// path cannot decide exactly as the full build would (a duplicate, an address conflict, an
// ExternalService that may now shadow a workload) makes it give up, and the full build decides and
// words the issues.
//
// Pure functions over immutable entries; no I/O.
import { keyOf, keyString } from "../api/index.ts";
import type { Resource, WorkloadEntry } from "../api/index.ts";
import type { MeshModel, SourcedResource } from "./model.ts";

/** The difference from a model's entries to the next ones. */
export interface EntryDelta {
  /** Keys that are new, or whose resource changed (an entry re-parsed to the same JSON has not). */
  readonly changed: ReadonlySet<string>;
  /** Keys that are gone. */
  readonly removed: readonly string[];
}

/** The delta from `previous` to `next`: O(entries) lookups, no copy of either map. */
export function entryDelta(
  next: ReadonlyMap<string, SourcedResource>,
  previous: ReadonlyMap<string, SourcedResource>,
): EntryDelta {
  const changed = new Set<string>();
  for (const [k, e] of next) {
    const old = previous.get(k);
    if (!old || (old !== e && old.json !== e.json)) changed.add(k);
  }
  const removed: string[] = [];
  // Same size and nothing new: nothing can be gone.
  if (previous.size !== next.size || changed.size > 0)
    for (const k of previous.keys()) if (!next.has(k)) removed.push(k);
  return { changed, removed };
}

function isWorkloadKey(key: string): boolean {
  return key.startsWith("WorkloadEntry/");
}

/** True when every key of the delta is a WorkloadEntry's (or nothing changed: a reload of the same files). */
export function workloadsOnly(d: EntryDelta): boolean {
  for (const k of d.changed) if (!isWorkloadKey(k)) return false;
  for (const k of d.removed) if (!isWorkloadKey(k)) return false;
  return true;
}

/** The workloads of a workload-only delta, before and after (either may be missing). */
export function* touchedWorkloads(
  d: EntryDelta,
  next: ReadonlyMap<string, SourcedResource>,
  previous: ReadonlyMap<string, SourcedResource>,
): Generator<WorkloadEntry> {
  for (const k of d.changed) {
    const now = next.get(k)?.resource;
    if (now?.kind === "WorkloadEntry") yield now;
    const old = previous.get(k)?.resource;
    if (old?.kind === "WorkloadEntry") yield old;
  }
  for (const k of d.removed) {
    const old = previous.get(k)?.resource;
    if (old?.kind === "WorkloadEntry") yield old;
  }
}

/**
 * Whether the changed workloads of a workload-only delta still have addresses of their own: no
 * other changed workload, and no unchanged workload of `previous`, claims the same one.
 */
export function addressesStayUnique(
  d: EntryDelta,
  next: ReadonlyMap<string, SourcedResource>,
  previous: MeshModel,
): boolean {
  const claimed = new Set<string>();
  for (const k of d.changed) {
    const w = next.get(k)?.resource;
    if (w?.kind !== "WorkloadEntry") return false;
    const address = w.spec.address;
    if (claimed.has(address)) return false;
    claimed.add(address);
    const holder = previous.workloadAt(address);
    if (!holder) continue;
    const holderKey = keyString(keyOf(holder));
    // The holder still holds it unless it is this workload, or it changed (then `claimed` decides
    // if its new version keeps the address) or is gone.
    if (holderKey !== k && !d.changed.has(holderKey) && next.has(holderKey)) return false;
  }
  return true;
}

/**
 * Whether the warnings of `r` (danglingReferences) may differ once the workloads of namespaces
 * `touched` changed: selectors look at the workloads of their namespace (the root namespace's at
 * all of them), and an ExternalService's egress gateway is a workload. References between other
 * kinds do not depend on workloads. Keep in step with model.ts danglingReferences: a new check there
 * that reads workloads must be named here.
 */
export function warningsDependOnWorkloads(
  r: Resource,
  touched: ReadonlySet<string>,
  rootNamespace: string,
): boolean {
  const ns = r.metadata.namespace;
  switch (r.kind) {
    case "Service":
      return r.spec.selector !== undefined && touched.has(ns);
    case "AuthorizationPolicy":
    case "PeerAuthentication":
      return r.spec.selector !== undefined && (ns === rootNamespace || touched.has(ns));
    case "ExternalService":
      return true;
    default:
      return false;
  }
}

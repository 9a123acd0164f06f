// The snapshot's compact form of WorkloadEntries, for agents that ask for it (request header
// `nodemesh-features: workload-rows`). A snapshot then carries `workloadRows` instead of
// `workloads`: one JSON array per workload, its values in a fixed order, with the constant
// apiVersion and kind and every key name left out. At 10,000 workloads that is 1.1 MB of JSON
// instead of 2.4 MB, and an agent parses and rebuilds it in ~11 ms of CPU instead of ~18 ms
// (bench/controller.ts: that parse is most of a full sync, 100 agents × each its own).
//
// Lossless by construction: a workload with anything the row has no place for (metadata labels or
// annotations, a field added to the schema later) is sent as its whole object in the list, and
// rebuilt objects have the keys, in the order, that the schema's output has. Deltas are unchanged.
// Older agents do not send the header and get `workloads`; older controllers ignore it, and the
// agent reads either form. Pure: no I/O.
import { API_VERSION } from "./resources.ts";
import type { WorkloadEntry } from "./resources.ts";

export { FEATURE_WORKLOAD_ROWS, HEADER_FEATURES, hasFeature } from "./features.ts";

/** [name, namespace, address, serviceAccount, node, labels, netns, cgroup, ports, ready]; trailing absent values left out. */
export type WorkloadRow = unknown[];

const METADATA_KEYS = new Set(["name", "namespace"]);
const SPEC_KEYS = new Set([
  "address",
  "serviceAccount",
  "labels",
  "node",
  "netns",
  "cgroup",
  "ports",
  "ready",
]);

function onlyKeys(o: object, allowed: ReadonlySet<string>): boolean {
  for (const k of Object.keys(o)) if (!allowed.has(k)) return false;
  return true;
}

/** The row of `w`, or `w` itself when a row cannot hold all of it. */
export function workloadRow(w: WorkloadEntry): WorkloadRow | WorkloadEntry {
  const { metadata: m, spec: s } = w;
  if (
    w.apiVersion !== API_VERSION ||
    Object.keys(w).length !== 4 ||
    !onlyKeys(m, METADATA_KEYS) ||
    !onlyKeys(s, SPEC_KEYS) ||
    s.serviceAccount === undefined ||
    s.labels === undefined
  )
    return w;
  const row: unknown[] = [
    m.name,
    m.namespace,
    s.address,
    s.serviceAccount,
    s.node,
    s.labels,
    s.netns ?? null,
    s.cgroup ?? null,
    s.ports ?? null,
    s.ready ?? null,
  ];
  while (row.length > 6 && row[row.length - 1] === null) row.pop();
  return row;
}

/**
 * A workload from an element of `workloadRows`: a row is rebuilt, anything else returned as it is
 * (a whole object; a malformed element is left for the schema to refuse).
 */
export function workloadFromRow(row: unknown): unknown {
  if (!Array.isArray(row)) return row;
  const r = row as unknown[];
  const spec: Record<string, unknown> = { address: r[2], serviceAccount: r[3], labels: r[5], node: r[4] };
  if (r[6] != null) spec.netns = r[6];
  if (r[7] != null) spec.cgroup = r[7];
  if (r[8] != null) spec.ports = r[8];
  if (r[9] != null) spec.ready = r[9];
  return { apiVersion: API_VERSION, kind: "WorkloadEntry", metadata: { name: r[0], namespace: r[1] }, spec };
}

/**
 * Turns a parsed snapshot message's `workloadRows` into `workloads`, in place, before the message
 * is validated; any other message is left as it is.
 */
export function expandWorkloadRows(message: unknown): void {
  if (typeof message !== "object" || message === null) return;
  const m = message as { type?: unknown; config?: { workloadRows?: unknown; workloads?: unknown } };
  const config = m.type === "snapshot" ? m.config : undefined;
  if (!config || !Array.isArray(config.workloadRows)) return;
  config.workloads = config.workloadRows.map(workloadFromRow);
  delete config.workloadRows;
}

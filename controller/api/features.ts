// Optional parts of the config stream an agent says it understands (request header
// `nodemesh-features`, comma-separated). A controller sends an addition only to the agents that list
// it, so an agent older than the controller keeps receiving configs its strict schema accepts (the
// stream schema refuses unknown fields, so that no agent silently ignores a policy it cannot apply).
// Pure: no I/O.

/** Request header: optional features the agent understands, comma-separated. */
export const HEADER_FEATURES = "nodemesh-features";
/** Snapshot workloads as compact rows (workload-rows.ts). */
export const FEATURE_WORKLOAD_ROWS = "workload-rows";
/** The node's UnmeshedPods (`unmeshedPods` in snapshots, the kind in deltas), for the CNI plugin. */
export const FEATURE_UNMESHED_PODS = "unmeshed-pods";

/** Whether the comma-separated `header` lists `feature`. */
export function hasFeature(header: string | string[] | undefined, feature: string): boolean {
  const all = Array.isArray(header) ? header.join(",") : (header ?? "");
  return all.split(",").some((f) => f.trim().toLowerCase() === feature);
}

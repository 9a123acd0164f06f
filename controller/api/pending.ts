// A PendingWorkload seen as the WorkloadEntry it becomes: what the agent enrolls when the CNI plugin
// reports the pod's address (agent/node/pending-pods.ts), and what the controller matches policies
// against for it (controller/model). One function on both sides, so the entry the agent builds from
// the hint and the one the Kubernetes source sends once the IP is published agree in every field the
// agent compares (address, cgroup, identity): the hand-over is then no re-enrolment.
import { API_VERSION } from "./resources.ts";
import type { PendingWorkload, WorkloadEntry } from "./resources.ts";

/** Not ready: a pod without a published IP is no Service's endpoint (Kubernetes Endpoints agree). */
export function entryOfPending(p: PendingWorkload, address: string): WorkloadEntry {
  const { podUid, serviceAccount, labels, node, cgroup, ports } = p.spec;
  return {
    apiVersion: API_VERSION,
    kind: "WorkloadEntry",
    metadata: {
      ...p.metadata,
      annotations: { ...p.metadata.annotations, "nodemesh.io/pod-uid": podUid },
    },
    spec: {
      address,
      serviceAccount,
      labels,
      node,
      ...(cgroup !== undefined ? { cgroup } : {}),
      ...(ports !== undefined ? { ports } : {}),
      ready: false,
    },
  };
}

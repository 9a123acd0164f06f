// Mesh configuration for a lab, as the YAML an operator of plain hosts would write: one WorkloadEntry
// per pod (its address, node, network namespace, service account, labels) and the Services over them.
import { stringify } from "yaml";
import type { Lab } from "../lab/index.ts";

export interface LabPodRole {
  /** The `app` label, which Services select. */
  readonly app: string;
  readonly serviceAccount?: string;
}

export interface LabService {
  readonly name: string;
  readonly vip: string;
  readonly port: number;
  readonly targetPort: number;
  /** Selects pods whose role has this app. */
  readonly app: string;
  readonly loadBalancer?: "ROUND_ROBIN" | "LEAST_REQUEST";
}

export interface LabMeshSpec {
  readonly namespace?: string;
  /** Pod name ("n1p1") → role. Pods not listed are not in the mesh. */
  readonly pods: Record<string, LabPodRole>;
  readonly services: readonly LabService[];
  /** Further documents (policies), as objects. */
  readonly extra?: readonly object[];
}

export const API_VERSION = "nodemesh.io/v1alpha1";

/** The service VIP of the demo and the e2e tests: routed nowhere, reachable only through the mesh. */
export const DEMO_VIP = "10.96.0.10";

/**
 * The demo's (and the e2e tests') mesh on a 2 x 2 lab: client (n1p1, sa client) and legacy (n2p1,
 * sa legacy) call the echo service, whose backends are n1p2 (same node as client) and n2p2.
 */
export const DEMO_MESH: LabMeshSpec = {
  pods: {
    n1p1: { app: "client", serviceAccount: "client" },
    n2p1: { app: "legacy", serviceAccount: "legacy" },
    n1p2: { app: "echo" },
    n2p2: { app: "echo" },
  },
  services: [{ name: "echo", vip: DEMO_VIP, port: 80, targetPort: 8080, app: "echo" }],
};

export function meshConfigForLab(lab: Lab, spec: LabMeshSpec): string {
  const namespace = spec.namespace ?? "default";
  const docs: object[] = [];
  for (const [podName, role] of Object.entries(spec.pods)) {
    const pod = lab.pods.find((p) => p.name === podName);
    if (!pod) throw new Error(`lab ${lab.name} has no pod ${podName}`);
    docs.push({
      apiVersion: API_VERSION,
      kind: "WorkloadEntry",
      metadata: { name: `${role.app}-${pod.name}`, namespace },
      spec: {
        address: pod.address,
        serviceAccount: role.serviceAccount ?? role.app,
        labels: { app: role.app, pod: pod.name },
        node: `n${pod.node}`,
        netns: pod.netnsPath,
        cgroup: pod.cgroupPath,
      },
    });
  }
  for (const s of spec.services) {
    docs.push({
      apiVersion: API_VERSION,
      kind: "Service",
      metadata: { name: s.name, namespace },
      spec: {
        addresses: [s.vip],
        ports: [{ name: "http", port: s.port, targetPort: s.targetPort, protocol: "TCP" }],
        selector: { app: s.app },
      },
    });
    if (s.loadBalancer) {
      docs.push({
        apiVersion: API_VERSION,
        kind: "TrafficPolicy",
        metadata: { name: s.name, namespace },
        spec: {
          targetRefs: [{ group: "", kind: "Service", name: s.name }],
          loadBalancer: { simple: s.loadBalancer },
        },
      });
    }
  }
  docs.push(...(spec.extra ?? []));
  return docs.map((d) => stringify(d)).join("---\n");
}

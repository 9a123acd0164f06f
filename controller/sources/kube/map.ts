// Pure mapping from Kubernetes objects to the mesh's resource documents (controller/api shapes).
// No I/O: the Kubernetes source feeds informer objects in and validates what comes out.
//
// Enrollment: a namespace joins the mesh with the label nodemesh.io/mesh=enabled; a pod opts out
// with nodemesh.io/mesh=disabled. Services are meshed only in enrolled namespaces: a Service VIP
// in the model makes every agent capture connections to it, and a Service whose pods are not
// enrolled would then have no endpoints, so clients would lose it.
// Readiness: a pod becomes a WorkloadEntry as soon as it is scheduled and has an IP (which the
// kubelet reports once the sandbox's network is set up), with spec.ready from its Ready condition:
// the agent captures it before its application's first connect, and endpointsOf serves only ready
// pods, as Kubernetes Endpoints do.
// Pending: a scheduled pod with no IP at all yet (a kubelet publishes it after the CNI ADD, which the
// chained plugin holds until the pod is enrolled) becomes a PendingWorkload: its identity facts for
// its node's agent, which enrolls it with the address from the CNI result. It never becomes an
// endpoint; a pod with only IPv6 addresses is not meshed at all.
// Not meshed: a scheduled pod of a namespace without the label, or labelled disabled, becomes an
// UnmeshedPod (its UID and node, nothing else) for its node's agent, which then lets the CNI plugin's
// ADD through at once. A pod whose namespace the controller has not seen yet is neither (the agent
// holds it, fail closed): the namespace watch may lag the pod watch, and guessing "not meshed" would
// let a pod of a just-created, labelled namespace start unmeshed.
import type { KubernetesObject, V1Namespace, V1Pod, V1Service } from "@kubernetes/client-node";
import { API_VERSION } from "../../api/index.ts";

export const MESH_LABEL = "nodemesh.io/mesh";
export const MESH_ENABLED = "enabled";
export const MESH_DISABLED = "disabled";
/** Annotations the agent's node module reads to find the pod on its node. */
export const POD_UID_ANNOTATION = "nodemesh.io/pod-uid";
export const QOS_ANNOTATION = "nodemesh.io/qos-class";

/** A document ready for validation, or the reason the object is not part of the mesh. */
export type Mapped = { doc: Record<string, unknown> } | { skip: string };

export function namespaceEnrolled(ns: V1Namespace | undefined): boolean {
  return ns?.metadata?.labels?.[MESH_LABEL] === MESH_ENABLED;
}

function firstIPv4(ips: ReadonlyArray<string | undefined>): string | undefined {
  return ips.find((ip): ip is string => typeof ip === "string" && /^\d+\.\d+\.\d+\.\d+$/.test(ip));
}

export function podReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/** The skip reason of a scheduled pod whose status has no address at all yet (see mapPod). */
export const NO_IP_YET = "pod has no IP address yet";

/** Why a pod is not a workload, or undefined when it is one. Ordered from cheapest to explain. */
export function podSkipReason(pod: V1Pod, ns: V1Namespace | undefined): string | undefined {
  if (!namespaceEnrolled(ns)) return `namespace not labelled ${MESH_LABEL}=${MESH_ENABLED}`;
  if (pod.metadata?.labels?.[MESH_LABEL] === MESH_DISABLED)
    return `pod labelled ${MESH_LABEL}=${MESH_DISABLED}`;
  if (pod.spec?.hostNetwork) return "pod uses the host network";
  if (pod.metadata?.deletionTimestamp) return "pod is terminating";
  const phase = pod.status?.phase;
  if (phase === "Succeeded" || phase === "Failed") return `pod ${phase.toLowerCase()}`;
  if (!pod.spec?.nodeName) return "pod not scheduled";
  if (!pod.metadata?.uid) return "pod has no uid";
  if (!pod.status?.podIP && !(pod.status?.podIPs ?? []).some((p) => p.ip)) return NO_IP_YET;
  if (!podIPv4(pod)) return "pod has no IPv4 address (nodemesh meshes IPv4 pods only)";
  return undefined;
}

function podIPv4(pod: V1Pod): string | undefined {
  return firstIPv4([pod.status?.podIP, ...(pod.status?.podIPs ?? []).map((p) => p.ip)]);
}

/**
 * The pod's cgroup as a kubelet with the systemd cgroup driver lays it out (the default of kubeadm
 * and every major distribution); the agent's node module also tries the cgroupfs layout.
 */
export function kubeletCgroup(uid: string, qosClass: string | undefined): string {
  const qos = (qosClass ?? "BestEffort").toLowerCase();
  const id = uid.replaceAll("-", "_");
  if (qos === "guaranteed") return `/kubepods.slice/kubepods-pod${id}.slice`;
  return `/kubepods.slice/kubepods-${qos}.slice/kubepods-${qos}-pod${id}.slice`;
}

/** Named TCP container ports, which Service targetPort names refer to. */
function namedPorts(pod: V1Pod): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  for (const c of pod.spec?.containers ?? [])
    for (const p of c.ports ?? [])
      if (p.name && (p.protocol ?? "TCP") === "TCP" && out[p.name] === undefined)
        out[p.name] = p.containerPort;
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Why the pod is not in the mesh by its labels (the namespace's or its own), if it is not. */
function optedOut(pod: V1Pod, ns: V1Namespace): string | undefined {
  if (!namespaceEnrolled(ns)) return `namespace not labelled ${MESH_LABEL}=${MESH_ENABLED}`;
  if (pod.metadata?.labels?.[MESH_LABEL] === MESH_DISABLED)
    return `pod labelled ${MESH_LABEL}=${MESH_DISABLED}`;
  return undefined;
}

/**
 * A pod that is not meshed as the UnmeshedPod its node's agent answers the CNI plugin with, or why it
 * needs none: the plugin never runs for host-network pods, nor for finished or unscheduled ones.
 */
function unmeshedPod(pod: V1Pod, reason: string): Mapped {
  const md = pod.metadata ?? {};
  const phase = pod.status?.phase;
  if (pod.spec?.hostNetwork) return { skip: `${reason}; pod uses the host network` };
  if (phase === "Succeeded" || phase === "Failed") return { skip: `${reason}; pod ${phase.toLowerCase()}` };
  if (!pod.spec?.nodeName || !md.uid) return { skip: `${reason}; pod not scheduled` };
  return {
    doc: {
      apiVersion: API_VERSION,
      kind: "UnmeshedPod",
      metadata: { name: md.name, namespace: md.namespace },
      spec: { podUid: md.uid, node: pod.spec.nodeName },
    },
  };
}

/**
 * A pod as a WorkloadEntry, as a PendingWorkload while it is scheduled with no IP yet, as an
 * UnmeshedPod when its labels keep it out of the mesh, or the reason it is none of these. Both carry the same metadata, identity, labels, cgroup and ports, so the entry the
 * agent builds from a PendingWorkload and the CNI result (controller/api/pending.ts) equals the one
 * sent once the IP is published, but for readiness.
 */
export function mapPod(pod: V1Pod, ns: V1Namespace | undefined): Mapped {
  // Unknown is not "not meshed": the agent holds the pod until the namespace is seen (re-mapped then).
  if (!ns) return { skip: `namespace ${pod.metadata?.namespace ?? "?"} not seen yet` };
  const out = optedOut(pod, ns);
  if (out) return unmeshedPod(pod, out);
  const skip = podSkipReason(pod, ns);
  if (skip && skip !== NO_IP_YET) return { skip };
  const md = pod.metadata ?? {};
  const uid = md.uid ?? "";
  const qos = pod.status?.qosClass;
  const ports = namedPorts(pod);
  const metadata = {
    name: md.name,
    namespace: md.namespace,
    annotations: { [POD_UID_ANNOTATION]: uid, [QOS_ANNOTATION]: qos ?? "BestEffort" },
  };
  if (skip === NO_IP_YET)
    return {
      doc: {
        apiVersion: API_VERSION,
        kind: "PendingWorkload",
        metadata,
        spec: {
          podUid: uid,
          serviceAccount: pod.spec?.serviceAccountName ?? "default",
          labels: md.labels ?? {},
          node: pod.spec?.nodeName,
          cgroup: kubeletCgroup(uid, qos),
          ...(ports ? { ports } : {}),
        },
      },
    };
  return {
    doc: {
      apiVersion: API_VERSION,
      kind: "WorkloadEntry",
      metadata,
      spec: {
        address: podIPv4(pod),
        serviceAccount: pod.spec?.serviceAccountName ?? "default",
        labels: md.labels ?? {},
        node: pod.spec?.nodeName,
        cgroup: kubeletCgroup(uid, qos),
        ...(ports ? { ports } : {}),
        ready: podReady(pod),
      },
    },
  };
}

export function mapService(svc: V1Service, ns: V1Namespace | undefined): Mapped {
  if (!namespaceEnrolled(ns)) return { skip: `namespace not labelled ${MESH_LABEL}=${MESH_ENABLED}` };
  const spec = svc.spec ?? {};
  if (spec.type === "ExternalName") return { skip: "ExternalName service (DNS only, no VIP)" };
  const addresses = [...new Set([spec.clusterIP, ...(spec.clusterIPs ?? [])])].filter(
    (ip): ip is string => firstIPv4([ip]) !== undefined,
  );
  if (addresses.length === 0) return { skip: "no IPv4 ClusterIP (headless or IPv6-only)" };
  const ports = (spec.ports ?? [])
    .filter((p) => (p.protocol ?? "TCP") === "TCP")
    .map((p) => ({
      ...(p.name ? { name: p.name } : {}),
      port: p.port,
      ...(p.targetPort !== undefined ? { targetPort: p.targetPort } : {}),
      protocol: "TCP",
      ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}),
    }));
  if (ports.length === 0) return { skip: "no TCP port (UDP and SCTP are not meshed)" };
  const md = svc.metadata ?? {};
  return {
    doc: {
      apiVersion: API_VERSION,
      kind: "Service",
      metadata: { name: md.name, namespace: md.namespace, ...(md.labels ? { labels: md.labels } : {}) },
      spec: { addresses, ports, ...(spec.selector ? { selector: spec.selector } : {}) },
    },
  };
}

/**
 * Any object as the server sends it. Typed clients turn timestamps into Dates on list but watch
 * events carry the JSON strings, so code reading timestamps accepts both.
 */
export type KubeObject = KubernetesObject & { spec?: unknown; status?: unknown };

/**
 * Our CRDs and the Gateway API routes map one to one: the server's metadata (uid, managedFields,
 * generation, the last-applied annotation) is dropped, and routes keep creationTimestamp, which
 * orders tied routes.
 */
export function mapCustom(obj: KubeObject, keepCreationTimestamp: boolean): Mapped {
  const md = obj.metadata ?? {};
  const ts: unknown = md.creationTimestamp;
  const created =
    ts instanceof Date ? ts.toISOString().replace(/\.\d{3}Z$/, "Z") : (ts as string | undefined);
  return {
    doc: {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      metadata: {
        name: md.name,
        namespace: md.namespace,
        ...(md.labels ? { labels: md.labels } : {}),
        ...(keepCreationTimestamp && created ? { creationTimestamp: created } : {}),
      },
      spec: obj.spec ?? {},
    },
  };
}

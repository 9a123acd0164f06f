// Pure matching helpers: label selectors, service endpoints, which policies apply to a workload,
// and Istio string matching (exact, "prefix*", "*suffix", "*"). The controller uses them to
// validate and to filter per node; the agent uses the same code to decide, so both agree.
import type {
  AuthorizationPolicy,
  LabelSelector,
  PeerAuthentication,
  Service,
  TargetRef,
  TrafficPolicy,
  WorkloadEntry,
} from "./resources.ts";

/** Root namespace: policies here apply mesh-wide (Istio's istio-system). */
export const DEFAULT_ROOT_NAMESPACE = "nodemesh-system";

/**
 * True when every label of `selector` is present with the same value in `labels`.
 * An empty selector matches everything; an absent one (undefined) matches nothing, as a
 * Kubernetes Service without selector has no endpoints.
 */
export function selectorMatches(
  selector: Record<string, string> | undefined,
  labels: Record<string, string>,
): boolean {
  if (selector === undefined) return false;
  // for…in, not Object.entries: this runs for every (selector, workload) pair; no allocation.
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

export interface Endpoint {
  /** The workload's address and the resolved target port. */
  address: string;
  port: number;
  /** Service port this endpoint serves. */
  servicePort: number;
  workload: WorkloadEntry;
}

/** The target port of `port` on workload `w`, or undefined when a named port is missing there. */
export function resolveTargetPort(
  port: Service["spec"]["ports"][number],
  w: WorkloadEntry,
): number | undefined {
  const t = port.targetPort ?? port.port;
  return typeof t === "number" ? t : w.spec.ports?.[t];
}

/**
 * Ready workloads of the service's namespace selected by it, one endpoint per (workload, port).
 * A not-ready workload (spec.ready false) is enrolled but gets no traffic, as Kubernetes Endpoints.
 */
export function endpointsOf(service: Service, workloads: Iterable<WorkloadEntry>): Endpoint[] {
  const out: Endpoint[] = [];
  for (const w of workloads) {
    if (w.spec.ready === false) continue;
    if (w.metadata.namespace !== service.metadata.namespace) continue;
    if (!selectorMatches(service.spec.selector, w.spec.labels)) continue;
    for (const p of service.spec.ports) {
      const port = resolveTargetPort(p, w);
      if (port !== undefined) out.push({ address: w.spec.address, port, servicePort: p.port, workload: w });
    }
  }
  return out;
}

/** Does `service` select workload `w` (same namespace, selector matches)? */
export function serviceSelects(service: Service, w: WorkloadEntry): boolean {
  return (
    w.metadata.namespace === service.metadata.namespace &&
    selectorMatches(service.spec.selector, w.spec.labels)
  );
}

function refersTo(refs: TargetRef[], policyNs: string, service: Service): boolean {
  return (
    service.metadata.namespace === policyNs &&
    refs.some((r) => r.kind === "Service" && r.name === service.metadata.name)
  );
}

/**
 * Does a workload-scoped policy (AuthorizationPolicy, PeerAuthentication) apply to workload `w`?
 * - in the root namespace without selector: every workload of the mesh;
 * - `selector.matchLabels`: workloads of the policy's namespace (of every namespace, for a
 *   policy in the root namespace) carrying those labels;
 * - `targetRefs` (AuthorizationPolicy only): workloads selected by the referenced Services;
 * - neither: every workload of the policy's namespace.
 * `services` is needed only for targetRefs.
 */
export function policyAppliesTo(
  policy: AuthorizationPolicy | PeerAuthentication,
  w: WorkloadEntry,
  services: Iterable<Service> = [],
  rootNamespace: string = DEFAULT_ROOT_NAMESPACE,
): boolean {
  const ns = policy.metadata.namespace;
  const inRoot = ns === rootNamespace;
  if (!inRoot && ns !== w.metadata.namespace) return false;
  const spec = policy.spec;
  if ("targetRefs" in spec && spec.targetRefs) {
    for (const s of services) if (refersTo(spec.targetRefs, ns, s) && serviceSelects(s, w)) return true;
    return false;
  }
  const sel: LabelSelector | undefined = spec.selector;
  if (sel) return selectorMatches(sel.matchLabels, w.spec.labels);
  return true;
}

/** Does a TrafficPolicy attach to `service` (a targetRef by name in the same namespace)? */
export function trafficPolicyTargets(policy: TrafficPolicy, service: Service): boolean {
  return refersTo(policy.spec.targetRefs, policy.metadata.namespace, service);
}

/**
 * Istio string match: exact, "prefix*", "*suffix", or "*". `*` means a non-empty value, as Istio
 * compiles it (regex `.+`, pilot/pkg/security/authz/matcher/string.go) and ztunnel matches it
 * (`StringMatch::Presence` is `!check.is_empty()`, src/rbac.rs): an unauthenticated peer, whose
 * principal is "", does not match `principals: ["*"]`. An absent value (undefined) matches nothing.
 * HTTP headers differ: there `*` is Envoy's present_match, which the agent handles itself.
 */
export function stringMatches(pattern: string, value: string | undefined): boolean {
  if (value === undefined) return false;
  if (pattern === "*") return value !== "";
  if (pattern.endsWith("*")) return value.startsWith(pattern.slice(0, -1));
  if (pattern.startsWith("*")) return value.endsWith(pattern.slice(1));
  return pattern === value;
}

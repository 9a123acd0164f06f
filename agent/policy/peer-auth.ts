// PeerAuthentication: which mTLS mode applies to a workload port. Precedence is Istio's: workload
// (selector) over namespace over mesh-wide (root namespace); portLevelMtls over the policy's mode; UNSET
// inherits; the top default is STRICT (the choice, stricter than Istio's PERMISSIVE).
//
// Node-to-node traffic is always mTLS (HBONE on 15008), so STRICT and PERMISSIVE differ only for
// plaintext arriving at a workload outside the tunnel: `plaintextPlan()` is what the datapath's kernel
// filter (native/bpf/ingress.bpf.c) enforces for a workload, per port.
import { policyAppliesTo, type PeerAuthentication, type WorkloadEntry } from "../../controller/api/index.ts";

export type EffectiveMtlsMode = "STRICT" | "PERMISSIVE";

/** A port whose mode differs from its workload's default. */
export interface PortMtls {
  readonly port: number;
  /** true: plaintext from outside the pod is refused on this port. */
  readonly strict: boolean;
}

/** PeerAuthentication as the datapath enforces it: a default for every port, and the exceptions. */
export interface MtlsPlan {
  /** true (STRICT): plaintext from outside the pod is refused on every port not in `ports`. */
  readonly strict: boolean;
  /** Target ports whose mode differs from `strict`, sorted by port, each once. */
  readonly ports: readonly PortMtls[];
}

export function resolveMtlsMode(
  policies: readonly PeerAuthentication[],
  workload: WorkloadEntry,
  port: number,
  rootNamespace: string,
): EffectiveMtlsMode {
  return resolve(policies, workload, port, rootNamespace);
}

/** `port` undefined: the workload-level mode, port-level settings ignored. */
function resolve(
  policies: readonly PeerAuthentication[],
  workload: WorkloadEntry,
  port: number | undefined,
  rootNamespace: string,
): EffectiveMtlsMode {
  const applying = policies.filter((p) => policyAppliesTo(p, workload, [], rootNamespace));
  const ns = workload.metadata.namespace;
  const levels = [
    applying.filter((p) => p.spec.selector !== undefined && p.metadata.namespace === ns),
    applying.filter((p) => p.spec.selector === undefined && p.metadata.namespace === ns),
    applying.filter((p) => p.metadata.namespace === rootNamespace && p.metadata.namespace !== ns),
  ];
  for (const level of levels) {
    for (const p of sortByName(level)) {
      const portMode = port === undefined ? undefined : p.spec.portLevelMtls?.[String(port)]?.mode;
      if (portMode && portMode !== "UNSET") return portMode;
      if (p.spec.mtls.mode !== "UNSET") return p.spec.mtls.mode;
    }
  }
  return "STRICT";
}

/**
 * What the datapath enforces for a workload: its workload-level mode as the default, and every port an
 * applying policy names in portLevelMtls whose resolved mode differs from it (resolved with the same
 * precedence as resolveMtlsMode, so a port exception of a lower level that a higher level overrides
 * is not an exception). A PERMISSIVE port opens that port only.
 */
export function plaintextPlan(
  policies: readonly PeerAuthentication[],
  workload: WorkloadEntry,
  rootNamespace: string,
): MtlsPlan {
  const strict = resolve(policies, workload, undefined, rootNamespace) === "STRICT";
  const named = new Set<number>();
  for (const p of policies) {
    if (!policyAppliesTo(p, workload, [], rootNamespace)) continue;
    // Only canonical keys of real ports: resolveMtlsMode looks a port up by String(port).
    for (const key of Object.keys(p.spec.portLevelMtls ?? {})) {
      const port = Number(key);
      if (String(port) === key && port >= 1 && port <= 65535) named.add(port);
    }
  }
  const ports: PortMtls[] = [];
  for (const port of [...named].sort((a, b) => a - b)) {
    const portStrict = resolveMtlsMode(policies, workload, port, rootNamespace) === "STRICT";
    if (portStrict !== strict) ports.push({ port, strict: portStrict });
  }
  return { strict, ports };
}

/** Whether the workload's default (every port without an exception) refuses plaintext. */
export function refusesPlaintext(
  policies: readonly PeerAuthentication[],
  workload: WorkloadEntry,
  rootNamespace: string,
): boolean {
  return resolve(policies, workload, undefined, rootNamespace) === "STRICT";
}

/** Two plans enforce the same thing (plans from plaintextPlan() are canonical: sorted, minimal). */
export function samePlan(a: MtlsPlan, b: MtlsPlan): boolean {
  return (
    a.strict === b.strict &&
    a.ports.length === b.ports.length &&
    a.ports.every((p, i) => p.port === b.ports[i]?.port && p.strict === b.ports[i]?.strict)
  );
}

/** Oldest-first is Istio's tie-break; without timestamps, name order keeps the choice deterministic. */
function sortByName(ps: readonly PeerAuthentication[]): PeerAuthentication[] {
  return [...ps].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
}

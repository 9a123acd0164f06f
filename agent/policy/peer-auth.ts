// PeerAuthentication: which mTLS mode applies to a workload port. Precedence is Istio's: workload
// (selector) over namespace over mesh-wide (root namespace); portLevelMtls over the policy's mode; UNSET
// inherits; the top default is STRICT (the choice, stricter than Istio's PERMISSIVE).
//
// Node-to-node traffic is always mTLS (HBONE on 15008), so STRICT and PERMISSIVE differ only for
// plaintext arriving at a workload outside the tunnel: `refusesPlaintext()` decides what the datapath's
// kernel filter (native/bpf/ingress.bpf.c) enforces for a workload.
import { policyAppliesTo, type PeerAuthentication, type WorkloadEntry } from "../../controller/api/index.ts";

export type EffectiveMtlsMode = "STRICT" | "PERMISSIVE";

export function resolveMtlsMode(
  policies: readonly PeerAuthentication[],
  workload: WorkloadEntry,
  port: number,
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
      const portMode = p.spec.portLevelMtls?.[String(port)]?.mode;
      if (portMode && portMode !== "UNSET") return portMode;
      if (p.spec.mtls.mode !== "UNSET") return p.spec.mtls.mode;
    }
  }
  return "STRICT";
}

/**
 * Whether the datapath refuses plaintext for the whole workload (the kernel filter is per workload, not
 * per port): the workload-level mode is STRICT and no applying policy opens a port as PERMISSIVE. A
 * port-level PERMISSIVE exception therefore admits plaintext on every port of that workload (fail open,
 * as the operator asked for plaintext somewhere); docs/datapath.md says so.
 */
export function refusesPlaintext(
  policies: readonly PeerAuthentication[],
  workload: WorkloadEntry,
  rootNamespace: string,
): boolean {
  if (resolveMtlsMode(policies, workload, 0, rootNamespace) !== "STRICT") return false;
  return !policies.some(
    (p) =>
      policyAppliesTo(p, workload, [], rootNamespace) &&
      Object.values(p.spec.portLevelMtls ?? {}).some((m) => m.mode === "PERMISSIVE"),
  );
}

/** Oldest-first is Istio's tie-break; without timestamps, name order keeps the choice deterministic. */
function sortByName(ps: readonly PeerAuthentication[]): PeerAuthentication[] {
  return [...ps].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
}

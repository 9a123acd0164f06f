// The cross-document checks of ExternalServices (kept beside model.ts, which calls them from buildModel):
// errors for what would make an original destination ambiguous in the agent (two external services on one
// address and port, an external address that is also a Service VIP or a workload's), warnings for an
// egress gateway that names no workload. Reporting goes through the caller's callbacks so the messages
// carry model.ts's file/document/resource context.
import { egressGatewayUid, keyString } from "../api/index.ts";
import type { ExternalService } from "../api/index.ts";
import type { MeshModel, SourcedResource } from "./model.ts";

export type Report = (e: SourcedResource, path: string, message: string) => void;

function describe(r: { kind: string; metadata: { namespace: string; name: string } }): string {
  return `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`;
}

/** Every address:port an external service claims for capture (the agent's lookup keys). */
function claimedAddresses(s: ExternalService): { key: string; path: string }[] {
  const out: { key: string; path: string }[] = [];
  const claim = (address: string, path: string) => {
    for (const p of s.spec.ports) out.push({ key: `${address}:${p.number}`, path });
  };
  (s.spec.addresses ?? []).forEach((a, i) => claim(a, `spec.addresses[${i}]`));
  (s.spec.endpoints ?? []).forEach((e, i) => claim(e.address, `spec.endpoints[${i}].address`));
  return out;
}

/**
 * Errors: a host:port or address:port claimed by two external services (the agent could not tell which
 * one a connection is for), and an external address that is a Service VIP:port or a workload address
 * (the mesh destination would shadow it, or it would shadow the mesh).
 */
export function externalServiceConflicts(
  entries: ReadonlyMap<string, SourcedResource>,
  report: Report,
): void {
  const hosts = new Map<string, SourcedResource>();
  const addresses = new Map<string, SourcedResource>();
  const vips = new Set<string>();
  const workloads = new Set<string>();
  for (const e of entries.values()) {
    const r = e.resource;
    if (r.kind === "Service")
      for (const a of r.spec.addresses) for (const p of r.spec.ports) vips.add(`${a}:${p.port}`);
    else if (r.kind === "WorkloadEntry") workloads.add(r.spec.address);
  }
  for (const e of entries.values()) {
    const r = e.resource;
    if (r.kind !== "ExternalService") continue;
    r.spec.hosts.forEach((h, i) => {
      for (const p of r.spec.ports) {
        const other = hosts.get(`${h}:${p.number}`);
        if (other && other !== e)
          report(
            e,
            `spec.hosts[${i}]`,
            `${h}:${p.number} is already declared by ${describe(other.resource)}`,
          );
        else hosts.set(`${h}:${p.number}`, e);
      }
    });
    for (const { key, path } of claimedAddresses(r)) {
      const address = key.slice(0, key.lastIndexOf(":"));
      const other = addresses.get(key);
      if (other && other !== e) report(e, path, `${key} is already claimed by ${describe(other.resource)}`);
      else if (vips.has(key))
        report(e, path, `${key} is a Service address; an external service cannot share it`);
      else if (workloads.has(address))
        report(e, path, `${address} is a workload address; an external service cannot share it`);
      else addresses.set(key, e);
    }
  }
}

/** Warnings: the egress gateway names no WorkloadEntry (connections to the service then fail). */
export function externalServiceReferences(
  model: MeshModel,
  r: ExternalService,
  report: (path: string, message: string) => void,
): void {
  const uid = egressGatewayUid(r.spec, r.metadata.namespace);
  if (!uid) return;
  const [namespace, name] = uid.split("/") as [string, string];
  if (!model.entries.has(keyString({ kind: "WorkloadEntry", namespace, name })))
    report(
      "spec.egressGateway",
      `workload ${uid} does not exist; connections to this service fail until it does (no direct fallback)`,
    );
}

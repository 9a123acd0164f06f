// Pure: the controller's judgement of one Kubernetes object after validation, in the vocabulary
// users know: our CRDs say Accepted or Invalid; routes use Gateway API's reasons (GAMMA):
// Accepted/UnsupportedValue/NoMatchingParent and ResolvedRefs/BackendNotFound/RefNotPermitted.
import type { ValidationResult } from "../../api/index.ts";
import type { KubeObject } from "./map.ts";
import type { CustomKind, Verdict } from "./status.ts";

type ServiceExists = (name: string, namespace: string) => boolean;

interface Ref {
  group?: string;
  kind?: string;
  name?: string;
  namespace?: string;
}

const isService = (r: Ref) => (r.group ?? "") === "" && (r.kind ?? "Service") === "Service";

export function verdictOf(
  r: ValidationResult,
  obj: KubeObject,
  kind: CustomKind | undefined,
  hadPrevious: boolean,
  serviceExists: ServiceExists,
): Verdict {
  if (!r.ok) {
    const what = r.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ");
    const keep = hadPrevious ? "the previous version stays in effect" : "it is not applied";
    return {
      accepted: false,
      reason: kind?.route ? "UnsupportedValue" : "Invalid",
      message: `${what}; ${keep}`,
    };
  }
  if (kind?.route) return routeVerdict(obj, serviceExists);
  return { accepted: true, reason: "Accepted", message: "accepted by the nodemesh controller" };
}

function routeVerdict(obj: KubeObject, serviceExists: ServiceExists): Verdict {
  const ns = obj.metadata?.namespace ?? "default";
  const spec = (obj.spec ?? {}) as { parentRefs?: Ref[]; rules?: { backendRefs?: Ref[] }[] };
  const parents = (spec.parentRefs ?? []).filter((p) => isService({ ...p, kind: p.kind ?? "Gateway" }));
  const missingParent = parents.find((p) => !serviceExists(p.name ?? "", p.namespace ?? ns));
  const refs = resolveBackends(spec.rules ?? [], ns, serviceExists);
  if (missingParent)
    return {
      accepted: false,
      reason: "NoMatchingParent",
      message: `parent Service ${missingParent.namespace ?? ns}/${missingParent.name} does not exist`,
      refs,
    };
  return { accepted: true, reason: "Accepted", message: "route attached to its Service parents", refs };
}

function resolveBackends(
  rules: readonly { backendRefs?: Ref[] }[],
  ns: string,
  serviceExists: ServiceExists,
): NonNullable<Verdict["refs"]> {
  for (const rule of rules)
    for (const b of rule.backendRefs ?? []) {
      if (!isService(b))
        return {
          resolved: false,
          reason: "InvalidKind",
          message: `backendRef kind ${b.kind} is not supported`,
        };
      if (b.namespace && b.namespace !== ns)
        return {
          resolved: false,
          reason: "RefNotPermitted",
          message: `backendRef to namespace ${b.namespace}: cross-namespace references need a ReferenceGrant, not supported yet`,
        };
      if (!serviceExists(b.name ?? "", ns))
        return {
          resolved: false,
          reason: "BackendNotFound",
          message: `backend Service ${ns}/${b.name} does not exist`,
        };
    }
  return { resolved: true, reason: "ResolvedRefs", message: "all backend references resolved" };
}

// Cross-document checks of a RateLimitPolicy that only warn (the policy is accepted, as Kubernetes
// accepts a policy whose target does not exist yet): a target Service or route that is missing, and a
// route target whose `sectionName` names no rule of that route (the limit then applies to nothing).
// Pure: the model passes its entry lookup in.
import { keyString } from "../api/index.ts";
import type { GRPCRoute, HTTPRoute, RateLimitPolicy, Resource } from "../api/index.ts";

export interface RefWarning {
  readonly path: string;
  readonly message: string;
}

export function rateLimitReferences(
  r: RateLimitPolicy,
  lookup: (key: string) => Resource | undefined,
): RefWarning[] {
  const ns = r.metadata.namespace;
  const out: RefWarning[] = [];
  r.spec.targetRefs.forEach((t, i) => {
    const path = `spec.targetRefs[${i}]`;
    const target = lookup(keyString({ kind: t.kind, namespace: ns, name: t.name }));
    if (!target) {
      out.push({
        path,
        message: `${t.kind} ${ns}/${t.name} does not exist (the limit applies to nothing yet)`,
      });
      return;
    }
    if (t.kind === "Service") return;
    const rules = (target as HTTPRoute | GRPCRoute).spec.rules as readonly { name?: string | undefined }[];
    if (!rules.some((rule) => rule.name === t.sectionName))
      out.push({
        path: `${path}.sectionName`,
        message: `${t.kind} ${ns}/${t.name} has no rule named ${t.sectionName} (the limit applies to nothing yet)`,
      });
  });
  return out;
}

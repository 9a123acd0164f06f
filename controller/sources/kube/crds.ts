// CustomResourceDefinitions generated from the zod schemas in controller/api, so the CRDs the
// chart installs cannot drift from what the controller accepts (test/unit/controller/kube-crds
// compares charts/nodemesh/crds/ with this output; `node controller/sources/kube/crds.ts <dir>`
// rewrites them).
//
// The JSON Schema zod emits is made structural (what apiextensions.k8s.io/v1 requires): unions of
// an integer and a string become x-kubernetes-int-or-string, other unions keep their fields
// (x-kubernetes-preserve-unknown-fields), `const` becomes a one-value enum, and what OpenAPI v3.0
// cannot say (propertyNames, additionalProperties: false, numeric exclusive bounds) is dropped or
// rewritten. The server thus checks types, enums, patterns and bounds; cross-field rules (the
// zod refinements) stay with the controller, which reports them in status. No CEL: it would
// stop the CRDs from installing on servers older than 1.25.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { z } from "zod";
import {
  AuthorizationPolicySpec,
  ExternalServiceSpec,
  FaultInjectionSettings,
  PeerAuthenticationSpec,
  RateLimitPolicySpec,
  TrafficPolicySpec,
} from "../../api/index.ts";
import { GrpcRouteSpec, HttpRouteSpec } from "../../api/routes.ts";
import { KubeGatewaySpec } from "./gateway.ts";

type Json = Record<string, unknown>;

export interface CrdSpec {
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  shortNames?: string[];
  schema: z.ZodType;
}

export const MESH_CRDS: readonly CrdSpec[] = [
  {
    group: "nodemesh.io",
    version: "v1alpha1",
    kind: "AuthorizationPolicy",
    plural: "authorizationpolicies",
    singular: "authorizationpolicy",
    schema: AuthorizationPolicySpec,
  },
  {
    group: "nodemesh.io",
    version: "v1alpha1",
    kind: "PeerAuthentication",
    plural: "peerauthentications",
    singular: "peerauthentication",
    schema: PeerAuthenticationSpec,
  },
  {
    group: "nodemesh.io",
    version: "v1alpha1",
    kind: "TrafficPolicy",
    plural: "trafficpolicies",
    singular: "trafficpolicy",
    schema: TrafficPolicySpec,
  },
  {
    group: "nodemesh.io",
    version: "v1alpha1",
    kind: "FaultInjection",
    plural: "faultinjections",
    singular: "faultinjection",
    schema: FaultInjectionSettings,
  },
  {
    group: "nodemesh.io",
    version: "v1alpha1",
    kind: "RateLimitPolicy",
    plural: "ratelimitpolicies",
    singular: "ratelimitpolicy",
    schema: RateLimitPolicySpec,
  },
  {
    group: "nodemesh.io",
    version: "v1alpha1",
    kind: "ExternalService",
    plural: "externalservices",
    singular: "externalservice",
    schema: ExternalServiceSpec,
  },
];

/**
 * Gateway API route and Gateway CRDs cut down to what the mesh validates. Clusters install the upstream
 * Gateway API CRDs; these exist for servers that cannot (the tests' 1.20 server rejects their CEL).
 */
export const ROUTE_CRDS: readonly CrdSpec[] = [
  {
    group: "gateway.networking.k8s.io",
    version: "v1",
    kind: "HTTPRoute",
    plural: "httproutes",
    singular: "httproute",
    schema: HttpRouteSpec,
  },
  {
    group: "gateway.networking.k8s.io",
    version: "v1",
    kind: "GRPCRoute",
    plural: "grpcroutes",
    singular: "grpcroute",
    schema: GrpcRouteSpec,
  },
  {
    group: "gateway.networking.k8s.io",
    version: "v1",
    kind: "Gateway",
    plural: "gateways",
    singular: "gateway",
    schema: KubeGatewaySpec,
  },
];

function intOrString(branches: Json[]): boolean {
  const types = new Set(branches.map((b) => b.type));
  return branches.length === 2 && types.has("string") && (types.has("integer") || types.has("number"));
}

/** JSON Schema (draft 2020-12, from zod) → a structural OpenAPI v3 schema. */
export function structural(s: Json): Json {
  const union = (s.anyOf ?? s.oneOf) as Json[] | undefined;
  if (union) {
    const branches = union.filter((b) => b.type !== "null");
    if (intOrString(branches)) return { "x-kubernetes-int-or-string": true };
    if (branches.length === 1 && branches[0]) return { ...structural(branches[0]), nullable: true };
    const type = branches.every((b) => b.type === "object") ? "object" : undefined;
    return type
      ? { type, "x-kubernetes-preserve-unknown-fields": true }
      : { "x-kubernetes-preserve-unknown-fields": true };
  }
  const out: Json = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === "$schema" || k === "propertyNames" || k === "$id" || k === "id") continue;
    if (k === "additionalProperties") {
      if (typeof v === "object" && v !== null) out[k] = structural(v as Json);
      continue; // false: unknown fields are pruned by the server (and flagged by the controller)
    }
    if (k === "const") out.enum = [v];
    else if (k === "exclusiveMinimum" || k === "exclusiveMaximum") {
      out[k === "exclusiveMinimum" ? "minimum" : "maximum"] = v;
      out[k] = true;
    } else if (k === "properties") {
      out[k] = Object.fromEntries(
        Object.entries(v as Record<string, Json>).map(([p, ps]) => [p, structural(ps)]),
      );
    } else if (k === "items" && typeof v === "object" && v !== null && !Array.isArray(v))
      out[k] = structural(v as Json);
    else if (k === "allOf") Object.assign(out, ...(v as Json[]).map(structural));
    else out[k] = v;
  }
  if (out.type === undefined && out.enum === undefined && !out["x-kubernetes-int-or-string"])
    out["x-kubernetes-preserve-unknown-fields"] = true;
  return out;
}

/** One CRD object (apiextensions.k8s.io/v1) with a status subresource and an Accepted column. */
export function crdFor(c: CrdSpec): Json {
  const spec = structural(z.toJSONSchema(c.schema, { io: "input", unrepresentable: "any" }) as Json);
  const accepted =
    c.group === "gateway.networking.k8s.io" && c.kind !== "Gateway"
      ? '.status.parents[0].conditions[?(@.type=="Accepted")].status'
      : '.status.conditions[?(@.type=="Accepted")].status';
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${c.plural}.${c.group}`,
      labels: { "app.kubernetes.io/part-of": "nodemesh" },
      // *.k8s.io groups are protected: the server wants the API review that approved them.
      ...(c.group.endsWith(".k8s.io")
        ? {
            annotations: {
              "api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api/pull/3328",
            },
          }
        : {}),
    },
    spec: {
      group: c.group,
      scope: "Namespaced",
      names: {
        kind: c.kind,
        listKind: `${c.kind}List`,
        plural: c.plural,
        singular: c.singular,
        categories: ["nodemesh"],
        ...(c.shortNames ? { shortNames: c.shortNames } : {}),
      },
      versions: [
        {
          name: c.version,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: "Accepted", type: "string", jsonPath: accepted },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
          schema: {
            openAPIV3Schema: {
              type: "object",
              required: ["spec"],
              properties: {
                apiVersion: { type: "string" },
                kind: { type: "string" },
                metadata: { type: "object" },
                spec,
                status: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
              },
            },
          },
        },
      ],
    },
  };
}

export function crdYaml(c: CrdSpec): string {
  return `# Generated from controller/api by controller/sources/kube/crds.ts; do not edit.\n${stringify(crdFor(c), { lineWidth: 0 })}`;
}

export function crdFileName(c: CrdSpec): string {
  return `${c.plural}.${c.group}.yaml`;
}

if (import.meta.main) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write("usage: node controller/sources/kube/crds.ts <dir>\n");
    process.exit(2);
  }
  for (const c of MESH_CRDS) writeFileSync(join(dir, crdFileName(c)), crdYaml(c));
}

// Pure: Gateway API `Gateway`s and `kubernetes.io/tls` Secrets as the mesh's Gateway and
// TLSCertificate documents, and the Gateway's Accepted/Programmed verdict. No I/O.
//
// On Kubernetes a listener's tls.certificateRefs name Secrets (group "", kind Secret, the Gateway API
// defaults); the wire's Gateway names TLSCertificates. A referenced Secret becomes a TLSCertificate of
// the same namespace and name carrying its PEMs, so agents need no access to Secrets and only the nodes
// that run the Gateway receive the key (MeshModel.policyKeysForNode). Unreferenced Secrets never enter
// the model. Gateways of another class belong to another implementation: skipped, no status written.
// Cross-namespace certificateRefs need a ReferenceGrant, which is not read yet: refused.
import { X509Certificate, createPrivateKey } from "node:crypto";
import type { V1Secret } from "@kubernetes/client-node";
import { z } from "zod";
import { GATEWAY_CLASS_NAME } from "../../api/index.ts";
import type { KubeObject, Mapped } from "./map.ts";
import type { Verdict } from "./status.ts";

export const TLS_SECRET_TYPE = "kubernetes.io/tls";
const TLS_CERT_API_VERSION = "nodemesh.io/v1alpha1";

interface KubeCertRef {
  group?: string;
  kind?: string;
  name?: string;
  namespace?: string;
}
interface KubeListener {
  name?: string;
  protocol?: string;
  tls?: { certificateRefs?: KubeCertRef[] } & Record<string, unknown>;
}
interface KubeGatewaySpec {
  gatewayClassName?: string;
  listeners?: (KubeListener & Record<string, unknown>)[];
}

/** A certificateRef as the Gateway API defaults it: group "" and kind Secret. */
const isSecretRef = (r: KubeCertRef) => (r.group ?? "") === "" && (r.kind ?? "Secret") === "Secret";

/** A listener's reference to a Secret, with where it sits (for messages). */
export interface SecretRef {
  namespace: string;
  name: string;
  listener: string;
  path: string;
}

export function isOurKubeGateway(obj: KubeObject): boolean {
  return (obj.spec as KubeGatewaySpec | undefined)?.gatewayClassName === GATEWAY_CLASS_NAME;
}

/** The Secrets a Gateway's listeners name (cross-namespace ones included: the verdict refuses them). */
export function secretRefsOf(obj: KubeObject): SecretRef[] {
  const ns = obj.metadata?.namespace ?? "default";
  const out: SecretRef[] = [];
  ((obj.spec as KubeGatewaySpec | undefined)?.listeners ?? []).forEach((l, i) =>
    (l.tls?.certificateRefs ?? []).forEach((r, j) => {
      if (isSecretRef(r) && r.name)
        out.push({
          namespace: r.namespace ?? ns,
          name: r.name,
          listener: l.name ?? `#${i}`,
          path: `spec.listeners[${i}].tls.certificateRefs[${j}]`,
        });
    }),
  );
  return out;
}

/**
 * The Gateway as the wire's document: Secret refs become TLSCertificate refs of the same name;
 * annotations keep only nodemesh.io/* keys (the gateway nodes and service account), not kubectl's
 * last-applied copy. Other refs are left as they are, for the schema to name them.
 */
export function mapGateway(obj: KubeObject): Mapped {
  if (!isOurKubeGateway(obj)) return { skip: `gatewayClassName is not "${GATEWAY_CLASS_NAME}"` };
  const md = obj.metadata ?? {};
  const spec = (obj.spec ?? {}) as KubeGatewaySpec & Record<string, unknown>;
  const listeners = (spec.listeners ?? []).map((l) => {
    if (!l.tls?.certificateRefs) return l;
    const certificateRefs = l.tls.certificateRefs.map((r) =>
      isSecretRef(r)
        ? {
            group: "nodemesh.io",
            kind: "TLSCertificate",
            name: r.name,
            ...(r.namespace !== undefined ? { namespace: r.namespace } : {}),
          }
        : r,
    );
    return { ...l, tls: { ...l.tls, certificateRefs } };
  });
  const annotations = Object.fromEntries(
    Object.entries(md.annotations ?? {}).filter(([k]) => k.startsWith("nodemesh.io/")),
  );
  return {
    doc: {
      apiVersion: obj.apiVersion,
      kind: "Gateway",
      metadata: {
        name: md.name,
        namespace: md.namespace,
        ...(md.labels ? { labels: md.labels } : {}),
        ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
      },
      spec: { ...spec, listeners },
    },
  };
}

/** What is wrong with a Secret as a serving certificate, or undefined when it parses and matches. */
export function tlsSecretProblem(secret: V1Secret): string | undefined {
  const where = `Secret ${secret.metadata?.namespace}/${secret.metadata?.name}`;
  if (secret.type !== TLS_SECRET_TYPE) return `${where} is of type ${secret.type}, not ${TLS_SECRET_TYPE}`;
  const pems = secretPems(secret);
  if (!pems.cert) return `${where} has no data["tls.crt"]`;
  if (!pems.key) return `${where} has no data["tls.key"]`;
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(pems.cert);
  } catch (err) {
    return `${where}: tls.crt is not a PEM certificate (${(err as Error).message})`;
  }
  try {
    if (!x509.checkPrivateKey(createPrivateKey(pems.key))) return `${where}: tls.key does not match tls.crt`;
  } catch (err) {
    return `${where}: tls.key is not a PEM private key (${(err as Error).message})`;
  }
  return undefined;
}

function secretPems(secret: V1Secret): { cert: string; key: string } {
  const decode = (v: string | undefined) => (v ? Buffer.from(v, "base64").toString("utf8") : "");
  return { cert: decode(secret.data?.["tls.crt"]), key: decode(secret.data?.["tls.key"]) };
}

/** A referenced, valid TLS Secret as a TLSCertificate with its PEMs inline (check tlsSecretProblem first). */
export function mapTlsSecret(secret: V1Secret): Mapped {
  const md = secret.metadata ?? {};
  const { cert, key } = secretPems(secret);
  return {
    doc: {
      apiVersion: TLS_CERT_API_VERSION,
      kind: "TLSCertificate",
      metadata: { name: md.name, namespace: md.namespace },
      spec: { certificatePem: cert, privateKeyPem: key },
    },
  };
}

/** Whether each referenced Secret is usable: undefined = usable, else why not (missing, invalid). */
export type SecretState = (namespace: string, name: string) => string | undefined;

/**
 * Accepted: the Gateway's spec is valid (its schema and ours). Programmed: additionally every listener's
 * certificateRefs resolve to usable Secrets of its namespace (Gateway API reasons Invalid /
 * Programmed); a listener whose certificate is missing cannot serve TLS, so the Gateway is not fully
 * programmed, while its other listeners are.
 */
export function gatewayVerdict(
  obj: KubeObject,
  valid: { ok: true } | { ok: false; message: string },
  secret: SecretState,
): Verdict {
  if (!valid.ok) return { accepted: false, reason: "Invalid", message: valid.message };
  const ns = obj.metadata?.namespace ?? "default";
  const problems: string[] = [];
  for (const r of secretRefsOf(obj)) {
    if (r.namespace !== ns) {
      problems.push(
        `${r.path}: Secret ${r.namespace}/${r.name} is in another namespace (a ReferenceGrant would be needed, not supported yet)`,
      );
      continue;
    }
    const why = secret(r.namespace, r.name);
    if (why !== undefined) problems.push(`${r.path} (listener ${r.listener}): ${why}`);
  }
  const programmed =
    problems.length === 0
      ? { ok: true, reason: "Programmed", message: "the gateway nodes' agents were sent this Gateway" }
      : { ok: false, reason: "Invalid", message: problems.join("; ") };
  return {
    accepted: true,
    reason: "Accepted",
    message: "accepted by the nodemesh controller",
    programmed,
  };
}

const Name = z.string().min(1).max(253);
/**
 * The Gateway fields the mesh reads, in their Kubernetes form (certificateRefs name Secrets), for the
 * test CRD that stands in for the upstream one where the server cannot install it (crds.ts
 * ROUTE_CRDS: upstream's CEL needs 1.25+). The controller validates the mapped document, not this.
 */
export const KubeGatewaySpec = z.object({
  gatewayClassName: Name,
  listeners: z
    .array(
      z.object({
        name: Name,
        hostname: z.string().max(253).optional(),
        port: z.number().int().min(1).max(65535),
        protocol: z.string().min(1),
        tls: z
          .object({
            mode: z.enum(["Terminate", "Passthrough"]).optional(),
            certificateRefs: z
              .array(
                z.object({
                  group: z.string().optional(),
                  kind: z.string().optional(),
                  name: Name,
                  namespace: z.string().optional(),
                }),
              )
              .max(64)
              .optional(),
          })
          .optional(),
        allowedRoutes: z
          .object({
            namespaces: z.object({ from: z.enum(["All", "Same", "Selector"]).optional() }).optional(),
            kinds: z.array(z.object({ group: z.string().optional(), kind: z.string() })).optional(),
          })
          .optional(),
      }),
    )
    .min(1)
    .max(64),
  addresses: z
    .array(z.object({ type: z.string().optional(), value: z.string() }))
    .max(16)
    .optional(),
});

// SPIFFE identities of workloads: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.
// Pure functions shared by the CA (which identity may a node ask for), the agent (which identity
// does a peer certificate carry) and policy matching (Istio principals omit "spiffe://").
import type { WorkloadEntry } from "./resources.ts";

export const DEFAULT_TRUST_DOMAIN = "cluster.local";

/** SPIFFE-ID spec: trust domain is lowercase [a-z0-9.-_]; path segments [a-zA-Z0-9.-_]. */
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
const SEGMENT = /^[a-zA-Z0-9._-]+$/;

export interface SpiffeId {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

export function formatSpiffeId(id: SpiffeId): string {
  return `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** The identity a workload's certificate carries. */
export function spiffeIdOf(
  workload:
    | Pick<WorkloadEntry, "metadata" | "spec">
    | { metadata: { namespace: string }; spec: { serviceAccount: string } },
  trustDomain: string,
): string {
  return formatSpiffeId({
    trustDomain,
    namespace: workload.metadata.namespace,
    serviceAccount: workload.spec.serviceAccount,
  });
}

/**
 * Parses a workload SPIFFE ID of the mesh's shape; returns undefined for anything else
 * (another path shape, a query or fragment, bad characters, `.`/`..` segments).
 */
export function parseSpiffeId(uri: string): SpiffeId | undefined {
  if (!uri.startsWith("spiffe://") || uri.length > 2048) return undefined;
  const rest = uri.slice("spiffe://".length);
  const parts = rest.split("/");
  if (parts.length !== 5) return undefined;
  const [trustDomain, ns, namespace, sa, serviceAccount] = parts as [string, string, string, string, string];
  if (!TRUST_DOMAIN.test(trustDomain) || ns !== "ns" || sa !== "sa") return undefined;
  for (const seg of [namespace, serviceAccount]) {
    if (!SEGMENT.test(seg) || seg === "." || seg === "..") return undefined;
  }
  return { trustDomain, namespace, serviceAccount };
}

/** Istio principal form ("cluster.local/ns/a/sa/b") of a SPIFFE ID; leaves other strings alone. */
export function principalOf(spiffeId: string): string {
  return spiffeId.startsWith("spiffe://") ? spiffeId.slice("spiffe://".length) : spiffeId;
}

/** What policy matching knows of a peer; "" for whatever is unknown (no identity, or another shape). */
export interface PeerIdentity {
  /** Istio principal form, "<td>/ns/<ns>/sa/<sa>"; "" without a SPIFFE ID. */
  readonly principal: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

const NO_PEER: PeerIdentity = Object.freeze({ principal: "", namespace: "", serviceAccount: "" });

/**
 * The peer of a connection as AuthorizationPolicy sees it. Only a `spiffe://` URI is an identity
 * (ztunnel's `matches_principal` refuses anything else); namespace and service account come from
 * the mesh shape, so a SPIFFE ID of another shape keeps its principal but matches no namespace.
 */
export function peerIdentityOf(spiffeId: string | undefined): PeerIdentity {
  if (!spiffeId?.startsWith("spiffe://")) return NO_PEER;
  const id = parseSpiffeId(spiffeId);
  return {
    principal: principalOf(spiffeId),
    namespace: id?.namespace ?? "",
    serviceAccount: id?.serviceAccount ?? "",
  };
}

// The ingress kinds: Gateway API `Gateway` (gateway.networking.k8s.io/v1, the fields an ingress on plain
// hosts needs) and `TLSCertificate` (nodemesh.io/v1alpha1: a certificate/key file pair on the gateway's
// nodes, what a listener's tls.certificateRefs name where Kubernetes would name a Secret). Which nodes run a
// Gateway, and the service account of its identity, are annotations (docs/ingress.md). Schemas + inferred
// types + the pure helpers the controller (CA node scoping) and the agent (the gateway role) share.
// Self-contained like route-parts.ts: resources.ts imports this file, so it must not import resources.ts.
// Invariant: the output of every schema is valid input to it (the wire is parsed twice).
import { z } from "zod";
import { formatSpiffeId } from "./identity.ts";
import {
  GATEWAY_API_VERSION,
  GatewayPort,
  Hostname,
  ObjectName,
  RouteMetadata,
  RouteNamespace,
  SectionName,
} from "./route-parts.ts";

/** Gateways of this class are ours; the agent ignores any other class (another implementation's). */
export const GATEWAY_CLASS_NAME = "nodemesh";
/** Comma-separated node names that run the Gateway; only they get its identity's certificate. */
export const GATEWAY_NODES_ANNOTATION = "nodemesh.io/gateway-nodes";
/** The service account of the Gateway's SPIFFE ID; default: the Gateway's name. */
export const GATEWAY_SERVICE_ACCOUNT_ANNOTATION = "nodemesh.io/gateway-service-account";
const TLS_CERT_API_VERSION = "nodemesh.io/v1alpha1";
/**
 * How many proxies in front of the Gateway (load balancers) append to X-Forwarded-For and are trusted to:
 * the original client (`remoteIpBlocks`, `remote.ip`) is that many entries from the right of the header
 * the Gateway receives (Envoy's xff_num_trusted_hops, Istio's gatewayTopology.numTrustedProxies). Default 0:
 * no X-Forwarded-For is believed.
 */
export const GATEWAY_TRUSTED_PROXIES_ANNOTATION = "nodemesh.io/num-trusted-proxies";
const MAX_TRUSTED_PROXIES = 16;
const NODE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SA_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export const CertificateRef = z
  .object({
    group: z.literal("nodemesh.io", {
      error:
        'group must be "nodemesh.io": certificateRefs name a TLSCertificate (on Kubernetes: a Secret of type kubernetes.io/tls, group "" and kind Secret)',
    }),
    kind: z.literal("TLSCertificate", {
      error: 'kind must be "TLSCertificate" (a certFile/keyFile pair; on Kubernetes: kind Secret)',
    }),
    name: ObjectName,
    namespace: RouteNamespace.optional(),
  })
  .strict();

export const GatewayTls = z
  .object({
    mode: z
      .literal("Terminate", { error: 'tls.mode must be "Terminate" (Passthrough is not supported)' })
      .default("Terminate"),
    certificateRefs: z
      .array(CertificateRef)
      .min(1, { error: "an HTTPS listener needs at least one certificateRef" })
      .max(64, { error: "at most 64 certificateRefs" }),
  })
  .strict();

export const RouteGroupKind = z
  .object({
    group: z
      .literal("gateway.networking.k8s.io", { error: 'group must be "gateway.networking.k8s.io"' })
      .default("gateway.networking.k8s.io"),
    kind: z.enum(["HTTPRoute", "GRPCRoute"], { error: "kind must be HTTPRoute or GRPCRoute" }),
  })
  .strict();

export const AllowedRoutes = z
  .object({
    namespaces: z
      .object({
        from: z
          .enum(["Same", "All"], {
            error:
              "from must be Same or All (Selector needs namespace labels, which plain hosts do not have)",
          })
          .default("Same"),
      })
      .strict()
      .default({ from: "Same" }),
    kinds: z.array(RouteGroupKind).max(8, { error: "at most 8 kinds" }).optional(),
  })
  .strict();

export const Listener = z
  .object({
    name: SectionName,
    /** Absent: every hostname. A wildcard (`*.example.com`) matches any number of labels before it. */
    hostname: Hostname.optional(),
    port: GatewayPort,
    protocol: z.enum(["HTTP", "HTTPS"], {
      error: "protocol must be HTTP or HTTPS (TLS, TCP and UDP listeners are not supported)",
    }),
    tls: GatewayTls.optional(),
    allowedRoutes: AllowedRoutes.default({ namespaces: { from: "Same" } }),
  })
  .strict()
  .superRefine((l, ctx) => {
    if (l.protocol === "HTTPS" && !l.tls)
      ctx.addIssue({ code: "custom", message: "an HTTPS listener needs tls.certificateRefs", path: ["tls"] });
    if (l.protocol === "HTTP" && l.tls)
      ctx.addIssue({ code: "custom", message: "tls must not be set on an HTTP listener", path: ["tls"] });
  });

export const GatewayAddress = z
  .object({
    type: z.literal("IPAddress", { error: 'type must be "IPAddress"' }).default("IPAddress"),
    value: z.ipv4({ error: "value must be an IPv4 address (a.b.c.d)" }),
  })
  .strict();

export const GatewaySpec = z
  .object({
    gatewayClassName: ObjectName,
    listeners: z
      .array(Listener)
      .min(1, { error: "a Gateway needs at least one listener" })
      .max(64, { error: "at most 64 listeners" })
      .superRefine(listenerConflicts),
    /** The addresses to listen on, among those of each gateway node; absent: every address (0.0.0.0). */
    addresses: z.array(GatewayAddress).max(16, { error: "at most 16 addresses" }).optional(),
  })
  .strict();

/** The CRD's unique names, and ours: one protocol per port, one listener per (port, hostname). */
function listenerConflicts(listeners: readonly z.infer<typeof Listener>[], ctx: z.RefinementCtx): void {
  const names = new Set<string>();
  const protocols = new Map<number, string>();
  const hosts = new Set<string>();
  listeners.forEach((l, i) => {
    if (names.has(l.name))
      ctx.addIssue({ code: "custom", message: `duplicate listener name "${l.name}"`, path: [i, "name"] });
    names.add(l.name);
    const proto = protocols.get(l.port);
    if (proto !== undefined && proto !== l.protocol)
      ctx.addIssue({
        code: "custom",
        message: `port ${l.port} is already an ${proto} listener; listeners on one port share its protocol`,
        path: [i, "protocol"],
      });
    protocols.set(l.port, l.protocol);
    const host = `${l.port}/${l.hostname ?? ""}`;
    if (hosts.has(host))
      ctx.addIssue({
        code: "custom",
        message: `another listener already serves port ${l.port} for ${l.hostname ?? "every hostname"}`,
        path: [i, "hostname"],
      });
    hosts.add(host);
  });
}

export const Gateway = z
  .object({
    apiVersion: z.literal(GATEWAY_API_VERSION, { error: `apiVersion must be "${GATEWAY_API_VERSION}"` }),
    kind: z.literal("Gateway"),
    metadata: RouteMetadata,
    spec: GatewaySpec,
  })
  .strict()
  .superRefine((g, ctx) => {
    const a = g.metadata.annotations ?? {};
    const at = (key: string) => ["metadata", "annotations", key];
    const nodes = a[GATEWAY_NODES_ANNOTATION];
    if (nodes === undefined)
      ctx.addIssue({
        code: "custom",
        message: `annotation ${GATEWAY_NODES_ANNOTATION} must name the node(s) that run the Gateway ("n1" or "n1,n2")`,
        path: ["metadata", "annotations"],
      });
    else
      for (const n of nodes.split(","))
        if (!NODE_NAME.test(n.trim()))
          ctx.addIssue({
            code: "custom",
            message: `"${n.trim()}" is not a node name (a lowercase DNS name); list nodes separated by commas`,
            path: at(GATEWAY_NODES_ANNOTATION),
          });
    const sa = a[GATEWAY_SERVICE_ACCOUNT_ANNOTATION];
    if (sa !== undefined && (!SA_NAME.test(sa) || sa.length > 63))
      ctx.addIssue({
        code: "custom",
        message: "must be a service account name (a lowercase DNS label, at most 63 characters)",
        path: at(GATEWAY_SERVICE_ACCOUNT_ANNOTATION),
      });
    const hops = a[GATEWAY_TRUSTED_PROXIES_ANNOTATION];
    if (hops !== undefined && gatewayTrustedProxies(g) === undefined)
      ctx.addIssue({
        code: "custom",
        message: `must be a whole number of proxies from 0 to ${MAX_TRUSTED_PROXIES}, got "${hops}"`,
        path: at(GATEWAY_TRUSTED_PROXIES_ANNOTATION),
      });
  });

/** The Gateway's trusted proxy hops (its annotation; 0 when absent), undefined when malformed. */
export function gatewayTrustedProxies(g: Pick<Gateway, "metadata">): number | undefined {
  const raw = g.metadata.annotations?.[GATEWAY_TRUSTED_PROXIES_ANNOTATION];
  if (raw === undefined) return 0;
  if (!/^\d{1,2}$/.test(raw)) return undefined;
  const n = Number(raw);
  return n <= MAX_TRUSTED_PROXIES ? n : undefined;
}

const AbsolutePath = (what: string) =>
  z
    .string()
    .min(2, { error: `${what} must be an absolute path` })
    .max(4096, { error: `${what} must be at most 4096 characters` })
    .refine((p) => p.startsWith("/") && !p.includes("\0"), { error: `${what} must be an absolute path` });

/** 64 KiB: a long chain with a 4096-bit key is under 16 KiB; a Secret may hold 1 MiB, a config line should not. */
const MAX_PEM = 65_536;
const Pem = (what: string) =>
  z
    .string()
    .max(MAX_PEM, { error: `${what} must be at most ${MAX_PEM} characters` })
    .refine((p) => p.includes("-----BEGIN "), { error: `${what} must be PEM text (-----BEGIN ...)` });

/**
 * Either files on the gateway's nodes (plain hosts: certFile + keyFile) or the PEMs themselves
 * (certificatePem + privateKeyPem; Kubernetes: a `kubernetes.io/tls` Secret's tls.crt and tls.key,
 * which the controller reads so that agents need no access to Secrets). Either way the resource is
 * sent only to the nodes that run a Gateway naming it (MeshModel.policyKeysForNode) and its PEMs are
 * never dumped. One object with a refinement rather than a union, so an issue names its field.
 */
export const TLSCertificateSpec = z
  .object({
    certFile: AbsolutePath("certFile").optional(),
    keyFile: AbsolutePath("keyFile").optional(),
    certificatePem: Pem("certificatePem").optional(),
    privateKeyPem: Pem("privateKeyPem").optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const files = s.certFile !== undefined || s.keyFile !== undefined;
    const pems = s.certificatePem !== undefined || s.privateKeyPem !== undefined;
    const need = (field: string, message: string) => ctx.addIssue({ code: "custom", path: [field], message });
    if (files && pems)
      need("certificatePem", "give either certFile + keyFile or certificatePem + privateKeyPem, not both");
    else if (pems) {
      if (s.certificatePem === undefined) need("certificatePem", "privateKeyPem needs certificatePem");
      if (s.privateKeyPem === undefined) need("privateKeyPem", "certificatePem needs privateKeyPem");
    } else {
      if (s.certFile === undefined)
        need("certFile", "certFile is required (or certificatePem + privateKeyPem)");
      if (s.keyFile === undefined) need("keyFile", "keyFile is required (or certificatePem + privateKeyPem)");
    }
  });

/** A PEM certificate chain (leaf first) and its private key, read by the agents that run a Gateway. */
export const TLSCertificate = z
  .object({
    apiVersion: z.literal(TLS_CERT_API_VERSION, { error: `apiVersion must be "${TLS_CERT_API_VERSION}"` }),
    kind: z.literal("TLSCertificate"),
    metadata: RouteMetadata,
    spec: TLSCertificateSpec,
  })
  .strict();

export type CertificateRef = z.infer<typeof CertificateRef>;
export type Listener = z.infer<typeof Listener>;
export type Gateway = z.infer<typeof Gateway>;
export type TLSCertificate = z.infer<typeof TLSCertificate>;
export type TLSCertificateSpec = z.infer<typeof TLSCertificateSpec>;

/** The nodes that run `g` (its annotation, trimmed, without duplicates). */
export function gatewayNodes(g: Pick<Gateway, "metadata">): string[] {
  const raw = g.metadata.annotations?.[GATEWAY_NODES_ANNOTATION] ?? "";
  return [...new Set(raw.split(",").map((n) => n.trim()))].filter((n) => n !== "");
}

/** The SPIFFE ID the Gateway's agents carry into the mesh: spiffe://<td>/ns/<ns>/sa/<sa>. */
export function gatewayIdentity(g: Pick<Gateway, "metadata">, trustDomain: string): string {
  return formatSpiffeId({
    trustDomain,
    namespace: g.metadata.namespace,
    serviceAccount: g.metadata.annotations?.[GATEWAY_SERVICE_ACCOUNT_ANNOTATION] ?? g.metadata.name,
  });
}

export function isOurGateway(g: Pick<Gateway, "spec">): boolean {
  return g.spec.gatewayClassName === GATEWAY_CLASS_NAME;
}

// ExternalService (Istio ServiceEntry shape) and the mesh-wide outbound traffic policy: what makes a
// destination outside the mesh known, so that the agent gets it metrics, policy and (through an egress
// gateway) the L7 chain, and what happens to a destination nobody declared (ALLOW_ANY passes it by,
// REGISTRY_ONLY refuses it). Self-contained like route-parts.ts: resources.ts wraps ExternalServiceSpec in
// the usual apiVersion/kind/metadata header, so this file must not import resources.ts.
// Invariant: the output of every schema is valid input to it (the wire is parsed twice).
import { z } from "zod";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const Port = z
  .number({ error: "must be a port number" })
  .int({ error: "must be an integer port" })
  .min(1, { error: "must be a port between 1 and 65535" })
  .max(65535, { error: "must be a port between 1 and 65535" });
const PortName = z
  .string()
  .max(63)
  .regex(DNS_LABEL, { error: "must be a lowercase DNS label ([a-z0-9-], at most 63 characters)" });
const ObjectName = z.string().max(253).regex(DNS_SUBDOMAIN, {
  error: "must be a lowercase DNS name ([a-z0-9-.], starting and ending alphanumeric)",
});
const IPv4 = z.ipv4({ error: "must be an IPv4 address (a.b.c.d)" });
/** Capture is by address, so a wildcard host could never be resolved to the addresses to capture. */
const ExternalHost = z
  .string()
  .min(1)
  .max(253, { error: "must be at most 253 characters" })
  .regex(DNS_SUBDOMAIN, {
    error: "must be a lowercase DNS hostname (e.g. api.example.com); wildcards are not supported",
  });

// ---- Mesh-wide outbound traffic policy (Istio meshConfig.outboundTrafficPolicy) ---------------------

export const OUTBOUND_MODES = ["ALLOW_ANY", "REGISTRY_ONLY"] as const;
export const OutboundTrafficMode = z.enum(OUTBOUND_MODES, {
  error: "outboundTrafficPolicy.mode must be ALLOW_ANY or REGISTRY_ONLY",
});
export const OutboundTrafficPolicy = z.object({ mode: OutboundTrafficMode.default("ALLOW_ANY") }).strict();
export const DEFAULT_OUTBOUND_TRAFFIC_POLICY: OutboundTrafficPolicy = Object.freeze({ mode: "ALLOW_ANY" });

// ---- ExternalService ------------------------------------------------------------------------------

/** Istio's ServiceEntry port protocols. Only HTTP is read at L7 (through an egress gateway). */
export const EXTERNAL_PROTOCOLS = ["HTTP", "HTTPS", "HTTP2", "GRPC", "TCP", "TLS"] as const;

export const ExternalServicePort = z
  .object({
    /** The port the application connects to. */
    number: Port,
    protocol: z
      .enum(EXTERNAL_PROTOCOLS, { error: `protocol must be one of ${EXTERNAL_PROTOCOLS.join(", ")}` })
      .default("TCP"),
    name: PortName,
    /** The port the outside connection goes to (e.g. 443 behind a plaintext 80 with TLS origination). */
    targetPort: Port.optional(),
  })
  .strict();

export const ExternalServiceEndpoint = z
  .object({
    address: IPv4,
    /** Per port name, where this endpoint listens instead of the port's targetPort/number. */
    ports: z.record(PortName, Port).optional(),
  })
  .strict();

/** The WorkloadEntry that is the egress gateway (its agent originates the outside connections). */
export const EgressGatewayRef = z.object({ workload: ObjectName, namespace: PortName.optional() }).strict();

/** TLS origination (Istio DestinationRule tls.mode SIMPLE): plaintext from the app, TLS to the outside. */
export const ExternalTls = z
  .object({
    mode: z.literal("SIMPLE", {
      error: 'tls.mode must be "SIMPLE" (MUTUAL and ISTIO_MUTUAL origination are not supported)',
    }),
    /** Server name sent and verified; default: the service's first host. */
    sni: ExternalHost.optional(),
    /** PEM file of the roots that verify the outside server, on the originating node; default: the system's. */
    caCertificates: z
      .string()
      .regex(/^\//, { error: "caCertificates must be an absolute file path" })
      .optional(),
  })
  .strict();

export const ExternalServiceSpec = z
  .object({
    hosts: z
      .array(ExternalHost)
      .min(1, { error: "an external service needs at least one host" })
      .max(64, { error: "at most 64 hosts" }),
    /** Addresses the application may connect to besides the endpoints' and the hosts' (virtual IPs). */
    addresses: z.array(IPv4).max(64, { error: "at most 64 addresses" }).optional(),
    ports: z
      .array(ExternalServicePort)
      .min(1, { error: "an external service needs at least one port" })
      .max(64, { error: "at most 64 ports" }),
    resolution: z
      .enum(["DNS", "STATIC"], { error: "resolution must be DNS or STATIC (NONE is not supported)" })
      .default("DNS"),
    /** STATIC only: where the outside connections go. */
    endpoints: z.array(ExternalServiceEndpoint).max(256, { error: "at most 256 endpoints" }).optional(),
    egressGateway: EgressGatewayRef.optional(),
    tls: ExternalTls.optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const issue = (path: (string | number)[], message: string) =>
      ctx.addIssue({ code: "custom", path, message });
    unique(s.ports.map((p) => p.number)).forEach((i) =>
      issue(["ports", i, "number"], `port ${s.ports[i]?.number} is listed twice`),
    );
    unique(s.ports.map((p) => p.name)).forEach((i) =>
      issue(["ports", i, "name"], `port name ${s.ports[i]?.name} is used twice`),
    );
    unique(s.hosts).forEach((i) => issue(["hosts", i], `host ${s.hosts[i]} is listed twice`));
    if (s.resolution === "STATIC" && !s.endpoints?.length)
      issue(["endpoints"], "resolution STATIC needs at least one endpoint");
    if (s.resolution === "DNS" && s.endpoints?.length)
      issue(["endpoints"], "resolution DNS takes no endpoints (the hosts are resolved); use STATIC");
    const names = new Set(s.ports.map((p) => p.name));
    s.endpoints?.forEach((e, i) => {
      for (const name of Object.keys(e.ports ?? {}))
        if (!names.has(name)) issue(["endpoints", i, "ports", name], `no port named ${name} in spec.ports`);
    });
    if (s.tls)
      s.ports.forEach((p, i) => {
        if (p.protocol === "HTTPS" || p.protocol === "TLS")
          issue(
            ["ports", i, "protocol"],
            `tls origination wraps plaintext; port ${p.number} is already ${p.protocol} (declare it HTTP or TCP)`,
          );
      });
  });

/** Indexes of the entries that repeat an earlier one. */
function unique<T>(values: readonly T[]): number[] {
  const seen = new Set<T>();
  const dup: number[] = [];
  values.forEach((v, i) => {
    if (seen.has(v)) dup.push(i);
    seen.add(v);
  });
  return dup;
}

/** Where an endpoint of `port` listens: its own named port, else the port's targetPort, else its number. */
export function externalTargetPort(
  port: ExternalServicePort,
  endpoint: ExternalServiceEndpoint | undefined,
): number {
  return endpoint?.ports?.[port.name] ?? port.targetPort ?? port.number;
}

/** The gateway's WorkloadEntry key, "namespace/name" (the namespace defaults to the service's). */
export function egressGatewayUid(spec: ExternalServiceSpec, serviceNamespace: string): string | undefined {
  const g = spec.egressGateway;
  return g ? `${g.namespace ?? serviceNamespace}/${g.workload}` : undefined;
}

export type OutboundTrafficMode = z.infer<typeof OutboundTrafficMode>;
export type OutboundTrafficPolicy = z.infer<typeof OutboundTrafficPolicy>;
export type ExternalServicePort = z.infer<typeof ExternalServicePort>;
export type ExternalServiceEndpoint = z.infer<typeof ExternalServiceEndpoint>;
export type EgressGatewayRef = z.infer<typeof EgressGatewayRef>;
export type ExternalTls = z.infer<typeof ExternalTls>;
export type ExternalServiceSpec = z.infer<typeof ExternalServiceSpec>;

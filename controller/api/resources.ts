// The mesh resources, as zod schemas; every TypeScript type is inferred from its schema.
// Kubernetes-shaped (apiVersion/kind/metadata/spec) so one YAML serves plain hosts now and CRDs
// later. Field names follow Istio (AuthorizationPolicy, PeerAuthentication, DestinationRule) and
// Gateway API (targetRefs, Duration strings); see docs/resources.md for the reference.
// Invariant: the output of every schema is valid input to it (re-parsing the wire form is a no-op),
// so the controller can send parsed resources and the agent can validate them again.
import { z } from "zod";
import { GRPCRoute, HTTPRoute } from "./routes.ts";
import { Gateway, TLSCertificate } from "./gateway.ts";
import { ExternalServiceSpec } from "./external-service.ts";

export const API_VERSION = "nodemesh.io/v1alpha1";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Gateway API Duration (GEP-2257) plus fractional seconds: "1s", "250ms", "1m30s", "1.5s". */
const DURATION = /^(\d+(\.\d+)?(h|m|s|ms))+$/;

export const Name = z.string().max(253).regex(DNS_SUBDOMAIN, {
  error: "must be a lowercase DNS name ([a-z0-9-.], starting and ending alphanumeric)",
});
export const NamespaceName = z
  .string()
  .max(63)
  .regex(DNS_LABEL, { error: "must be a lowercase DNS label ([a-z0-9-], at most 63 characters)" });
export const Labels = z.record(
  z.string().min(1, { error: "label keys must not be empty" }).max(317),
  z.string().max(63),
);
export const Port = z
  .number({ error: "must be a port number" })
  .int({ error: "must be an integer port" })
  .min(1, { error: "must be a port between 1 and 65535" })
  .max(65535, { error: "must be a port between 1 and 65535" });
export const IPv4 = z.ipv4({ error: "must be an IPv4 address (a.b.c.d)" });
export const Duration = z
  .string()
  .regex(DURATION, { error: 'must be a duration such as "250ms", "1s", "1m30s" or "24h"' });
/** Istio writes ports as strings in policies; both forms are accepted and normalised to numbers. */
export const PortRef = z
  .union([Port, z.string().regex(/^\d{1,5}$/, { error: "must be a port number" })])
  .transform((p) => Number(p))
  .pipe(Port);

export const Metadata = z
  .object({
    name: Name,
    namespace: NamespaceName.default("default"),
    labels: Labels.optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  })
  .strict();

/** `{matchLabels}`: empty or absent selects every workload of the namespace. */
export const LabelSelector = z.object({ matchLabels: Labels.default({}) }).strict();

/** Gateway API PolicyTargetReference to a Service in the policy's namespace. */
export const TargetRef = z
  .object({
    group: z.enum(["", "core"], { error: 'group must be "" (the core group) for a Service' }).default(""),
    kind: z.literal("Service", { error: 'kind must be "Service"' }),
    name: Name,
  })
  .strict();

const header = <K extends string>(kind: K) => ({
  apiVersion: z.literal(API_VERSION, { error: `apiVersion must be "${API_VERSION}"` }),
  kind: z.literal(kind),
  metadata: Metadata,
});

// ---- Service -------------------------------------------------------------------------------------

export const ServicePort = z
  .object({
    name: NamespaceName.optional(),
    port: Port,
    /** A number, or the name of a port in WorkloadEntry.spec.ports; defaults to `port`. */
    targetPort: z.union([Port, NamespaceName]).optional(),
    protocol: z.literal("TCP", { error: 'protocol must be "TCP" (UDP is not meshed)' }).default("TCP"),
    /** e.g. "http", "kubernetes.io/h2c", "tcp"; drives L7 handling in the agent. */
    appProtocol: z.string().min(1).optional(),
  })
  .strict();

export const ServiceSpec = z
  .object({
    /** Virtual IPs clients connect to (the ClusterIP on Kubernetes). */
    addresses: z.array(IPv4).min(1, { error: "a service needs at least one address (VIP)" }),
    ports: z.array(ServicePort).min(1, { error: "a service needs at least one port" }),
    /** Kubernetes Service shape: labels a WorkloadEntry of the same namespace must all carry. */
    selector: Labels.optional(),
  })
  .strict();

export const Service = z.object({ ...header("Service"), spec: ServiceSpec }).strict();

// ---- WorkloadEntry -------------------------------------------------------------------------------

export const WorkloadEntrySpec = z
  .object({
    address: IPv4,
    serviceAccount: NamespaceName.default("default"),
    labels: Labels.default({}),
    /** Node (host) that runs the workload; its agent proxies it and requests its certificate. */
    node: Name,
    /** Network namespace: a path (/var/run/netns/x, /proc/<pid>/ns/net) or an `ip netns` name. */
    netns: z.string().min(1).optional(),
    /** cgroup v2 path of the workload, absolute or relative to the cgroup2 mount. */
    cgroup: z.string().min(1).optional(),
    /** Named ports, as Istio's WorkloadEntry: {http: 8080}; Service.targetPort may refer to them. */
    ports: z.record(NamespaceName, Port).optional(),
    /**
     * Absent means true. false: enrolled (captured, identity issued) but no Service's endpoint, as a
     * Kubernetes pod that runs before it is Ready; capture must start before its first connect.
     */
    ready: z.boolean({ error: "ready must be true or false" }).optional(),
  })
  .strict()
  .refine((s) => s.netns !== undefined || s.cgroup !== undefined, {
    error: "a workload needs netns or cgroup (how the agent finds it on its node)",
    path: ["netns"],
  });

export const WorkloadEntry = z.object({ ...header("WorkloadEntry"), spec: WorkloadEntrySpec }).strict();

// ---- PendingWorkload (made by the Kubernetes source only) ----------------------------------------

/**
 * A pod scheduled to `node` with no IP in the API yet: a kubelet publishes status.podIP only after the
 * CNI ADD, which the chained plugin holds until the pod is enrolled. Identity facts only, so that the
 * node's agent can enroll the pod at ADD with the address from the CNI result (docs/kubernetes.md):
 * sent to that node alone (scoped like a policy), never an endpoint, and its identity is issued to
 * that node only. The ordinary WorkloadEntry of the same pod replaces it once the IP is published.
 */
export const PendingWorkloadSpec = z
  .object({
    /** The pod's metadata.uid: what the CNI plugin names the pod by (K8S_POD_UID). */
    podUid: z.string().regex(/^[0-9a-fA-F-]{1,64}$/, { error: "must be a pod UID" }),
    serviceAccount: NamespaceName.default("default"),
    labels: Labels.default({}),
    node: Name,
    /** The kubelet's cgroup of the pod, as the WorkloadEntry it becomes will carry it. */
    cgroup: z.string().min(1).optional(),
    ports: z.record(NamespaceName, Port).optional(),
  })
  .strict();

export const PendingWorkload = z.object({ ...header("PendingWorkload"), spec: PendingWorkloadSpec }).strict();

// ---- UnmeshedPod (made by the Kubernetes source only) --------------------------------------------

/**
 * A pod scheduled to `node` that is not in the mesh: its namespace is not labelled
 * nodemesh.io/mesh=enabled, or the pod is labelled nodemesh.io/mesh=disabled. The UID only (metadata
 * names the pod), sent to that node alone like a PendingWorkload: the node's agent then answers the CNI
 * plugin's ADD for it at once instead of holding the sandbox for an enrolment that never comes. A pod
 * the agent finds neither here nor as a workload is unknown, and held (fail closed).
 */
export const UnmeshedPodSpec = z
  .object({
    /** The pod's metadata.uid, as the CNI plugin names the pod (K8S_POD_UID). */
    podUid: z.string().regex(/^[0-9a-fA-F-]{1,64}$/, { error: "must be a pod UID" }),
    node: Name,
  })
  .strict();

export const UnmeshedPod = z.object({ ...header("UnmeshedPod"), spec: UnmeshedPodSpec }).strict();

// ---- AuthorizationPolicy -------------------------------------------------------------------------

const strings = z.array(z.string().min(1)).optional();

/** An IPv4 address or CIDR: a malformed block would match nothing, which fails open for a DENY. */
const IP_BLOCK = /^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)(\/(3[0-2]|[12]?\d))?$/;
const ipBlocks = z
  .array(z.string().regex(IP_BLOCK, { error: 'must be an IPv4 address or CIDR such as "10.0.0.0/8"' }))
  .optional();

export const Source = z
  .object({
    /** "<td>/ns/<ns>/sa/<sa>" (Istio form) or full "spiffe://…"; `*`, prefix* and *suffix allowed. */
    principals: strings,
    notPrincipals: strings,
    namespaces: strings,
    notNamespaces: strings,
    /** "<ns>/<sa>". */
    serviceAccounts: strings,
    notServiceAccounts: strings,
    /** CIDRs or single addresses of the peer. */
    ipBlocks: ipBlocks,
    notIpBlocks: ipBlocks,
    /**
     * The original client (Istio: behind trusted proxies). The mesh believes no client-sent
     * X-Forwarded-For, so this is the same authenticated address as ipBlocks: the client pod, or the
     * external client a Gateway vouches for. Accepted so that Istio policies carry over unchanged.
     */
    remoteIpBlocks: ipBlocks,
    notRemoteIpBlocks: ipBlocks,
  })
  .strict();

export const Operation = z
  .object({
    ports: z.array(PortRef).optional(),
    notPorts: z.array(PortRef).optional(),
    hosts: strings,
    notHosts: strings,
    methods: strings,
    notMethods: strings,
    paths: strings,
    notPaths: strings,
  })
  .strict();

/** `when` keys the agent can evaluate (Istio's names); `request.headers[<name>]` besides these. */
export const CONDITION_KEYS = [
  "source.ip",
  "remote.ip",
  "source.principal",
  "source.namespace",
  "destination.ip",
  "destination.port",
] as const;
/** The name inside the brackets is an RFC 9110 token, as a header field name must be. */
export const HEADER_CONDITION_KEY = /^request\.headers\[([!#$%&'*+.^_`|~0-9A-Za-z-]+)\]$/;
const CIDR4 = z.cidrv4();

/** Why a condition `key` cannot be evaluated, or undefined when it can. */
function conditionKeyProblem(key: string): string | undefined {
  if ((CONDITION_KEYS as readonly string[]).includes(key) || HEADER_CONDITION_KEY.test(key)) return undefined;
  if (key.startsWith("request.auth.")) {
    return `"${key}" is not supported: nodemesh does not validate JWTs (no RequestAuthentication); match on request.headers[<name>] or source.principal instead`;
  }
  if (key.startsWith("request.headers")) return `"${key}" must name one header: request.headers[<name>]`;
  return `unsupported condition key "${key}"; use request.headers[<name>], ${CONDITION_KEYS.join(", ")}`;
}

/** Why one value of a condition cannot match, or undefined when it is well formed. */
function conditionValueProblem(key: string, value: string): string | undefined {
  if (key === "source.ip" || key === "remote.ip" || key === "destination.ip") {
    if (IPv4.safeParse(value).success || CIDR4.safeParse(value).success) return undefined;
    return `${key} values must be IPv4 addresses or CIDRs (10.0.0.0/8), got "${value}"`;
  }
  if (key === "destination.port") {
    if (/^\d{1,5}$/.test(value) && Port.safeParse(Number(value)).success) return undefined;
    return `destination.port values must be port numbers (1-65535), got "${value}"`;
  }
  return undefined;
}

export const Condition = z
  .object({ key: z.string().min(1), values: strings, notValues: strings })
  .strict()
  .superRefine((c, ctx) => {
    const keyProblem = conditionKeyProblem(c.key);
    if (keyProblem) return void ctx.addIssue({ code: "custom", message: keyProblem, path: ["key"] });
    if (!c.values?.length && !c.notValues?.length) {
      ctx.addIssue({
        code: "custom",
        message: `condition ${c.key} needs values or notValues`,
        path: ["values"],
      });
    }
    for (const field of ["values", "notValues"] as const) {
      c[field]?.forEach((v, i) => {
        const problem = conditionValueProblem(c.key, v);
        if (problem) ctx.addIssue({ code: "custom", message: problem, path: [field, i] });
      });
    }
  });

export const Rule = z
  .object({
    from: z.array(z.object({ source: Source }).strict()).optional(),
    to: z.array(z.object({ operation: Operation }).strict()).optional(),
    when: z.array(Condition).optional(),
  })
  .strict();

export const AuthorizationPolicySpec = z
  .object({
    selector: LabelSelector.optional(),
    targetRefs: z.array(TargetRef).min(1).optional(),
    action: z.enum(["ALLOW", "DENY"], { error: "action must be ALLOW or DENY" }).default("ALLOW"),
    /** Absent or empty: an ALLOW policy allows nothing (deny all); `[{}]` allows everything. */
    rules: z.array(Rule).default([]),
  })
  .strict()
  .refine((s) => !(s.selector && s.targetRefs), {
    error: "selector and targetRefs are mutually exclusive",
    path: ["targetRefs"],
  });

export const AuthorizationPolicy = z
  .object({ ...header("AuthorizationPolicy"), spec: AuthorizationPolicySpec })
  .strict();

// ---- PeerAuthentication --------------------------------------------------------------------------

export const MtlsMode = z.enum(["UNSET", "PERMISSIVE", "STRICT"], {
  error:
    "mtls.mode must be UNSET, PERMISSIVE or STRICT (DISABLE is not supported: node-to-node is always mTLS)",
});

export const PeerAuthenticationSpec = z
  .object({
    selector: LabelSelector.optional(),
    mtls: z
      .object({ mode: MtlsMode.default("UNSET") })
      .strict()
      .default({ mode: "UNSET" }),
    portLevelMtls: z
      .record(
        z.string().regex(/^\d{1,5}$/, { error: "portLevelMtls keys must be port numbers" }),
        z.object({ mode: MtlsMode }).strict(),
      )
      .optional(),
  })
  .strict()
  .refine((s) => !s.portLevelMtls || s.selector, {
    error: "portLevelMtls requires selector",
    path: ["portLevelMtls"],
  });

export const PeerAuthentication = z
  .object({ ...header("PeerAuthentication"), spec: PeerAuthenticationSpec })
  .strict();

// ---- TrafficPolicy (DestinationRule vocabulary, Gateway API attachment) ----------------------------

/** RFC 9110 token: what a header or cookie name may be made of. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Bounds the agent's balancers enforce too (agent/balance/ring-hash.ts, maglev.ts): keep in step. */
const MAX_RING_SIZE = 131_072;
const MAX_MAGLEV_TABLE_SIZE = 5_000_011;
const HASH_KEYS = ["httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName"] as const;

/** RFC 6265 path-av: any CHAR but controls and ";"; ours must be absolute. */
function isCookiePath(p: string): boolean {
  if (!p.startsWith("/")) return false;
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0x3b) return false;
  }
  return true;
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** Istio's ConsistentHashLB: exactly one hash key, and ring hash (the default) or Maglev. */
export const ConsistentHashLB = z
  .object({
    httpHeaderName: z
      .string()
      .regex(TOKEN, { error: "must be an HTTP header name (an RFC 9110 token)" })
      .optional(),
    /** With `ttl` a missing cookie is generated (Set-Cookie on the response); `ttl: 0s` = session cookie. */
    httpCookie: z
      .object({
        name: z.string().regex(TOKEN, { error: "must be a cookie name (an RFC 6265 token)" }),
        path: z
          .string()
          .refine(isCookiePath, { error: 'must start with "/" and contain no ";" or control characters' })
          .optional(),
        ttl: Duration.optional(),
      })
      .strict()
      .optional(),
    useSourceIp: z.literal(true, { error: "must be true when set (omit it otherwise)" }).optional(),
    httpQueryParameterName: z.string().min(1, { error: "must not be empty" }).optional(),
    ringHash: z
      .object({
        minimumRingSize: z
          .number()
          .int({ error: "must be an integer" })
          .min(1, { error: `must be between 1 and ${MAX_RING_SIZE}` })
          .max(MAX_RING_SIZE, { error: `must be between 1 and ${MAX_RING_SIZE}` })
          .optional(),
      })
      .strict()
      .optional(),
    maglev: z
      .object({
        tableSize: z
          .number()
          .int({ error: "must be an integer" })
          .max(MAX_MAGLEV_TABLE_SIZE, { error: `must be a prime of at most ${MAX_MAGLEV_TABLE_SIZE}` })
          .refine(isPrime, { error: "must be a prime number (e.g. 65537, the default)" })
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((h) => HASH_KEYS.filter((k) => h[k] !== undefined).length === 1, {
    error: `needs exactly one of ${HASH_KEYS.join(", ")}`,
  })
  .refine((h) => !(h.ringHash && h.maglev), {
    error: "ringHash and maglev are mutually exclusive",
    path: ["maglev"],
  });

/** `simple` or `consistentHash`; unset, the agent uses PEAK_EWMA for HTTP ports and ROUND_ROBIN for TCP. */
export const LoadBalancerSettings = z
  .object({
    /** LEAST_REQUEST counts open connections for opaque TCP; PEAK_EWMA is ours (Linkerd's balancer). */
    simple: z
      .enum(["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "PEAK_EWMA"], {
        error: "loadBalancer.simple must be ROUND_ROBIN, LEAST_REQUEST, RANDOM or PEAK_EWMA",
      })
      .optional(),
    consistentHash: ConsistentHashLB.optional(),
  })
  .strict()
  .refine((lb) => !(lb.simple && lb.consistentHash), {
    error: "simple and consistentHash are mutually exclusive",
    path: ["consistentHash"],
  })
  .refine((lb) => lb.simple !== undefined || lb.consistentHash !== undefined, {
    error: "loadBalancer needs simple or consistentHash",
  });

/** Resilience bounds the agent relies on (agent/http/retry.ts buffers bodies up to maxBodyBytes). */
const MAX_RETRY_ATTEMPTS = 10;
const MAX_RETRY_BODY_BYTES = 16 * 1024 * 1024;
const count = (what: string) =>
  z
    .number({ error: `${what} must be a number` })
    .int({ error: "must be an integer" })
    .min(0, { error: "must be >= 0" });

/** Retry defaults for HTTP routes to the service; an HTTPRoute rule's `retry` overrides codes/attempts/backoff. */
export const RetrySettings = z
  .object({
    /** Retries after the first try (the brief's default 3). */
    attempts: count("attempts")
      .max(MAX_RETRY_ATTEMPTS, { error: `must be at most ${MAX_RETRY_ATTEMPTS}` })
      .optional(),
    /** Status codes that are retried (default: every 5xx). */
    codes: z
      .array(
        z
          .number()
          .int()
          .min(400, { error: "must be a 4xx or 5xx status" })
          .max(599, { error: "must be a 4xx or 5xx status" }),
      )
      .optional(),
    /** One try's timeout, until its response headers (an HTTPRoute's timeouts.backendRequest wins). */
    perTryTimeout: Duration.optional(),
    /** Exponential backoff with full jitter: the first retry's ceiling, and the cap. */
    backoff: z
      .object({ baseInterval: Duration.optional(), maxInterval: Duration.optional() })
      .strict()
      .optional(),
    /** Retry POST/PATCH even when they may have reached the application (default false). */
    retryNonIdempotent: z.boolean().optional(),
    /** Request bodies up to this size are buffered for replay; larger ones are not retried (64 KiB). */
    maxBodyBytes: count("maxBodyBytes")
      .max(MAX_RETRY_BODY_BYTES, { error: `must be at most ${MAX_RETRY_BODY_BYTES}` })
      .optional(),
    /** Linkerd's retry budget per destination. */
    budget: z
      .object({
        retryRatio: z
          .number()
          .min(0, { error: "must be >= 0" })
          .max(1000, { error: "must be at most 1000" })
          .optional(),
        minRetriesPerSecond: count("minRetriesPerSecond").optional(),
        ttl: Duration.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** Per-endpoint circuit breaker (agent/breaker/consecutive-failures.ts). */
export const CircuitBreakerSettings = z
  .object({
    /** Opens after this many failures in a row (0 = off; default 5). */
    consecutiveFailures: count("consecutiveFailures").optional(),
    /** Opens after this many failures within `interval` (0 = off; default 5 in 10s). */
    failures: count("failures").optional(),
    interval: Duration.optional(),
    /** First open period (default 30s); doubles on each re-open, up to maxOpenTime (default 5m). */
    openTime: Duration.optional(),
    maxOpenTime: Duration.optional(),
    /** Successes in half-open that close it (default 2). */
    halfOpenSuccesses: count("halfOpenSuccesses").min(1, { error: "must be at least 1" }).optional(),
  })
  .strict();

const Percentage = z
  .number({ error: "must be a percentage (0-100)" })
  .min(0, { error: "must be a percentage (0-100)" })
  .max(100, { error: "must be a percentage (0-100)" });

/** Istio's HTTPFaultInjection, per destination service: applied by the calling agent. */
export const FaultInjectionSettings = z
  .object({
    delay: z
      .object({ fixedDelay: Duration, percentage: Percentage.default(100) })
      .strict()
      .optional(),
    abort: z
      .object({
        httpStatus: z
          .number({ error: "must be an HTTP status (200-599)" })
          .int({ error: "must be an HTTP status (200-599)" })
          .min(200, { error: "must be an HTTP status (200-599)" })
          .max(599, { error: "must be an HTTP status (200-599)" })
          .optional(),
        /** A gRPC status code (1-16) for gRPC requests; HTTP requests get `httpStatus` (default 503). */
        grpcStatus: z
          .number({ error: "must be a gRPC status code (1-16)" })
          .int({ error: "must be a gRPC status code (1-16)" })
          .min(1, { error: "must be a gRPC status code (1-16)" })
          .max(16, { error: "must be a gRPC status code (1-16)" })
          .optional(),
        percentage: Percentage.default(100),
      })
      .strict()
      .refine((a) => a.httpStatus !== undefined || a.grpcStatus !== undefined, {
        error: "abort needs httpStatus or grpcStatus",
      })
      .optional(),
  })
  .strict()
  .refine((f) => f.delay !== undefined || f.abort !== undefined, { error: "fault needs delay or abort" });

/**
 * Where the IETF RateLimit-* fields go: `Refused` (the default) puts them on 429s only; `Always` also on
 * every admitted response under the limit, as Envoy's `enable_x_ratelimit_headers` does. Off by default
 * as in Envoy: four more fields per response, one of them new every time (`ratelimit-remaining`, a fresh
 * HPACK entry), cost more CPU than the rate-limit check itself (docs/benchmarks.md "L7 layers").
 */
export const RateLimitHeaders = z.enum(["Refused", "Always"], {
  error: "rateLimitHeaders must be Refused or Always",
});

const tokenBucketFields = {
  maxTokens: z.number().int().min(1, { error: "must be at least 1" }),
  tokensPerFill: z.number().int().min(1, { error: "must be at least 1" }).optional(),
  fillInterval: Duration,
};

// Zod runs object refinements even when a field failed: a malformed fillInterval is already
// reported by Duration, so only a well-formed one is measured here.
const positiveFill = {
  check: (r: { fillInterval: string }) => !DURATION.test(r.fillInterval) || durationMs(r.fillInterval) > 0,
  message: { error: "fillInterval must be longer than 0s", path: ["fillInterval"] },
};

/** Envoy's local rate limit token bucket, per destination workload: applied by the workload's agent. */
export const RateLimitSettings = z
  .object(tokenBucketFields)
  .strict()
  .refine(positiveFill.check, positiveFill.message);

/** TrafficPolicy `rateLimit`: the token bucket, and where its RateLimit-* fields go. */
export const ServiceRateLimitSettings = z
  .object({ ...tokenBucketFields, rateLimitHeaders: RateLimitHeaders.default("Refused") })
  .strict()
  .refine(positiveFill.check, positiveFill.message);

/** Istio's int32 connection-pool fields; bounded so a typo cannot overflow the agent's counters. */
const MAX_POOL_LIMIT = 2_147_483_647;
const poolLimit = (what: string, min: number) =>
  z
    .number({ error: `${what} must be a number` })
    .int({ error: "must be an integer" })
    .min(min, { error: `must be at least ${min}` })
    .max(MAX_POOL_LIMIT, { error: `must be at most ${MAX_POOL_LIMIT}` });

/**
 * Istio's `connectionPool.http`, enforced per destination by the calling agent
 * (agent/http/pool-limit.ts) except `maxRequestsPerConnection`, which the destination agent applies to
 * its HTTP/1.1 connections to the application (agent/http/inbound.ts).
 */
export const HttpPoolSettings = z
  .object({
    /** Requests that may wait for an in-flight slot; beyond them 503 at once (0, the default: none wait). */
    http1MaxPendingRequests: poolLimit("http1MaxPendingRequests", 0).optional(),
    /** Requests in flight to the destination from one agent. */
    http2MaxRequests: poolLimit("http2MaxRequests", 1).optional(),
    /** Requests per application connection before it is closed (0 = unlimited; 1 disables keep-alive). */
    maxRequestsPerConnection: poolLimit("maxRequestsPerConnection", 0).optional(),
    /** Retries outstanding to the destination at once; a retry beyond them is answered 503. */
    maxRetries: poolLimit("maxRetries", 0).optional(),
  })
  .strict();

export const TrafficPolicySpec = z
  .object({
    targetRefs: z.array(TargetRef).min(1, { error: "targetRefs needs at least one Service" }),
    loadBalancer: LoadBalancerSettings.optional(),
    connectionPool: z
      .object({
        tcp: z
          .object({
            maxConnections: poolLimit("maxConnections", 1).optional(),
            connectTimeout: Duration.optional(),
          })
          .strict()
          .optional(),
        http: HttpPoolSettings.optional(),
      })
      .strict()
      .optional(),
    outlierDetection: z
      .object({
        /** Deprecated Istio alias of consecutive5xxErrors; for TCP, connect failures count. */
        consecutiveErrors: z.number().int().min(0).optional(),
        consecutive5xxErrors: z.number().int().min(0).optional(),
        consecutiveGatewayErrors: z.number().int().min(0).optional(),
        interval: Duration.optional(),
        baseEjectionTime: Duration.optional(),
        maxEjectionPercent: z
          .number()
          .int()
          .min(0)
          .max(100, { error: "must be a percentage (0-100)" })
          .optional(),
      })
      .strict()
      .optional(),
    /** Default whole-request timeout for HTTP to the service ("0s" = none); an HTTPRoute's timeouts.request wins. */
    timeout: Duration.optional(),
    retries: RetrySettings.optional(),
    circuitBreaker: CircuitBreakerSettings.optional(),
    /** Fault injection for HTTP requests to the service (delays and aborts, by percentage). */
    fault: FaultInjectionSettings.optional(),
    /** Local rate limit per destination workload (429 with retry-after when the bucket is empty). */
    rateLimit: ServiceRateLimitSettings.optional(),
  })
  .strict();

export const TrafficPolicy = z.object({ ...header("TrafficPolicy"), spec: TrafficPolicySpec }).strict();

// ---- FaultInjection (Istio's HTTPFaultInjection as a kind of its own) ------------------------------

/**
 * The same delay/abort shape as TrafficPolicy `fault`, attached to an HTTPRoute/GRPCRoute rule by an
 * ExtensionRef filter (group nodemesh.io, kind FaultInjection) so that the rule's matches (a header,
 * say) confine the faults to test traffic. Same namespace as the route, as LocalObjectReference says.
 */
export const FaultInjection = z
  .object({ ...header("FaultInjection"), spec: FaultInjectionSettings })
  .strict();

// ---- RateLimitPolicy (token buckets enforced by the destination's agent) ------------------------------

const GATEWAY_GROUP = "gateway.networking.k8s.io";
/** Buckets per (policy, target, workload) when `perSource`: bounds what many callers can make us hold. */
export const DEFAULT_MAX_SOURCES = 10_000;
const MAX_MAX_SOURCES = 1_000_000;

/**
 * Gateway API PolicyTargetReferenceWithSectionName: a Service of the policy's namespace, or one named
 * rule (`sectionName`) of an HTTPRoute or GRPCRoute of that namespace.
 */
export const RateLimitTargetRef = z
  .object({
    group: z
      .enum(["", "core", GATEWAY_GROUP], {
        error: `group must be "" (a Service) or "${GATEWAY_GROUP}" (a route)`,
      })
      .default(""),
    kind: z.enum(["Service", "HTTPRoute", "GRPCRoute"], {
      error: 'kind must be "Service", "HTTPRoute" or "GRPCRoute"',
    }),
    name: Name,
    /** For a route: the rule's `name`. Not allowed for a Service (it would name a port). */
    sectionName: Name.optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    const route = t.kind !== "Service";
    if (route !== (t.group === GATEWAY_GROUP))
      ctx.addIssue({
        code: "custom",
        path: ["group"],
        message: route ? `group must be "${GATEWAY_GROUP}" for ${t.kind}` : 'group must be "" for a Service',
      });
    if (route && t.sectionName === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["sectionName"],
        message: `a ${t.kind} target needs sectionName: the name of the rule to limit (target the Service to limit all of it)`,
      });
    if (!route && t.sectionName !== undefined)
      ctx.addIssue({
        code: "custom",
        path: ["sectionName"],
        message: "sectionName is not supported for a Service target (limits apply to every port)",
      });
  });

/** Bounds a mesh-wide rate so that shares and bucket sizes stay far from float trouble. */
export const MAX_GLOBAL_RATE = 1_000_000;
const globalCount = (what: string) =>
  z
    .number({ error: `${what} must be a number` })
    .int({ error: `${what} must be an integer` })
    .min(1, { error: `${what} must be at least 1` })
    .max(MAX_GLOBAL_RATE, { error: `${what} must be at most ${MAX_GLOBAL_RATE}` });

/**
 * A mesh-wide limit per target Service: the controller splits `requestsPerSecond` between the nodes
 * that serve the Service, in proportion to the demand each reports (controller/ratelimit/), and each
 * node's agent enforces its share with a token bucket. A rate, not Envoy's fill interval: the nodes
 * do not refill in step, so a mesh-wide "fill" would mean nothing.
 */
export const GlobalRateLimitSettings = z
  .object({
    requestsPerSecond: globalCount("requestsPerSecond"),
    /** Requests admitted at once after a quiet spell, mesh-wide (split like the rate, at least 1 per node). */
    burst: globalCount("burst").optional(),
  })
  .strict();

export const RateLimitPolicySpec = z
  .object({
    targetRefs: z
      .array(RateLimitTargetRef)
      .min(1, { error: "targetRefs needs at least one Service or route rule" }),
    /** Envoy's token bucket, the same shape as TrafficPolicy `rateLimit`, per destination workload. */
    tokenBucket: RateLimitSettings.optional(),
    /** The mesh-wide limit, split between the serving nodes (Service targets only). */
    global: GlobalRateLimitSettings.optional(),
    /** Where the RateLimit-* fields of this policy's limits go (RateLimitHeaders). */
    rateLimitHeaders: RateLimitHeaders.default("Refused"),
    /** One bucket per caller SPIFFE ID (per destination workload) instead of one for every caller. */
    perSource: z.boolean({ error: "perSource must be true or false" }).default(false),
    /** With perSource, at most this many buckets per target and workload (least recently used go first). */
    maxSources: z
      .number({ error: "maxSources must be a number" })
      .int({ error: "must be an integer" })
      .min(1, { error: "must be at least 1" })
      .max(MAX_MAX_SOURCES, { error: `must be at most ${MAX_MAX_SOURCES}` })
      .optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const issue = (path: PropertyKey[], message: string) => ctx.addIssue({ code: "custom", path, message });
    if (!s.perSource && s.maxSources !== undefined) issue(["maxSources"], "maxSources needs perSource: true");
    if (s.tokenBucket === undefined && s.global === undefined)
      issue(["tokenBucket"], "a RateLimitPolicy needs tokenBucket, global, or both");
    if (s.perSource && s.tokenBucket === undefined)
      issue(["perSource"], "perSource needs tokenBucket (the global limit counts every caller together)");
    if (s.global === undefined) return;
    s.targetRefs.forEach((t, i) => {
      if (t.kind !== "Service")
        issue(
          ["targetRefs", i, "kind"],
          `global limits apply to Service targets only (a ${t.kind} rule has no set of serving nodes)`,
        );
    });
  });

export const RateLimitPolicy = z.object({ ...header("RateLimitPolicy"), spec: RateLimitPolicySpec }).strict();

// ---- ExternalService (Istio ServiceEntry: a destination outside the mesh, see external-service.ts) ---

export const ExternalService = z.object({ ...header("ExternalService"), spec: ExternalServiceSpec }).strict();

// ---- The union -----------------------------------------------------------------------------------

export const Resource = z.discriminatedUnion("kind", [
  Service,
  WorkloadEntry,
  PendingWorkload,
  UnmeshedPod,
  AuthorizationPolicy,
  PeerAuthentication,
  TrafficPolicy,
  HTTPRoute,
  GRPCRoute,
  FaultInjection,
  RateLimitPolicy,
  Gateway,
  TLSCertificate,
  ExternalService,
]);

export const KINDS = [
  "Service",
  "WorkloadEntry",
  "AuthorizationPolicy",
  "PeerAuthentication",
  "TrafficPolicy",
  "HTTPRoute",
  "GRPCRoute",
  "FaultInjection",
  "RateLimitPolicy",
  "Gateway",
  "TLSCertificate",
  "ExternalService",
  "PendingWorkload",
  "UnmeshedPod",
] as const;
export const Kind = z.enum(KINDS);

export type Metadata = z.infer<typeof Metadata>;
export type LabelSelector = z.infer<typeof LabelSelector>;
export type TargetRef = z.infer<typeof TargetRef>;
export type ServicePort = z.infer<typeof ServicePort>;
export type Service = z.infer<typeof Service>;
export type WorkloadEntry = z.infer<typeof WorkloadEntry>;
export type PendingWorkload = z.infer<typeof PendingWorkload>;
export type UnmeshedPod = z.infer<typeof UnmeshedPod>;
export type Source = z.infer<typeof Source>;
export type Operation = z.infer<typeof Operation>;
export type Rule = z.infer<typeof Rule>;
export type AuthorizationPolicy = z.infer<typeof AuthorizationPolicy>;
export type MtlsMode = z.infer<typeof MtlsMode>;
export type PeerAuthentication = z.infer<typeof PeerAuthentication>;
export type TrafficPolicy = z.infer<typeof TrafficPolicy>;
export type ConsistentHashLB = z.infer<typeof ConsistentHashLB>;
export type LoadBalancerSettings = z.infer<typeof LoadBalancerSettings>;
export type RetrySettings = z.infer<typeof RetrySettings>;
export type CircuitBreakerSettings = z.infer<typeof CircuitBreakerSettings>;
export type FaultInjectionSettings = z.infer<typeof FaultInjectionSettings>;
export type FaultInjection = z.infer<typeof FaultInjection>;
export type ExternalService = z.infer<typeof ExternalService>;
export type RateLimitSettings = z.infer<typeof RateLimitSettings>;
export type ServiceRateLimitSettings = z.infer<typeof ServiceRateLimitSettings>;
export type RateLimitHeaders = z.infer<typeof RateLimitHeaders>;
export type HttpPoolSettings = z.infer<typeof HttpPoolSettings>;
export type RateLimitTargetRef = z.infer<typeof RateLimitTargetRef>;
export type RateLimitPolicy = z.infer<typeof RateLimitPolicy>;
export type GlobalRateLimitSettings = z.infer<typeof GlobalRateLimitSettings>;
export type Resource = z.infer<typeof Resource>;
export type Kind = z.infer<typeof Kind>;
/** A resource's identity in the stream: removals carry only this. */
export interface ResourceKey {
  kind: Kind;
  namespace: string;
  name: string;
}

export function keyOf(r: { kind: Kind; metadata: { namespace: string; name: string } }): ResourceKey {
  return { kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name };
}

/** "Kind/namespace/name": the map key used by the model and the agent-side client. */
export function keyString(k: ResourceKey): string {
  return `${k.kind}/${k.namespace}/${k.name}`;
}

/** Milliseconds of a Duration string ("1m30s" → 90000). Throws on a malformed string. */
export function durationMs(d: string): number {
  if (!DURATION.test(d)) throw new RangeError(`invalid duration "${d}"; use e.g. "250ms", "1s", "24h"`);
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  let total = 0;
  for (const m of d.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s)/g)) total += Number(m[1]) * (unit[m[2] ?? "ms"] ?? 1);
  return Math.round(total);
}

// Agent settings: parsed once (from an object or the environment), validated with zod, frozen, and passed
// down as one object. Env names and DEFAULT_* constants live here with the reason for each default
// (ztunnel `src/config.rs` style). Nothing else in agent/ reads process.env.
import { hostname } from "node:os";
import { z } from "zod";
import { DEFAULT_TRUST_DOMAIN } from "../controller/api/identity.ts";
import { ConfigError } from "./errors.ts";

/** HBONE port in every enrolled pod: the well-known Istio value, so tooling and NetworkPolicies carry over. */
export const DEFAULT_HBONE_PORT = 15008;
/** Outbound capture port in the pod netns (ztunnel/Istio convention). */
export const DEFAULT_OUTBOUND_PORT = 15001;
/** Admin (config dump, logging) stays on loopback: it exposes internals. ztunnel: 127.0.0.1:15000. */
export const DEFAULT_ADMIN_PORT = 15000;
/** Prometheus port; ztunnel and Istio use 15020 and dashboards expect it. */
export const DEFAULT_METRICS_PORT = 15020;
/** Readiness port; Istio's 15021 `/healthz/ready`. */
export const DEFAULT_HEALTH_PORT = 15021;
/** ztunnel POOL_MAX_STREAMS_PER_CONNECTION: 100 (Go's default; Hyper 200). Bounds head-of-line blocking. */
export const DEFAULT_POOL_MAX_STREAMS = 100;
/** ztunnel POOL_UNUSED_RELEASE_TIMEOUT: 5 min. Long enough that steady traffic never re-handshakes. */
export const DEFAULT_POOL_IDLE_MS = 300_000;
/** ztunnel HTTP/2 keepalive: PING every 10 s, give up after 20 s; finds dead peers behind NAT/conntrack. */
export const DEFAULT_PING_INTERVAL_MS = 10_000;
export const DEFAULT_PING_TIMEOUT_MS = 20_000;
/**
 * Tunnel establishment budget (TCP + TLS + HTTP/2 + CONNECT 200) when no TrafficPolicy sets one. Istio's
 * 10 s default hides dead endpoints for too long for an L4 proxy that retries the next endpoint; 2 s is
 * ~100× a same-datacenter handshake and still prompt for the client.
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 2_000;
/** Endpoints tried per client connection before it is reset (the first plus two retries), 10 ms backoff base. */
export const DEFAULT_CONNECT_ATTEMPTS = 3;
export const DEFAULT_RETRY_BACKOFF_MS = 10;
/**
 * Outlier detection when no TrafficPolicy sets it: Envoy's field names. Istio leaves ejection off by default;
 * an L4 mesh that retries the next endpoint benefits from it on by default, so 3 consecutive gateway errors
 * eject for 30 s (Envoy base time), with at most half the endpoints ejected (always at least one allowed).
 */
export const DEFAULT_OUTLIER = Object.freeze({
  consecutiveGatewayErrors: 3,
  intervalMs: 10_000,
  baseEjectionTimeMs: 30_000,
  maxEjectionPercent: 50,
});
/**
 * How long an undeclared port waits for the client's first bytes before carrying the connection as
 * opaque TCP. A server-first protocol (SMTP, MySQL) pays this once per connection, so it is short: Istio
 * sniffs for 100 ms at most; Linkerd's 10 s stall is a known complaint. 200 ms leaves room for a slow
 * client's first write on a loaded node; a declared `appProtocol` skips detection entirely.
 */
export const DEFAULT_PROTOCOL_DETECTION_TIMEOUT_MS = 200;
/**
 * Whole-request timeout (retries included, until the response headers) when neither the route nor a
 * TrafficPolicy sets one: the issue's 10 s mesh-wide default. Envoy's route default is 15 s; 10 s
 * bounds what a hung backend costs a client while leaving slow but healthy requests alone. 0 disables.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Rotate at half-life (Istio/ztunnel), retry a failed CSR from 1 s doubling to 30 s. */
export const DEFAULT_ROTATE_FRACTION = 0.5;
export const DEFAULT_CSR_RETRY_MIN_MS = 1_000;
export const DEFAULT_CSR_RETRY_MAX_MS = 30_000;
/** ztunnel self-termination default: 5 s for connections to finish before they are cut. */
export const DEFAULT_DRAIN_MS = 5_000;
/**
 * How long the socket keeper holds the in-pod listeners with no agent connected: the bound on how
 * long a new connection waits in the kernel for the next agent after a crash (docs/reliability.md).
 */
export const DEFAULT_KEEPER_GRACE_MS = 30_000;
/** One definition, in the wire schema: the controller issues identities in the same trust domain. */
export { DEFAULT_TRUST_DOMAIN };

/** Environment variable names (the only ones the agent reads). */
export const ENV = Object.freeze({
  nodeName: "NODEMESH_NODE_NAME",
  trustDomain: "NODEMESH_TRUST_DOMAIN",
  logLevel: "LOG_LEVEL",
  adminPort: "NODEMESH_ADMIN_PORT",
  metricsPort: "NODEMESH_METRICS_PORT",
  healthPort: "NODEMESH_HEALTH_PORT",
  metricsHost: "NODEMESH_METRICS_HOST",
  hbonePort: "NODEMESH_HBONE_PORT",
  outboundPort: "NODEMESH_OUTBOUND_PORT",
  poolMaxStreams: "NODEMESH_POOL_MAX_STREAMS",
  poolIdleMs: "NODEMESH_POOL_IDLE_MS",
  connectTimeoutMs: "NODEMESH_CONNECT_TIMEOUT_MS",
  drainMs: "NODEMESH_DRAIN_MS",
  keeperGraceMs: "NODEMESH_KEEPER_GRACE_MS",
  protocolDetectionTimeoutMs: "NODEMESH_PROTOCOL_DETECTION_TIMEOUT_MS",
  metricsProfile: "NODEMESH_METRICS_PROFILE",
  defaultRequestTimeoutMs: "NODEMESH_DEFAULT_REQUEST_TIMEOUT_MS",
  sockmap: "NODEMESH_SOCKMAP",
});

const port = z.coerce.number().int().min(0).max(65535);
const ms = z.coerce.number().int().min(0);

const schema = z
  .object({
    nodeName: z
      .string()
      .min(1)
      .default(() => hostname()),
    trustDomain: z.string().min(1).default(DEFAULT_TRUST_DOMAIN),
    logLevel: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
    adminHost: z.string().default("127.0.0.1"),
    adminPort: port.default(DEFAULT_ADMIN_PORT),
    metricsHost: z.string().default("0.0.0.0"),
    metricsPort: port.default(DEFAULT_METRICS_PORT),
    healthPort: port.default(DEFAULT_HEALTH_PORT),
    hbonePort: port.default(DEFAULT_HBONE_PORT),
    outboundPort: port.default(DEFAULT_OUTBOUND_PORT),
    poolMaxStreams: z.coerce.number().int().min(1).default(DEFAULT_POOL_MAX_STREAMS),
    poolIdleMs: ms.default(DEFAULT_POOL_IDLE_MS),
    pingIntervalMs: ms.default(DEFAULT_PING_INTERVAL_MS),
    pingTimeoutMs: ms.default(DEFAULT_PING_TIMEOUT_MS),
    connectTimeoutMs: z.coerce.number().int().min(1).default(DEFAULT_CONNECT_TIMEOUT_MS),
    connectAttempts: z.coerce.number().int().min(1).max(10).default(DEFAULT_CONNECT_ATTEMPTS),
    retryBackoffMs: ms.default(DEFAULT_RETRY_BACKOFF_MS),
    rotateFraction: z.coerce.number().gt(0).lt(1).default(DEFAULT_ROTATE_FRACTION),
    csrRetryMinMs: ms.default(DEFAULT_CSR_RETRY_MIN_MS),
    csrRetryMaxMs: ms.default(DEFAULT_CSR_RETRY_MAX_MS),
    drainMs: ms.default(DEFAULT_DRAIN_MS),
    keeperGraceMs: z.coerce.number().int().min(1_000).max(600_000).default(DEFAULT_KEEPER_GRACE_MS),
    protocolDetectionTimeoutMs: z.coerce
      .number()
      .int()
      .min(1)
      .max(30_000)
      .default(DEFAULT_PROTOCOL_DETECTION_TIMEOUT_MS),
    /** Request-metric label set: minimal, standard (Istio's) or full; see docs/http.md. */
    metricsProfile: z.enum(["minimal", "standard", "full"]).default("standard"),
    /** HTTP whole-request timeout when no route or TrafficPolicy sets one; 0 = none (docs/http.md). */
    defaultRequestTimeoutMs: ms.max(3_600_000).default(DEFAULT_REQUEST_TIMEOUT_MS),
    /** Pod-local legs socket to socket in the kernel (sockmap); off by default, see docs/capture.md. */
    sockmap: z.union([z.boolean(), z.stringbool()]).default(false),
  })
  .strict();

export type AgentSettings = Readonly<z.output<typeof schema>>;
export type AgentSettingsInput = z.input<typeof schema>;

/** Validates and freezes settings; throws ConfigError naming every bad field. */
export function parseAgentSettings(input: AgentSettingsInput = {}): AgentSettings {
  const result = schema.safeParse(input);
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new ConfigError(`invalid agent settings: ${issues}; check the NODEMESH_* environment variables`);
  }
  return Object.freeze(result.data);
}

/** Reads the ENV names above; unset variables take the defaults. */
export function agentSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): AgentSettings {
  const input: Record<string, string> = {};
  for (const [key, name] of Object.entries(ENV)) {
    const value = env[name];
    if (value !== undefined && value !== "") input[key] = value;
  }
  return parseAgentSettings(input as AgentSettingsInput);
}

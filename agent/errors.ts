// Errors raised by the agent. Each carries a stable `code` (NODEMESH_ERR_*) that logs, metrics and tests
// match on, and a lowercase message that ends with a hint for the operator (ztunnel style).

export class AgentError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AgentError";
    this.code = code;
  }
}

/** Settings (env or object) did not validate. */
export class ConfigError extends AgentError {
  constructor(message: string) {
    super("NODEMESH_ERR_AGENT_CONFIG", message);
  }
}

/** No SVID for an identity yet (CSR pending or failing). */
export class IdentityError extends AgentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("NODEMESH_ERR_IDENTITY", message, options);
  }
}

/** Opening the tunnel to a destination's 15008 failed (TCP, TLS, HTTP/2 or CONNECT status). */
export class TunnelError extends AgentError {
  /** Istio-style response flag: ConnectionFailure, TlsFailure, Http2HandshakeFailure, AuthorizationPolicyDenied… */
  readonly flag: string;
  /** Counted by outlier detection (gateway error): the endpoint, not the policy, is at fault. */
  readonly endpointFault: boolean;
  constructor(flag: string, message: string, endpointFault: boolean, options?: { cause?: unknown }) {
    super("NODEMESH_ERR_TUNNEL", message, options);
    this.flag = flag;
    this.endpointFault = endpointFault;
  }
}

/** The datapath could not enroll or release a workload. */
export class DatapathError extends AgentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("NODEMESH_ERR_DATAPATH", message, options);
  }
}

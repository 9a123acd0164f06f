// Controller errors: a stable `code` and a lowercase message with a hint for the operator.

export class ControllerError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = "ControllerError";
  }
}

/** Why the CA refused a CSR; also the `reason` label of nodemesh_controller_csr_rejected_total. */
export const CSR_REJECT_REASONS = [
  "unknown_token",
  "malformed_csr",
  "bad_signature",
  "bad_identity",
  "san_mismatch",
  "extra_sans",
  "identity_not_on_node",
] as const;
export type CsrRejectReason = (typeof CSR_REJECT_REASONS)[number];

export class CsrRejectedError extends ControllerError {
  readonly reason: CsrRejectReason;
  constructor(reason: CsrRejectReason, message: string) {
    super("NODEMESH_ERR_CSR_REJECTED", message);
    this.reason = reason;
    this.name = "CsrRejectedError";
  }
}

/**
 * Why a configuration was not applied; the `reason` label of
 * nodemesh_controller_config_rejections_total. `unstable` and `mass_removal` are not errors in the
 * documents: the first waits for a write in progress, the second for the operator's SIGHUP.
 */
export const CONFIG_REJECT_REASONS = [
  "unreadable",
  "empty_file",
  "invalid",
  "unstable",
  "mass_removal",
] as const;
export type ConfigRejectReason = (typeof CONFIG_REJECT_REASONS)[number];

/** Why the agent endpoint refused a connection before TLS; the `reason` of sessions_refused_total. */
export const SESSION_REFUSE_REASONS = ["per_address_limit", "connection_limit"] as const;
export type SessionRefuseReason = (typeof SESSION_REFUSE_REASONS)[number];

/** Why the agent endpoint closed a session; the `reason` label of sessions_closed_total. */
export const SESSION_CLOSE_REASONS = [
  "auth_timeout",
  "evicted",
  "unauthenticated",
  "idle",
  "keepalive_timeout",
  "handshake_failed",
] as const;
export type SessionCloseReason = (typeof SESSION_CLOSE_REASONS)[number];

export class ConfigError extends ControllerError {
  constructor(message: string, options?: ErrorOptions) {
    super("NODEMESH_ERR_CONTROLLER_CONFIG", message, options);
    this.name = "ConfigError";
  }
}

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

export class ConfigError extends ControllerError {
  constructor(message: string, options?: ErrorOptions) {
    super("NODEMESH_ERR_CONTROLLER_CONFIG", message, options);
    this.name = "ConfigError";
  }
}

// Errors of the lab. Each carries a stable `code` that scripts and tests can match on, and a
// lowercase message that ends with a hint for the operator.

export type LabErrorCode =
  | "NODEMESH_ERR_LAB_BAD_NAME"
  | "NODEMESH_ERR_LAB_BAD_SPEC"
  | "NODEMESH_ERR_LAB_BAD_ARGS"
  | "NODEMESH_ERR_LAB_NOT_ROOT"
  | "NODEMESH_ERR_LAB_NO_CGROUP2"
  | "NODEMESH_ERR_LAB_NOT_FOUND"
  | "NODEMESH_ERR_LAB_COMMAND"
  | "NODEMESH_ERR_LAB_TEARDOWN";

export class LabError extends Error {
  readonly code: LabErrorCode;

  constructor(code: LabErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LabError";
    this.code = code;
  }
}

// Errors of the operator commands: a stable `code` and a lowercase message that says what to do next.
// bin/nodemesh.ts prints `[code] message` and exits 1.

export type CliErrorCode =
  | "NODEMESH_ERR_CLI_ARGS"
  | "NODEMESH_ERR_CLI_UNREACHABLE"
  | "NODEMESH_ERR_CLI_AGENT"
  | "NODEMESH_ERR_CLI_METRICS";

export class CliError extends Error {
  readonly code: CliErrorCode;
  constructor(code: CliErrorCode, message: string) {
    super(message);
    this.name = "CliError";
    this.code = code;
  }
}

// Errors of the native datapath. Each carries a stable `code` (NODEMESH_ERR_NATIVE_*) and a
// lowercase message that ends with a hint for the operator. Errors that come from the kernel also
// carry `op` (the operation that failed), `errno` (positive, as in C) and `errnoCode` ("EPERM").
// The JavaScript stack is captured before the native call (sharp's lib/is.mjs), so an async
// failure still points at the caller rather than at a libuv callback.
import { getSystemErrorMessage, getSystemErrorName } from "node:util";

export type NativeErrorCode =
  | "NODEMESH_ERR_NATIVE_ADDON_MISSING"
  | "NODEMESH_ERR_NATIVE_INVALID_ARGUMENT"
  | "NODEMESH_ERR_NATIVE_UNSUPPORTED"
  | "NODEMESH_ERR_NATIVE_PERMISSION"
  | "NODEMESH_ERR_NATIVE_NETNS"
  | "NODEMESH_ERR_NATIVE_SOCKET"
  | "NODEMESH_ERR_NATIVE_BPF"
  | "NODEMESH_ERR_NATIVE_CLOSED";

export interface NativeErrorFields {
  op?: string;
  errno?: number;
  detail?: string;
  cause?: unknown;
}

export class NativeError extends Error {
  readonly code: NativeErrorCode;
  /** The operation that failed ("attach to cgroup", "bind", ...), when the kernel refused it. */
  readonly op: string | undefined;
  /** Positive errno, when the kernel refused it. */
  readonly errno: number | undefined;
  /** Symbolic errno ("EPERM"), when the kernel refused it. */
  readonly errnoCode: string | undefined;
  /** Extra text from libbpf (verifier log tail), when there is some. */
  readonly detail: string | undefined;

  constructor(code: NativeErrorCode, message: string, fields: NativeErrorFields = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = "NativeError";
    this.code = code;
    this.op = fields.op;
    this.errno = fields.errno;
    this.errnoCode = fields.errno === undefined ? undefined : errnoName(fields.errno);
    this.detail = fields.detail;
  }
}

export function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-Math.abs(errno));
  } catch {
    return `E${Math.abs(errno)}`;
  }
}

function errnoText(errno: number): string {
  try {
    return getSystemErrorMessage(-Math.abs(errno)).toLowerCase();
  } catch {
    return `errno ${Math.abs(errno)}`;
  }
}

const PRIVILEGE_HINT =
  "run the agent as root, or grant it CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN (CAP_SYS_ADMIN alone on kernels before 5.8)";

/** Picks the stable code and the operator hint for a kernel failure. Pure: unit-tested. */
export function classifyErrno(op: string, errno: number): { code: NativeErrorCode; hint: string } {
  const name = errnoName(errno);
  if (name === "EPERM" || name === "EACCES")
    return { code: "NODEMESH_ERR_NATIVE_PERMISSION", hint: PRIVILEGE_HINT };
  if (name === "EBADF" && op.startsWith("datapath")) {
    return { code: "NODEMESH_ERR_NATIVE_CLOSED", hint: "the datapath was closed; call install() again" };
  }
  if (name === "E2BIG" && op.includes("PeerAuthentication")) {
    return {
      code: "NODEMESH_ERR_NATIVE_BPF",
      hint: "the per-port PeerAuthentication map (nm_port_mtls) is full: it holds the port-level exceptions of every workload of the node; the previous enforcement is kept",
    };
  }
  if (name === "E2BIG" && op.includes("enrolled")) {
    return {
      code: "NODEMESH_ERR_NATIVE_BPF",
      hint: "the map of enrolled workloads is full (see NM_MAX_WORKLOADS); the previous enforcement is kept",
    };
  }
  if (op.includes("network namespace") || op === "setns") {
    return {
      code: "NODEMESH_ERR_NATIVE_NETNS",
      hint: "check that the pod is running and that the path is a network namespace (/proc/<pid>/ns/net or /var/run/netns/<name>)",
    };
  }
  if (["socket", "bind", "listen"].some((s) => op.startsWith(s)) || op.startsWith("setsockopt")) {
    const hint =
      name === "EADDRINUSE"
        ? "another listener (maybe a second agent instance) already holds this address in the namespace"
        : "check the address and the namespace";
    return { code: "NODEMESH_ERR_NATIVE_SOCKET", hint };
  }
  if (op.includes("cgroup")) {
    return {
      code: "NODEMESH_ERR_NATIVE_BPF",
      hint: "check that the path is a cgroup v2 directory (see /proc/mounts)",
    };
  }
  return { code: "NODEMESH_ERR_NATIVE_BPF", hint: "see `detail` for the libbpf log and `bpftool prog show`" };
}

/** A call site captured before an async native call; `fail()` builds the error with its stack. */
export class CallSite {
  readonly #holder: { stack?: string } = {};

  constructor(fn: (...args: never[]) => unknown) {
    Error.captureStackTrace(this.#holder, fn);
  }

  fail(op: string, errno: number, subject?: string, detail?: string): NativeError {
    const { code, hint } = classifyErrno(op, errno);
    const where = subject ? ` (${subject})` : "";
    const message = `${op}${where} failed: ${errnoText(errno)} (${errnoName(errno)}); ${hint}`;
    const err = new NativeError(code, message, { op, errno: Math.abs(errno), ...(detail ? { detail } : {}) });
    return this.#restack(err);
  }

  error(code: NativeErrorCode, message: string): NativeError {
    return this.#restack(new NativeError(code, message));
  }

  #restack(err: NativeError): NativeError {
    const frames = this.#holder.stack?.split("\n").slice(1).join("\n");
    if (frames) err.stack = `${err.name}: ${err.message}\n${frames}`;
    return err;
  }
}

export function invalid(message: string): NativeError {
  return new NativeError("NODEMESH_ERR_NATIVE_INVALID_ARGUMENT", message);
}

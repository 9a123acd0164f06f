// Input checks for the native facade, run before any native call so that a malformed address
// or a missing namespace is a clear NativeError, never a crash or a half-made change. Pure.
import type { Socket } from "node:net";
import { invalid } from "./errors.ts";

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIpv4(address: unknown): address is string {
  return typeof address === "string" && IPV4.test(address);
}

export function checkIpv4(address: unknown, what: string): string {
  if (!isIpv4(address)) {
    throw invalid(
      `${what} ${JSON.stringify(address)} is not an ipv4 address; use dotted-quad form like 10.96.0.10`,
    );
  }
  return address;
}

/** A TCP port; `allowZero` for "every port" in destination sets. */
export function checkPort(port: unknown, what: string, allowZero = false): number {
  const min = allowZero ? 0 : 1;
  if (typeof port !== "number" || !Number.isInteger(port) || port < min || port > 65535) {
    throw invalid(`${what} ${JSON.stringify(port)} is not a port; use an integer from ${min} to 65535`);
  }
  return port;
}

export function checkCidr(cidr: unknown): { address: string; prefix: number } {
  const [address, prefixText, extra] = typeof cidr === "string" ? cidr.split("/") : [];
  const prefix = prefixText === undefined ? 32 : Number(prefixText);
  if (extra !== undefined || !isIpv4(address) || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) {
    throw invalid(`excluded cidr ${JSON.stringify(cidr)} is not an ipv4 cidr; use a form like 10.0.0.0/8`);
  }
  return { address, prefix };
}

export function checkMark(mark: unknown): number {
  if (typeof mark !== "number" || !Number.isInteger(mark) || mark < 0 || mark > 0xffffffff) {
    throw invalid(`socket mark ${JSON.stringify(mark)} is not a 32-bit unsigned integer`);
  }
  return mark;
}

export function checkFd(fd: unknown): number {
  if (typeof fd !== "number" || !Number.isInteger(fd) || fd < 0) {
    throw invalid(
      `file descriptor ${JSON.stringify(fd)} is not valid; pass socket._handle.fd of a connected socket`,
    );
  }
  return fd;
}

export function checkAbsolutePath(path: unknown, what: string): string {
  if (
    typeof path !== "string" ||
    !path.startsWith("/") ||
    path.split("/").includes("..") ||
    path.includes("\0")
  ) {
    throw invalid(`${what} ${JSON.stringify(path)} must be an absolute path without '..'`);
  }
  return path;
}

export function checkBacklog(backlog: unknown): number {
  if (typeof backlog !== "number" || !Number.isInteger(backlog) || backlog < 1 || backlog > 65535) {
    throw invalid(`listen backlog ${JSON.stringify(backlog)} must be an integer from 1 to 65535`);
  }
  return backlog;
}

/** The fd of a Node socket (Unix only; libuv exposes it on the handle). */
export function socketFd(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } })._handle;
  return checkFd(handle?.fd);
}

/**
 * Per-port PeerAuthentication exceptions of one workload, as port → strict. At most `max` (the
 * map's capacity for the whole node, so a longer list could never fit) and no port twice.
 */
export function checkPortMtls(ports: unknown, max: number): Map<number, boolean> {
  if (ports === undefined) return new Map();
  if (!Array.isArray(ports)) throw invalid("per-port mTLS modes must be an array of { port, strict }");
  if (ports.length > max)
    throw invalid(`per-port mTLS modes: ${ports.length} ports, the kernel map holds at most ${max}`);
  const out = new Map<number, boolean>();
  ports.forEach((entry: unknown, i) => {
    const e = (typeof entry === "object" && entry !== null ? entry : {}) as {
      port?: unknown;
      strict?: unknown;
    };
    const port = checkPort(e.port, `per-port mTLS modes[${i}].port`);
    if (typeof e.strict !== "boolean")
      throw invalid(`per-port mTLS modes[${i}].strict ${JSON.stringify(e.strict)} must be a boolean`);
    if (out.has(port)) throw invalid(`per-port mTLS modes[${i}].port ${port} is listed twice`);
    out.set(port, e.strict);
  });
  return out;
}

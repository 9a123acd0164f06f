// Opens the connection that leaves the mesh: a socket made by the datapath inside the originating
// workload's namespace (the source pod for direct egress, the gateway pod for an egress gateway, so the
// packets leave from that pod's address), carrying the agent mark so connect4 never captures it again,
// then optionally TLS to the outside host (origination: verified against the service's CA file, else the
// system roots, with the service's SNI). Each target is tried in turn within the connect budget.
import { readFile } from "node:fs/promises";
import type { Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import type { ExternalTarget, ExternalPortInfo } from "./registry.ts";

/** The datapath's connect-from-inside-the-pod (Datapath.connectApp). */
export type OpenSocket = (uid: string, address: string, port: number) => Promise<Socket>;

export interface Originated {
  readonly socket: Socket | TLSSocket;
  readonly target: ExternalTarget;
}

/** Why no outside connection could be made, with the Istio flag the access log and metrics carry. */
export class EgressError extends Error {
  readonly code = "NODEMESH_ERR_EGRESS";
  readonly flag: string;
  constructor(flag: string, message: string) {
    super(message);
    this.flag = flag;
  }
}

const CA_CACHE_MS = 30_000;
const caCache = new Map<string, { pem: string; at: number }>();

/** The CA file's PEM, re-read at most every 30 s so a rotated file is picked up without a restart. */
async function caOf(path: string): Promise<string> {
  const have = caCache.get(path);
  if (have && performance.now() - have.at < CA_CACHE_MS) return have.pem;
  const pem = await readFile(path, "utf8").catch((err: NodeJS.ErrnoException) => {
    throw new EgressError("TlsFailure", `cannot read tls.caCertificates ${path}: ${err.code ?? err.message}`);
  });
  caCache.set(path, { pem, at: performance.now() });
  return pem;
}

/** Targets in the order they are tried: `prefer` (the address the application chose) first. */
export function orderTargets(
  targets: readonly ExternalTarget[],
  prefer: string | undefined,
  rotate: number,
): ExternalTarget[] {
  if (targets.length === 0) return [];
  const start = rotate % targets.length;
  const rotated = [...targets.slice(start), ...targets.slice(0, start)];
  const i = prefer === undefined ? -1 : rotated.findIndex((t) => t.address === prefer);
  if (i <= 0) return rotated;
  return [rotated[i]!, ...rotated.slice(0, i), ...rotated.slice(i + 1)];
}

let roundRobin = 0;

/**
 * Connects `uid`'s namespace to one of the external port's targets (at most `attempts`), with TLS when
 * the service originates it. Rejects with EgressError (ConnectionFailure, TlsFailure, NoHealthyUpstream).
 */
export async function originate(
  open: OpenSocket,
  uid: string,
  ext: ExternalPortInfo,
  opts: { readonly timeoutMs: number; readonly attempts: number; readonly prefer?: string },
): Promise<Originated> {
  const order = orderTargets(ext.targets, opts.prefer, roundRobin++).slice(0, Math.max(1, opts.attempts));
  if (order.length === 0)
    throw new EgressError(
      "NoHealthyUpstream",
      `external service ${ext.host} has no address (DNS not resolved?)`,
    );
  let last: EgressError | undefined;
  for (const target of order) {
    try {
      const raw = await connected(await open(uid, target.address, target.port), opts.timeoutMs, target);
      if (!ext.tls) return { socket: raw, target };
      return { socket: await secure(raw, ext, opts.timeoutMs), target };
    } catch (err) {
      last =
        err instanceof EgressError
          ? err
          : new EgressError(
              "ConnectionFailure",
              `${target.address}:${target.port}: ${(err as Error).message}`,
            );
      if (last.flag === "TlsFailure") break; // every endpoint of one host presents the same certificate
    }
  }
  throw last ?? new EgressError("NoHealthyUpstream", `no target of ${ext.host} reachable`);
}

/** Waits for the TCP connect; destroys the socket on error or when the budget runs out. */
function connected(socket: Socket, ms: number, target: ExternalTarget): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (!socket.connecting && !socket.destroyed) return resolve(socket);
    const fail = (message: string) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new EgressError("ConnectionFailure", `${target.address}:${target.port}: ${message}`));
    };
    const timer = setTimeout(() => fail(`timed out after ${ms} ms`), ms);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("error", (err) => fail(err.message));
  });
}

async function secure(raw: Socket, ext: ExternalPortInfo, timeoutMs: number): Promise<TLSSocket> {
  const tls = ext.tls!;
  const servername = tls.sni ?? ext.host;
  const ca = tls.caCertificates
    ? await caOf(tls.caCertificates).catch((err: unknown) => {
        raw.destroy();
        throw err;
      })
    : undefined;
  const socket = tlsConnect({ socket: raw, servername, ...(ca ? { ca } : {}) });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new EgressError("TlsFailure", `tls handshake with ${servername} timed out after ${timeoutMs} ms`),
      );
    }, timeoutMs);
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new EgressError("TlsFailure", `tls origination to ${servername} failed: ${err.message}`));
    });
  });
}

// Limits of the agent endpoint (:15012), with the reason for each default. The endpoint faces
// every pod's network: before a connection has shown a node token it is held only for a short
// deadline, in a bounded pool, a bounded number per source address; the HTTP/2 settings bound what
// one session may make the controller hold; PINGs find peers that went away without a FIN.
//
// Memory bound (measured with test/e2e/controller/hardening.test.ts): an unauthenticated TLS +
// HTTP/2 session costs 70–90 KiB of controller RSS, so the pending pool bounds hostile sessions to
// about maxPendingSessions × 90 KiB (45 MiB with the defaults) and one file each.
import { ConfigError } from "../errors.ts";

export interface SessionLimits {
  /** A connection that has not opened a stream with a valid token by then is closed. */
  authTimeoutMs: number;
  /** Connections not yet authenticated, in total; beyond it the oldest is closed. */
  maxPendingSessions: number;
  /** Connections not yet authenticated from one source address; beyond it new ones are refused. */
  maxPendingPerAddress: number;
  /** Every TCP connection to the endpoint (authenticated or not); beyond it new ones are dropped. */
  maxConnections: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS of every session. */
  maxStreamsPerSession: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE, bytes. */
  maxHeaderListBytes: number;
  /** Node's maxSessionMemory, MiB: new streams are refused while a session holds more. */
  maxSessionMemoryMb: number;
  /** TLS handshake deadline. */
  handshakeTimeoutMs: number;
  /** An authenticated session is PINGed after this long without a PING round trip. */
  keepaliveIntervalMs: number;
  /** A PING unanswered for this long closes the session (dead peer or half-closed connection). */
  keepaliveTimeoutMs: number;
}

export const DEFAULT_SESSION_LIMITS: Readonly<SessionLimits> = Object.freeze({
  // A handshake and one request take a few milliseconds on a LAN; 10 s covers a congested WAN
  // link and a controller busy with a full resync of 100 agents (~2 s, bench/controller.ts).
  authTimeoutMs: 10_000,
  // 512 × ~90 KiB ≈ 45 MiB: the stated bound for hostile sessions. Full means the oldest pending
  // one goes, not the newest: an agent authenticates within milliseconds, so to push one out an
  // attacker must open 512 connections in those milliseconds.
  maxPendingSessions: 512,
  // One pod cannot take more than a quarter of the pool; 100 agents behind one address (the
  // controller benchmark, a NAT) still connect at once.
  maxPendingPerAddress: 128,
  // Agents (one session each, plus a short one per CSR burst) of a 2,000-node mesh, with margin.
  maxConnections: 4096,
  // An agent uses one stream for config and one per CSR in flight; 100 is the RFC 9113
  // recommended minimum, and clients queue beyond it.
  maxStreamsPerSession: 100,
  // The only headers an agent sends are a token, a node name and a version: well under 1 KiB.
  maxHeaderListBytes: 16 * 1024,
  // Queued output counts: a 10,000-workload snapshot is 2.4 MB uncompressed; Node's default is 10.
  maxSessionMemoryMb: 10,
  handshakeTimeoutMs: 5_000,
  // An agent's config stream carries a heartbeat every 10 s, but a write to a dead peer only fails
  // after TCP gives up (~15 min with tcp_retries2=15); a PING round trip proves the peer reads.
  keepaliveIntervalMs: 20_000,
  keepaliveTimeoutMs: 10_000,
});

const POSITIVE: ReadonlyArray<keyof SessionLimits> = Object.keys(
  DEFAULT_SESSION_LIMITS,
) as (keyof SessionLimits)[];

/** Defaults overridden by `partial`; throws a ConfigError naming the first invalid field. */
export function resolveSessionLimits(partial: Partial<SessionLimits> = {}): Readonly<SessionLimits> {
  const out: SessionLimits = { ...DEFAULT_SESSION_LIMITS };
  for (const key of POSITIVE) {
    const v = partial[key];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v <= 0) {
      throw new ConfigError(`session limit ${key} must be a positive integer, got ${String(v)}`);
    }
    out[key] = v;
  }
  if (out.maxPendingPerAddress > out.maxPendingSessions) {
    throw new ConfigError(
      `session limit maxPendingPerAddress (${out.maxPendingPerAddress}) must not exceed maxPendingSessions (${out.maxPendingSessions})`,
    );
  }
  return Object.freeze(out);
}

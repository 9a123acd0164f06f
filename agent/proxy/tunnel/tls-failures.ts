// Rejected TLS handshakes at a tunnel listener: counted by reason in
// nodemesh_tls_handshake_failures_total{reason} and logged at info, at most one line per reason per
// interval carrying how many there were (a scanner or a misconfigured peer must not flood the log).
// Shared by every listener of one agent, so the interval holds node-wide.
//
// Node reports a client certificate that fails verification after the TLS 1.3 handshake as a plain
// ECONNRESET; the verdict is then on the socket (`authorizationError`), which is read first.
import type { Logger } from "../../log.ts";
import type { TLS_HANDSHAKE_FAILURE_REASONS } from "../../telemetry/security.ts";

export type TlsFailureReason = (typeof TLS_HANDSHAKE_FAILURE_REASONS)[number];

const UNKNOWN_CA = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
]);
const EXPIRED = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"]);
const PROTOCOL = new Set([
  "ERR_SSL_UNSUPPORTED_PROTOCOL",
  "ERR_SSL_NO_PROTOCOLS_AVAILABLE",
  "ERR_SSL_VERSION_TOO_LOW",
  "ERR_SSL_WRONG_VERSION_NUMBER",
  "ERR_SSL_HTTP_REQUEST",
  "ERR_SSL_UNKNOWN_PROTOCOL",
  "ERR_SSL_NO_APPLICATION_PROTOCOL",
  "ERR_SSL_NO_SHARED_CIPHER",
]);

/** Why a handshake failed, from Node's error and the socket's certificate verdict. */
export function classifyTlsFailure(
  err: { code?: string | undefined },
  authorizationError: string | Error | null | undefined,
): TlsFailureReason {
  const verdict = typeof authorizationError === "string" ? authorizationError : authorizationError?.message;
  if (verdict && EXPIRED.has(verdict)) return "expired";
  if (verdict && UNKNOWN_CA.has(verdict)) return "unknown_ca";
  const code = err.code ?? "";
  if (code === "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE") return "no_certificate";
  if (PROTOCOL.has(code)) return "protocol";
  return "other";
}

export interface TlsFailureEvent {
  readonly reason: TlsFailureReason;
  /** Node's error code and the certificate verdict, for the log. */
  readonly code: string | undefined;
  readonly verdict: string | undefined;
  readonly peer: string | undefined;
  readonly workload: string;
}

interface Pending {
  count: number;
  last: TlsFailureEvent;
}

export class TlsFailureReporter {
  readonly #log: Logger;
  readonly #count: (reason: TlsFailureReason) => void;
  readonly #intervalMs: number;
  readonly #lastLogged = new Map<TlsFailureReason, number>();
  readonly #pending = new Map<TlsFailureReason, Pending>();
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: { log: Logger; count: (reason: TlsFailureReason) => void; intervalMs?: number }) {
    this.#log = opts.log;
    this.#count = opts.count;
    this.#intervalMs = opts.intervalMs ?? 10_000;
  }

  report(e: TlsFailureEvent): void {
    this.#count(e.reason);
    const now = performance.now();
    const last = this.#lastLogged.get(e.reason);
    if (last === undefined || now - last >= this.#intervalMs) {
      this.#lastLogged.set(e.reason, now);
      this.#write(e, 1);
      return;
    }
    const p = this.#pending.get(e.reason);
    if (p) {
      p.count++;
      p.last = e;
    } else this.#pending.set(e.reason, { count: 1, last: e });
    // The suppressed ones are summed up once the interval of the line that was written has passed.
    this.#timer ??= setTimeout(() => this.flush(), this.#intervalMs - (now - last)).unref();
  }

  /** Writes one line per reason for what was suppressed so far. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const now = performance.now();
    for (const [reason, p] of this.#pending) {
      this.#lastLogged.set(reason, now);
      this.#write(p.last, p.count);
    }
    this.#pending.clear();
  }

  close(): void {
    this.flush();
  }

  #write(e: TlsFailureEvent, count: number): void {
    this.#log.info(
      { reason: e.reason, count, code: e.code, verdict: e.verdict, peer: e.peer, workload: e.workload },
      count === 1
        ? `rejected a TLS handshake at the tunnel listener: ${e.reason}`
        : `rejected ${count} TLS handshakes at tunnel listeners: ${e.reason} (last shown)`,
    );
  }
}

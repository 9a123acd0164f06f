// Admission to the agent endpoint: what a connection may hold before and after it authenticates.
// Authentication is per request (a node token on each stream, server.ts); a connection counts as
// authenticated from its first stream with a valid token. Until then it is "pending":
// - it must authenticate within authTimeoutMs of the TCP accept (TLS handshake included), or it
//   is closed (auth_timeout);
// - at most maxPendingPerAddress pending connections per source address: more are refused at
//   once, before TLS costs anything (per_address_limit);
// - at most maxPendingSessions pending in total: a new one pushes the oldest out (evicted), so a
//   flood cannot keep a real agent, which authenticates within milliseconds, from connecting;
// - a request that fails to authenticate closes the connection after its reply (unauthenticated).
// An authenticated connection with no open stream for authTimeoutMs is closed (idle): sessions
// are only worth their file while they carry a config stream or a CSR.
//
// Invariants: a connection is in `#pending` from accept until it authenticates or closes, and
// `#perAddress` counts exactly those; every timer is cleared when its connection leaves; log lines
// of one reason are rate-limited (one per LOG_EVERY_MS, with the number suppressed meanwhile).
import type { ServerHttp2Session } from "node:http2";
import type { Socket } from "node:net";
import type { Logger } from "pino";
import type { SessionCloseReason, SessionRefuseReason } from "../errors.ts";
import type { ControllerMetrics } from "../metrics.ts";
import type { SessionLimits } from "./limits.ts";

const LOG_EVERY_MS = 10_000;

interface Pending {
  socket: Socket;
  address: string;
  since: number;
  timer: NodeJS.Timeout;
}

interface SessionState {
  key: string;
  node: string | undefined;
  streams: number;
  idle: NodeJS.Timeout | undefined;
}

export class SessionGuard {
  readonly #limits: Readonly<SessionLimits>;
  readonly #metrics: ControllerMetrics;
  readonly #log: Logger;
  /** `address:port` → pending connection, oldest first (Map order). */
  readonly #pending = new Map<string, Pending>();
  readonly #perAddress = new Map<string, number>();
  readonly #sessions = new WeakMap<ServerHttp2Session, SessionState>();
  readonly #lastLog = new Map<string, { at: number; suppressed: number }>();

  constructor(limits: Readonly<SessionLimits>, metrics: ControllerMetrics, log: Logger) {
    this.#limits = limits;
    this.#metrics = metrics;
    this.#log = log;
  }

  get pending(): number {
    return this.#pending.size;
  }

  /** A TCP connection was accepted (before TLS): admits it to the pending pool or refuses it. */
  admit(socket: Socket): void {
    const address = socket.remoteAddress ?? "unknown";
    const key = `${address}:${socket.remotePort}`;
    const limits = this.#limits;
    if ((this.#perAddress.get(address) ?? 0) >= limits.maxPendingPerAddress) {
      this.refused(
        "per_address_limit",
        { address },
        `more than ${limits.maxPendingPerAddress} unauthenticated connections from one address; refusing new ones`,
      );
      socket.destroy();
      return;
    }
    const oldest =
      this.#pending.size >= limits.maxPendingSessions ? this.#pending.entries().next().value : undefined;
    if (oldest) {
      const [oldKey, old] = oldest;
      this.#close(
        oldKey,
        old,
        "evicted",
        `${limits.maxPendingSessions} unauthenticated connections pending; closed the oldest`,
      );
    }
    const timer = setTimeout(() => {
      const p = this.#pending.get(key);
      if (p?.socket === socket)
        this.#close(
          key,
          p,
          "auth_timeout",
          `no valid node token within ${limits.authTimeoutMs} ms; closing the connection`,
        );
    }, limits.authTimeoutMs);
    timer.unref();
    this.#pending.set(key, { socket, address, since: performance.now(), timer });
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
    this.#metrics.pendingSessions.set(this.#pending.size);
    socket.once("close", () => {
      const p = this.#pending.get(key);
      if (p?.socket === socket) this.#remove(key, p);
    });
  }

  /** The HTTP/2 session of an admitted connection exists (after TLS). */
  session(session: ServerHttp2Session): void {
    const key = `${session.socket.remoteAddress ?? "unknown"}:${session.socket.remotePort}`;
    this.#sessions.set(session, { key, node: undefined, streams: 0, idle: undefined });
    session.once("close", () => clearTimeout(this.#sessions.get(session)?.idle));
  }

  /** The node of an authenticated session, undefined while it has not authenticated. */
  nodeOf(session: ServerHttp2Session): string | undefined {
    return this.#sessions.get(session)?.node;
  }

  /**
   * A stream of `session` presented the token of `node`. Returns true the first time (the caller
   * starts the keepalive). The session leaves the pending pool; it stays open while it has streams.
   */
  authenticated(session: ServerHttp2Session, node: string, onStreamClose: (cb: () => void) => void): boolean {
    const s = this.#sessions.get(session);
    if (!s) return false;
    const first = s.node === undefined;
    s.node = node;
    const p = this.#pending.get(s.key);
    if (p) this.#remove(s.key, p);
    s.streams += 1;
    clearTimeout(s.idle);
    s.idle = undefined;
    onStreamClose(() => {
      s.streams -= 1;
      if (s.streams > 0 || session.destroyed) return;
      s.idle = setTimeout(() => {
        this.#metrics.sessionsClosed.inc({ reason: "idle" });
        this.#log.debug({ node }, "authenticated session without a stream; closing it");
        session.close();
      }, this.#limits.authTimeoutMs);
      s.idle.unref();
    });
    return first;
  }

  /** A request on `session` failed to authenticate; an unauthenticated session closes after the reply. */
  unauthenticated(session: ServerHttp2Session, reason: string): void {
    const s = this.#sessions.get(session);
    if (!s || s.node !== undefined || session.closed) return;
    this.#metrics.sessionsClosed.inc({ reason: "unauthenticated" });
    this.#logLimited(
      "unauthenticated",
      { key: s.key, reason },
      "request without a valid node token; closing the connection after the reply",
    );
    session.close();
  }

  /** Counts and logs (rate-limited) a connection refused by this guard or by the server. */
  refused(reason: SessionRefuseReason, fields: object, message: string): void {
    this.#metrics.sessionsRefused.inc({ reason });
    this.#logLimited(reason, fields, message);
  }

  /** Counts and logs (rate-limited) a session closed elsewhere (keepalive, TLS). */
  closed(reason: SessionCloseReason, fields: object, message: string): void {
    this.#metrics.sessionsClosed.inc({ reason });
    this.#logLimited(reason, fields, message);
  }

  #close(key: string, p: Pending, reason: SessionCloseReason, message: string): void {
    this.#remove(key, p);
    this.closed(reason, { address: p.address, ageMs: Math.round(performance.now() - p.since) }, message);
    p.socket.destroy();
  }

  #remove(key: string, p: Pending): void {
    clearTimeout(p.timer);
    this.#pending.delete(key);
    const n = (this.#perAddress.get(p.address) ?? 1) - 1;
    if (n > 0) this.#perAddress.set(p.address, n);
    else this.#perAddress.delete(p.address);
    this.#metrics.pendingSessions.set(this.#pending.size);
  }

  #logLimited(reason: string, fields: object, message: string): void {
    const now = performance.now();
    const last = this.#lastLog.get(reason);
    if (last && now - last.at < LOG_EVERY_MS) {
      last.suppressed += 1;
      return;
    }
    const suppressed = last?.suppressed ?? 0;
    this.#lastLog.set(reason, { at: now, suppressed: 0 });
    this.#log.warn({ reason, ...fields, ...(suppressed > 0 && { suppressed }) }, message);
  }
}

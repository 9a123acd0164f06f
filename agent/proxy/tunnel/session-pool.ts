// Pooled HTTP/2 client sessions over mTLS to other agents' 15008, keyed by (source identity, destination
// address, expected destination identity). Generic over what rides them: HBONE CONNECT streams
// (`hbone.ts`) and per-request HTTP streams (`agent/http/upstream.ts`) share the same sessions, so a
// warm path costs one HEADERS frame, no handshake.
//
// Invariants:
// - a Conn counts its streams (`streams`) from the moment a caller is given it, before the session is
//   even connected: concurrent callers share one connect instead of racing to open many;
// - a dead Conn (error, goaway, close, failed ping) is never handed out again and leaves the pool on close;
// - a Conn with 0 streams is closed after `idleMs`; every live Conn is PINGed every `pingIntervalMs` and
//   destroyed when a PING stays unanswered for `pingTimeoutMs`.
import {
  connect as h2connect,
  constants,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type OutgoingHttpHeaders,
} from "node:http2";
import { connect as netConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { TunnelError } from "../../errors.ts";
import { clientTlsOptions, type Svid } from "../../tls/svid.ts";
import { CONNECTION_WINDOW, STREAM_WINDOW } from "./settings.ts";

export interface PoolSettings {
  readonly poolMaxStreams: number;
  readonly poolIdleMs: number;
  readonly pingIntervalMs: number;
  readonly pingTimeoutMs: number;
}

/** Which agent to reach, as whom, and whom to expect there. */
export interface SessionTarget {
  readonly source: Svid;
  readonly bundle: readonly string[];
  /** Destination workload address (its 15008 listener). */
  readonly address: string;
  readonly hbonePort: number;
  readonly expectedIdentity: string;
  /** Budget for TCP + TLS + HTTP/2 when a new session is needed. */
  readonly timeoutMs: number;
  /**
   * The source workload's address. Bound as the tunnel's local address only when it is a loopback one
   * (the loopback datapath, where every "node" shares the host): the destination names the peer node by
   * the tunnel's source address, and 127.0.0.1 would name none. A real node cannot bind a pod's address.
   */
  readonly sourceAddress?: string;
}

interface Conn {
  readonly key: string;
  readonly session: ClientHttp2Session;
  readonly ready: Promise<void>;
  /** `ready` has resolved: a warm session needs neither the connect timer nor the race. */
  established: boolean;
  streams: number;
  dead: boolean;
  idleTimer: NodeJS.Timeout | undefined;
  pingSentAt: number;
}

export class SessionPool {
  readonly #settings: PoolSettings;
  readonly #conns = new Map<string, Conn[]>();
  readonly #pinger: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(settings: PoolSettings) {
    this.#settings = settings;
    if (settings.pingIntervalMs > 0) {
      this.#pinger = setInterval(() => this.#pingAll(), settings.pingIntervalMs);
      this.#pinger.unref();
    }
  }

  /**
   * Sends a request's headers on a pooled session to `target` and returns the stream at once (the caller
   * awaits the response). Rejects with a TunnelError (endpoint at fault) when no session could be had in
   * `target.timeoutMs`: then nothing reached the peer, so the caller may safely try another endpoint.
   */
  async open(
    target: SessionTarget,
    headers: OutgoingHttpHeaders,
    opts: { endStream: boolean },
  ): Promise<ClientHttp2Stream> {
    if (this.#closed) throw new TunnelError("ConnectionFailure", "the connection pool is closed", false);
    const conn = this.#checkout(target);
    if (!conn.established) await this.#connected(conn, target);
    let stream: ClientHttp2Stream;
    try {
      stream = conn.session.request(headers, { endStream: opts.endStream });
    } catch (err) {
      conn.dead = true; // a session that refuses new streams (goaway in flight) is not reused
      this.#release(conn);
      throw classify(err as NodeJS.ErrnoException, target);
    }
    stream.once("close", () => this.#release(conn));
    return stream;
  }

  /** Waits for a new session's handshake, at most `target.timeoutMs`; on failure the stream is released. */
  async #connected(conn: Conn, target: SessionTarget): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (conn.streams === 1) this.#kill(conn); // nobody else waits on this connect
        reject(
          new TunnelError(
            "ConnectionFailure",
            `connection to ${target.address}:${target.hbonePort} timed out after ${target.timeoutMs} ms, maybe a network policy is blocking HBONE port ${target.hbonePort}`,
            true,
          ),
        );
      }, target.timeoutMs);
    });
    try {
      await Promise.race([conn.ready, timeout]);
    } catch (err) {
      this.#release(conn);
      throw err instanceof TunnelError ? err : classify(err as NodeJS.ErrnoException, target);
    } finally {
      clearTimeout(timer);
    }
  }

  stats(): { sessions: number; streams: number } {
    let sessions = 0;
    let streams = 0;
    for (const list of this.#conns.values()) {
      sessions += list.length;
      for (const c of list) streams += c.streams;
    }
    return { sessions, streams };
  }

  dump(): { key: string; streams: number; dead: boolean }[] {
    return [...this.#conns.values()].flat().map((c) => ({ key: c.key, streams: c.streams, dead: c.dead }));
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#pinger);
    for (const list of this.#conns.values()) for (const c of list) this.#kill(c);
    this.#conns.clear();
  }

  #checkout(t: SessionTarget): Conn {
    const key = `${t.source.spiffeId}|${t.address}:${t.hbonePort}|${t.expectedIdentity}`;
    let list = this.#conns.get(key);
    if (list) {
      for (const c of list) {
        if (!c.dead && c.streams < this.#settings.poolMaxStreams) {
          c.streams++;
          clearTimeout(c.idleTimer);
          c.idleTimer = undefined;
          return c;
        }
      }
    } else {
      list = [];
      this.#conns.set(key, list);
    }
    const c = this.#open(key, t);
    c.streams = 1;
    list.push(c);
    return c;
  }

  #open(key: string, t: SessionTarget): Conn {
    const tlsOptions = clientTlsOptions(t.source, t.bundle, t.expectedIdentity);
    const session = h2connect(`https://${t.address}:${t.hbonePort}`, {
      createConnection: () => {
        const bind = t.sourceAddress?.startsWith("127.") ? t.sourceAddress : undefined;
        const socket = tlsConnect({
          host: t.address,
          port: t.hbonePort,
          ...(bind ? { socket: netConnect({ host: t.address, port: t.hbonePort, localAddress: bind }) } : {}),
          ...tlsOptions,
        });
        // A request's HEADERS and its body's DATA leave in separate writes: with Nagle on, the body waits
        // for the ACK of the headers, which the peer delays (~40 ms) since it has nothing to send yet.
        socket.setNoDelay(true);
        return socket;
      },
      settings: { enablePush: false, initialWindowSize: STREAM_WINDOW },
    });
    const ready = new Promise<void>((resolve, reject) => {
      session.once("connect", () => {
        session.setLocalWindowSize(CONNECTION_WINDOW);
        conn.established = true;
        resolve();
      });
      session.once("close", () =>
        reject(
          new TunnelError("ConnectionFailure", `connection to ${t.address}:${t.hbonePort} closed`, true),
        ),
      );
      session.once("error", (err: NodeJS.ErrnoException) => reject(classify(err, t)));
    });
    ready.catch(() => {}); // observed by open(); avoid unhandled rejections for late failures
    const conn: Conn = {
      key,
      session,
      ready,
      established: false,
      streams: 0,
      dead: false,
      idleTimer: undefined,
      pingSentAt: 0,
    };
    session.on("error", () => (conn.dead = true));
    session.on("goaway", () => (conn.dead = true));
    session.once("close", () => {
      conn.dead = true;
      clearTimeout(conn.idleTimer);
      const list = this.#conns.get(key);
      if (!list) return;
      const i = list.indexOf(conn);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.#conns.delete(key);
    });
    return conn;
  }

  #release(conn: Conn): void {
    if (--conn.streams > 0 || conn.dead) return;
    if (this.#settings.poolIdleMs <= 0) return this.#kill(conn);
    conn.idleTimer = setTimeout(() => this.#kill(conn), this.#settings.poolIdleMs);
    conn.idleTimer.unref();
  }

  #kill(conn: Conn): void {
    conn.dead = true;
    clearTimeout(conn.idleTimer);
    if (!conn.session.destroyed) conn.session.destroy();
  }

  #pingAll(): void {
    const now = Date.now();
    for (const list of this.#conns.values()) {
      for (const c of list) {
        if (c.dead || c.session.connecting) continue;
        if (c.pingSentAt > 0) {
          if (now - c.pingSentAt > this.#settings.pingTimeoutMs) this.#kill(c);
          continue;
        }
        c.pingSentAt = now;
        c.session.ping((err) => {
          if (err) this.#kill(c);
          else c.pingSentAt = 0;
        });
      }
    }
  }
}

/** A transport failure as a TunnelError with the response flag operators know. */
export function classify(err: NodeJS.ErrnoException, t: { address: string; hbonePort: number }): TunnelError {
  const where = `${t.address}:${t.hbonePort}`;
  if (err instanceof TunnelError) return err;
  const code = err.code ?? "";
  if (
    code.startsWith("ERR_TLS") ||
    code.startsWith("ERR_SSL") ||
    /certificate|identity|handshake/i.test(err.message)
  ) {
    return new TunnelError("TlsFailure", `tls handshake with ${where} failed: ${err.message}`, true, {
      cause: err,
    });
  }
  if (code.startsWith("ERR_HTTP2")) {
    return new TunnelError("Http2HandshakeFailure", `http/2 with ${where} failed: ${err.message}`, true, {
      cause: err,
    });
  }
  return new TunnelError(
    "ConnectionFailure",
    `connecting to ${where} failed (${code || err.message}), maybe a network policy is blocking HBONE port ${t.hbonePort}`,
    true,
    { cause: err },
  );
}

export { constants as h2constants };

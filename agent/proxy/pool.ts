// Pooled HBONE client: HTTP/2 sessions over TLS 1.3 to destination workloads' 15008, keyed by (source
// identity, destination address, expected destination identity), each carrying up to `maxStreams`
// CONNECT streams. Warm traffic costs one HEADERS frame per connection, no handshake.
//
// Invariants:
// - a Conn counts its streams (`streams`) from the moment a caller is given it, before the session is
//   even connected: concurrent callers share one connect instead of racing to open many;
// - a dead Conn (error, goaway, close, failed ping) is never handed out again and leaves the pool on close;
// - a Conn with 0 streams is closed after `idleMs`; every live Conn is PINGed every `pingIntervalMs` and
//   destroyed when a PING stays unanswered for `pingTimeoutMs`.
import { connect as h2connect, constants, type ClientHttp2Session, type ClientHttp2Stream } from "node:http2";
import { connect as tlsConnect } from "node:tls";
import { TunnelError } from "../errors.ts";
import { clientTlsOptions, type Svid } from "../tls/svid.ts";

export interface PoolSettings {
  readonly poolMaxStreams: number;
  readonly poolIdleMs: number;
  readonly pingIntervalMs: number;
  readonly pingTimeoutMs: number;
}

export interface TunnelRequest {
  readonly source: Svid;
  readonly bundle: readonly string[];
  /** Destination workload address (its 15008 listener). */
  readonly address: string;
  readonly hbonePort: number;
  readonly expectedIdentity: string;
  /** CONNECT target, "podIP:targetPort". */
  readonly authority: string;
  readonly headers?: Record<string, string>;
  readonly timeoutMs: number;
}

/** HTTP/2 flow control as ztunnel: 4 MiB per stream, 16 MiB per connection (bulk transfers at line rate). */
const STREAM_WINDOW = 4 * 1024 * 1024;
const CONNECTION_WINDOW = 16 * 1024 * 1024;

interface Conn {
  readonly key: string;
  readonly session: ClientHttp2Session;
  readonly ready: Promise<void>;
  streams: number;
  dead: boolean;
  idleTimer: NodeJS.Timeout | undefined;
  pingSentAt: number;
}

export class HbonePool {
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
   * Opens a CONNECT stream to `req.authority` through a pooled session. Resolves once the peer answered
   * 200; rejects with a TunnelError (flag + whether the endpoint is at fault) otherwise.
   */
  async connect(req: TunnelRequest): Promise<ClientHttp2Stream> {
    if (this.#closed) throw new TunnelError("ConnectionFailure", "the connection pool is closed", false);
    const conn = this.#checkout(req);
    let stream: ClientHttp2Stream | undefined;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new TunnelError(
          "ConnectionFailure",
          `connection to ${req.address}:${req.hbonePort} timed out after ${req.timeoutMs} ms, maybe a network policy is blocking HBONE port ${req.hbonePort}`,
          true,
        );
        if (stream) stream.close(constants.NGHTTP2_CANCEL);
        else if (conn.streams === 1) this.#kill(conn); // nobody else waits on this connect
        reject(err);
      }, req.timeoutMs);
    });
    try {
      await Promise.race([conn.ready, timeout]);
      stream = this.#request(conn, req);
      const s = stream;
      await Promise.race([awaitConnected(s, req), timeout]);
      return s;
    } catch (err) {
      if (!stream) this.#release(conn);
      else stream.close(constants.NGHTTP2_CANCEL);
      throw err;
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

  #checkout(req: TunnelRequest): Conn {
    const key = `${req.source.spiffeId}|${req.address}:${req.hbonePort}|${req.expectedIdentity}`;
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
    const c = this.#open(key, req);
    c.streams = 1;
    list.push(c);
    return c;
  }

  #open(key: string, req: TunnelRequest): Conn {
    const tlsOptions = clientTlsOptions(req.source, req.bundle, req.expectedIdentity);
    const session = h2connect(`https://${req.address}:${req.hbonePort}`, {
      createConnection: () => tlsConnect({ host: req.address, port: req.hbonePort, ...tlsOptions }),
      settings: { enablePush: false, initialWindowSize: STREAM_WINDOW },
    });
    const ready = new Promise<void>((resolve, reject) => {
      session.once("connect", () => {
        session.setLocalWindowSize(CONNECTION_WINDOW);
        resolve();
      });
      session.once("close", () =>
        reject(
          new TunnelError("ConnectionFailure", `connection to ${req.address}:${req.hbonePort} closed`, true),
        ),
      );
      session.once("error", (err: NodeJS.ErrnoException) => reject(classify(err, req)));
    });
    ready.catch(() => {}); // observed by connect(); avoid unhandled rejections for late failures
    const conn: Conn = { key, session, ready, streams: 0, dead: false, idleTimer: undefined, pingSentAt: 0 };
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

  #request(conn: Conn, req: TunnelRequest): ClientHttp2Stream {
    const stream = conn.session.request(
      { ":method": "CONNECT", ":authority": req.authority, ...req.headers },
      { endStream: false },
    );
    stream.once("close", () => this.#release(conn));
    return stream;
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

function awaitConnected(stream: ClientHttp2Stream, req: TunnelRequest): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(classify(err, req));
    const onClose = () =>
      reject(
        new TunnelError("ConnectionFailure", `tunnel to ${req.authority} was reset before it opened`, true),
      );
    stream.once("error", onError);
    stream.once("close", onClose);
    stream.once("response", (headers) => {
      stream.off("error", onError);
      stream.off("close", onClose);
      const status = Number(headers[":status"]);
      if (status === 200) return resolve();
      stream.close(constants.NGHTTP2_CANCEL);
      reject(statusError(status, req));
    });
  });
}

/** Maps the peer's CONNECT status to a response flag (ztunnel's answers: 401 policy, 400 bad target, 503 app). */
function statusError(status: number, req: TunnelRequest): TunnelError {
  if (status === 401 || status === 403) {
    return new TunnelError(
      "AuthorizationPolicyDenied",
      `${req.authority} refused the connection (HTTP ${status}): denied by an AuthorizationPolicy`,
      false,
    );
  }
  if (status === 503) {
    return new TunnelError(
      "ConnectionFailure",
      `the destination agent could not reach the application at ${req.authority} (HTTP 503); is it listening?`,
      true,
    );
  }
  return new TunnelError(
    "ConnectionFailure",
    `the destination agent answered HTTP ${status} for ${req.authority}; its config may be stale`,
    true,
  );
}

function classify(err: NodeJS.ErrnoException, req: TunnelRequest): TunnelError {
  const where = `${req.address}:${req.hbonePort}`;
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
    `connecting to ${where} failed (${code || err.message}), maybe a network policy is blocking HBONE port ${req.hbonePort}`,
    true,
    { cause: err },
  );
}

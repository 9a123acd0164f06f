// The server half of HBONE on one workload's 15008 listener: TLS 1.3 with a required client certificate
// chaining to the trust bundle, HTTP/2, each stream handed on with the peer's SPIFFE ID. Shared by the
// inbound tunnel and the egress gateway, so both get the same session hygiene:
// - sockets accepted before the workload has a certificate wait (paused) and are served once it has one;
//   setCredentials() afterwards swaps the context for new handshakes only;
// - a peer's FIN closes the session (HTTP/2 has no half-closed connection: the peer agent is gone; left
//   alone the socket sat in CLOSE-WAIT with its streams and the apps' connections behind them);
// - a session with no frame for `sessionIdleMs` is closed (peers PING theirs every few seconds, so only a
//   peer that vanished without a FIN gets there);
// - a session whose peer resets most of its streams before they are answered (CVE-2023-44487, "rapid
//   reset") is told ENHANCE_YOUR_CALM and closed, as Envoy's premature-reset limit does.
import {
  constants,
  createSecureServer,
  type Http2SecureServer,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import type { Server, Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import type { Logger } from "../../log.ts";
import { peerSpiffeId, serverTlsOptions, type Svid } from "../../tls/svid.ts";
import { CONNECTION_WINDOW, MAX_CONCURRENT_STREAMS, STREAM_WINDOW } from "./settings.ts";
import { classifyTlsFailure, type TlsFailureReporter } from "./tls-failures.ts";

export interface HboneServerOptions {
  /** The workload whose listener this is (logs). */
  readonly uid: string;
  readonly log: Logger;
  /** A session that carried no frame for this long is closed (0: never). */
  readonly sessionIdleMs: number;
  /** Counts and logs rejected handshakes (absent: debug log only). */
  readonly tlsFailures?: TlsFailureReporter;
  /** One stream, with the SPIFFE ID of the peer's certificate (undefined when it has none). */
  onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, principal: string | undefined): void;
}

/** Streams a session must have had before its share of premature resets is judged (Envoy: 500). */
const PREMATURE_RESET_MIN = 100;
/**
 * A peer agent completes its TLS handshake in milliseconds; a connection that has not within this
 * time is closed (Node's default is 120 s, long enough to hold thousands of idle sockets).
 */
const HANDSHAKE_TIMEOUT_MS = 10_000;

interface ResetCount {
  streams: number;
  premature: number;
  closed: boolean;
}

export class HboneServer {
  readonly #listener: Server;
  readonly #opts: HboneServerOptions;
  readonly #peers = new WeakMap<Http2Session, string | undefined>();
  readonly #resets = new WeakMap<Http2Session, ResetCount>();
  /** The peer address of each accepted socket: a TLS socket destroyed for a bad certificate forgets it. */
  readonly #addresses = new WeakMap<Socket, string>();
  #server: Http2SecureServer | undefined;
  #pending: Socket[] = [];
  #closed = false;

  constructor(listener: Server, opts: HboneServerOptions) {
    this.#listener = listener;
    this.#opts = opts;
    listener.on("connection", this.#onConnection);
  }

  setCredentials(svid: Svid, bundle: readonly string[]): void {
    if (this.#closed) return;
    const tls = serverTlsOptions(svid, bundle);
    if (this.#server) return void this.#server.setSecureContext(tls);
    const server = createSecureServer({
      ...tls,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      allowHTTP1: false,
      settings: {
        enablePush: false,
        initialWindowSize: STREAM_WINDOW,
        maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
      },
    });
    server.on("session", (session: Http2Session) => this.#onSession(session));
    server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
      stream.on("error", () => {});
      if (this.#countPrematureResets(stream)) return;
      this.#opts.onStream(stream, headers, this.#peers.get(stream.session as Http2Session));
    });
    server.on("tlsClientError", (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      const verdict = socket.authorizationError;
      this.#opts.tlsFailures?.report({
        reason: classifyTlsFailure(err, verdict),
        code: err.code,
        verdict: typeof verdict === "string" ? verdict : verdict?.message,
        peer: socket.remoteAddress ?? this.#addressOf(socket),
        workload: this.#opts.uid,
      });
      if (this.#opts.log.isLevelEnabled("debug")) {
        this.#opts.log.debug(
          { err, peer: socket.remoteAddress, workload: this.#opts.uid },
          "rejected tls client",
        );
      }
    });
    this.#server = server;
    for (const s of this.#pending.splice(0)) server.emit("connection", s);
  }

  close(): void {
    this.#closed = true;
    this.#listener.off("connection", this.#onConnection);
    for (const s of this.#pending.splice(0)) s.destroy();
    this.#server?.close();
  }

  readonly #onConnection = (socket: Socket): void => {
    if (this.#closed) return void socket.destroy();
    socket.setNoDelay(true);
    if (socket.remoteAddress) this.#addresses.set(socket, socket.remoteAddress);
    // The in-pod listener is opened half-open for the plain streams; a tunnel session has no use for
    // a half-closed TCP connection (a FIN ends the session), and a peer that sends its FIN before any
    // session exists must be closed at once rather than held until the handshake timeout.
    socket.allowHalfOpen = false;
    if (this.#server) this.#server.emit("connection", socket);
    else {
      socket.on("error", () => {});
      this.#pending.push(socket);
    }
  };

  /** The accepted socket under a TLS socket is Node's `_parent` (not typed; absent = unknown). */
  #addressOf(tls: TLSSocket): string | undefined {
    const parent = (tls as unknown as { _parent?: Socket })._parent;
    return parent ? this.#addresses.get(parent) : undefined;
  }

  #onSession(session: Http2Session): void {
    session.setLocalWindowSize(CONNECTION_WINDOW);
    this.#peers.set(session, peerSpiffeId((session.socket as TLSSocket).getPeerCertificate()));
    session.on("error", () => {});
    session.socket.once("end", () => session.destroy());
    if (this.#opts.sessionIdleMs > 0) {
      // A PING counts as activity for the session's timer only while a 'ping' listener exists: Node
      // skips its JavaScript ping callback (which refreshes the timer) otherwise, and a peer that only
      // PINGs its pooled session would be cut every sessionIdleMs.
      session.on("ping", () => {});
      session.setTimeout(this.#opts.sessionIdleMs, () => session.destroy());
    }
  }

  /** True when the stream's session is being closed for resetting too many streams. */
  #countPrematureResets(stream: ServerHttp2Stream): boolean {
    const session = stream.session;
    if (!session) return true;
    let c = this.#resets.get(session);
    if (!c) this.#resets.set(session, (c = { streams: 0, premature: 0, closed: false }));
    if (c.closed) return true;
    const count = c;
    count.streams++;
    stream.once("close", () => {
      if (stream.headersSent || stream.rstCode === constants.NGHTTP2_NO_ERROR) return;
      count.premature++;
      if (count.closed || count.streams < PREMATURE_RESET_MIN || count.premature * 2 <= count.streams) return;
      count.closed = true;
      this.#opts.log.warn(
        {
          workload: this.#opts.uid,
          peer: session.socket?.remoteAddress,
          streams: count.streams,
          resets: count.premature,
        },
        "closing a tunnel session whose peer resets most streams before they are answered (rapid reset)",
      );
      // GOAWAY first so the peer learns why; the socket goes at once if it does not close by itself.
      session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
      session.close();
      setTimeout(() => session.destroy(), 1000).unref();
    });
    return false;
  }
}

// One TCP port that serves HTTP/1.1 and HTTP/2 with prior knowledge (h2c), as a real backend
// behind a mesh must: the proxy may speak either. Each accepted socket is peeked until its first
// bytes match or rule out the HTTP/2 connection preface, the bytes are put back, and the socket is
// handed to a node:http or node:http2 server that never listens on its own.
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from "node:http";
import { createServer as createH2Server, type Http2Server, type ServerHttp2Session } from "node:http2";
import { createServer as createTcpServer, type Server, type Socket } from "node:net";
import type { AnyRequest, AnyResponse } from "./http-handler.ts";

/** RFC 9113 section 3.4: every HTTP/2 connection opens with these 24 octets. */
export const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

// A connection that sends nothing is closed after this long; a pooled, pre-opened proxy
// connection may sit idle for a while, so this is generous compared with node's 5 s keep-alive.
const SNIFF_TIMEOUT_MS = 30_000;

export type UpgradeHandler = (req: IncomingMessage, socket: Socket, head: Buffer) => void;

/** "h2" once the preface is complete, "http1" as soon as a byte differs, null while undecided. */
export function classify(first: Buffer): "h2" | "http1" | null {
  const n = Math.min(first.length, H2_PREFACE.length);
  if (!first.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) return "http1";
  return n === H2_PREFACE.length ? "h2" : null;
}

/** Invariants: every accepted socket is in `sockets` until it closes; h1/h2 never listen. */
export class DualServer {
  readonly tcp: Server;
  readonly #h1: HttpServer;
  readonly #h2: Http2Server;
  readonly #sockets = new Set<Socket>();
  readonly #sessions = new Set<ServerHttp2Session>();

  constructor(handler: (req: AnyRequest, res: AnyResponse) => void, upgrade: UpgradeHandler) {
    // Only WebSocket upgrades leave HTTP: an `Upgrade: h2c` from curl --http2 is served as plain
    // HTTP/1.1 (RFC 9113 dropped h2c upgrade), instead of being handed a raw socket.
    const shouldUpgradeCallback = (req: IncomingMessage): boolean =>
      /\bwebsocket\b/i.test(req.headers.upgrade ?? "");
    this.#h1 = createHttpServer({ shouldUpgradeCallback }, handler);
    this.#h1.on("upgrade", upgrade);
    this.#h2 = createH2Server({}, handler);
    this.#h2.on("session", (session: ServerHttp2Session) => {
      this.#sessions.add(session);
      session.once("close", () => this.#sessions.delete(session));
    });
    this.tcp = createTcpServer((socket) => this.#accept(socket));
  }

  #accept(socket: Socket): void {
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    socket.setTimeout(SNIFF_TIMEOUT_MS, () => socket.destroy());
    let seen: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const kind = classify(seen);
      if (kind === null) return;
      socket.off("data", onData);
      socket.pause();
      socket.setTimeout(0);
      socket.unshift(seen);
      if (kind === "h2") return void this.#h2.emit("connection", socket);
      // node:http2 drains the unshifted bytes itself; node:http only attaches a 'data' listener,
      // which does not restart a socket that was paused explicitly.
      this.#h1.emit("connection", socket);
      socket.resume();
    };
    socket.on("data", onData);
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.tcp.once("error", reject);
      this.tcp.listen(port, host, () => {
        this.tcp.off("error", reject);
        const address = this.tcp.address();
        resolve(typeof address === "object" && address !== null ? address.port : port);
      });
    });
  }

  /**
   * Stops accepting, lets in-flight requests finish (HTTP/2 gets GOAWAY, idle HTTP/1.1
   * connections are closed as they become idle), and destroys what is left after `graceMs`.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.tcp.close();
    for (const session of this.#sessions) session.close();
    const deadline = Date.now() + graceMs;
    while (this.#sockets.size > 0 && Date.now() < deadline) {
      this.#h1.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const socket of this.#sockets) socket.destroy();
  }
}

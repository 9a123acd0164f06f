// One bound socket of a Gateway: a plain TCP server for an HTTP port, a TLS server for an HTTPS port
// (TLS 1.2+, ALPN h2 and http/1.1, the certificate chosen per handshake by SNI, certs.ts). Accepted
// connections are handed on with the protocol they speak; the HTTP layer is the caller's. A plain HTTP
// port serves HTTP/1.1 (what browsers and curl send to http:// URLs); h2 needs HTTPS.
//
// Invariants: `#server` listens between a resolved listen() and close(); a handshake whose SNI selects no
// loaded certificate fails (the client sees a TLS alert), it never falls back to another listener's.
import { createServer as createTcpServer, type Server, type Socket } from "node:net";
import {
  createServer as createTlsServer,
  type SecureContext,
  type Server as TlsServer,
  type TLSSocket,
} from "node:tls";
import { AgentError } from "../errors.ts";
import type { Logger } from "../log.ts";

export interface ListenerOptions {
  /** "namespace/name:port" of the Gateway port (logs). */
  readonly key: string;
  readonly protocol: "HTTP" | "HTTPS";
  readonly address: string;
  readonly port: number;
  /** HTTPS: the context for a handshake's SNI; undefined fails the handshake. */
  readonly sni?: (servername: string) => SecureContext | undefined;
  readonly onConnection: (socket: Socket | TLSSocket, protocol: "http1" | "http2") => void;
  readonly log: Logger;
}

export class GatewayListener {
  readonly #opts: ListenerOptions;
  readonly #server: Server;
  #listening = false;

  constructor(opts: ListenerOptions) {
    this.#opts = opts;
    this.#server = opts.protocol === "HTTPS" ? this.#tls() : this.#tcp();
    this.#server.on("error", (err) => opts.log.error({ err, listener: opts.key }, "gateway listener error"));
  }

  get port(): number {
    const a = this.#server.address();
    return typeof a === "object" && a ? a.port : 0;
  }

  listen(): Promise<void> {
    const { address, port, key } = this.#opts;
    return new Promise((resolve, reject) => {
      const fail = (err: NodeJS.ErrnoException) =>
        reject(
          new AgentError(
            "NODEMESH_ERR_GATEWAY_LISTEN",
            `gateway ${key} cannot listen on ${address}:${port}: ${err.code ?? err.message}` +
              (err.code === "EADDRINUSE" ? "; another process (or gateway) holds the port" : "") +
              (err.code === "EADDRNOTAVAIL" ? "; the address is not on this node (spec.addresses)" : ""),
            { cause: err },
          ),
        );
      this.#server.once("error", fail);
      this.#server.listen({ host: address, port, exclusive: true }, () => {
        this.#server.removeListener("error", fail);
        this.#listening = true;
        resolve();
      });
    });
  }

  /** Stops accepting; open connections are the HTTP layer's to drain or close. */
  close(): Promise<void> {
    if (!this.#listening) return Promise.resolve();
    this.#listening = false;
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  /** HTTPS: the pair served to a client that sends no SNI (an https://<address>/ URL). */
  setDefaultCertificate(pem: { readonly cert: string; readonly key: string } | undefined): void {
    if (!pem || this.#opts.protocol !== "HTTPS" || pem === this.#defaultPem) return;
    this.#defaultPem = pem;
    (this.#server as TlsServer).setSecureContext({ cert: pem.cert, key: pem.key, minVersion: "TLSv1.2" });
  }

  #defaultPem: { readonly cert: string; readonly key: string } | undefined;

  #tcp(): Server {
    return createTcpServer({ noDelay: true }, (socket) => this.#opts.onConnection(socket, "http1"));
  }

  #tls(): Server {
    const { sni, key, log } = this.#opts;
    const server = createTlsServer({
      ALPNProtocols: ["h2", "http/1.1"],
      minVersion: "TLSv1.2",
      SNICallback: (servername, cb) => {
        const ctx = sni?.(servername);
        if (ctx) cb(null, ctx);
        else cb(new AgentError("NODEMESH_ERR_GATEWAY_CERT", `no certificate for ${servername} on ${key}`));
      },
    });
    // A client without SNI never reaches SNICallback: it gets setDefaultCertificate()'s pair.
    server.on("connection", (socket: Socket) => socket.setNoDelay(true));
    server.on("secureConnection", (s: TLSSocket) =>
      this.#opts.onConnection(s, s.alpnProtocol === "h2" ? "http2" : "http1"),
    );
    server.on("tlsClientError", (err, s: TLSSocket) =>
      log.debug({ err, listener: key, peer: s.remoteAddress }, "gateway tls handshake failed"),
    );
    return server;
  }
}

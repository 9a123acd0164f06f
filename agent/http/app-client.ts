// Keep-alive connections from the destination agent to a local application, opened from inside the
// workload's own network namespace (the datapath's connectApp), per workload: an http.Agent for HTTP/1.1
// applications and one h2c session per port for HTTP/2 and gRPC ones. Many requests from many peers
// thus share a few application connections, as a sidecar's would.
import type { Agent as HttpAgent, ClientRequest, IncomingMessage, OutgoingHttpHeaders } from "node:http";
import { connect as h2connect, type ClientHttp2Session, type ClientHttp2Stream } from "node:http2";
import type { Socket } from "node:net";

// getBuiltinModule, not an ES import: see agent/admin/server.ts (an ES import of node:http loads undici).
const { Agent: HttpAgentClass, request: h1request } = process.getBuiltinModule("node:http");

export type ConnectApp = (uid: string, address: string, port: number) => Promise<Socket>;

/** ztunnel/Envoy keep idle upstream connections about a minute; applications often close at 60-75 s. */
const IDLE_MS = 55_000;

export class AppClients {
  readonly #connect: ConnectApp;
  readonly #agents = new Map<string, HttpAgent>();
  readonly #sessions = new Map<string, Promise<ClientHttp2Session>>();

  constructor(connect: ConnectApp) {
    this.#connect = connect;
  }

  /** An HTTP/1.1 request to the application; the caller writes the body and reads the response. */
  http1(
    uid: string,
    address: string,
    port: number,
    method: string,
    path: string,
    headers: OutgoingHttpHeaders,
  ): ClientRequest {
    return h1request({ agent: this.#agent(uid), host: address, port, method, path, headers, setHost: false });
  }

  /** An HTTP/2 (h2c) stream to the application on a shared session. */
  async http2(
    uid: string,
    address: string,
    port: number,
    headers: OutgoingHttpHeaders,
    endStream: boolean,
  ): Promise<ClientHttp2Stream> {
    const session = await this.#session(uid, address, port);
    return session.request(headers, { endStream });
  }

  /** Closes a released workload's connections. */
  release(uid: string): void {
    this.#agents.get(uid)?.destroy();
    this.#agents.delete(uid);
    for (const [key, s] of this.#sessions) {
      if (key.startsWith(`${uid}|`)) {
        this.#sessions.delete(key);
        void s.then(
          (x) => x.destroy(),
          () => {},
        );
      }
    }
  }

  close(): void {
    for (const uid of [...this.#agents.keys()]) this.release(uid);
    for (const key of [...this.#sessions.keys()]) this.release(key.slice(0, key.indexOf("|")));
  }

  #agent(uid: string): HttpAgent {
    let agent = this.#agents.get(uid);
    if (agent) return agent;
    const connect = this.#connect;
    agent = new HttpAgentClass({
      keepAlive: true,
      keepAliveMsecs: 1000,
      timeout: IDLE_MS,
      scheduling: "lifo",
    });
    // Node's Agent accepts an asynchronous createConnection through its callback.
    (agent as unknown as { createConnection: unknown }).createConnection = (
      opts: { host: string; port: number },
      cb: (err: Error | null, socket?: Socket) => void,
    ) => {
      connect(uid, opts.host, opts.port).then(
        (s) => cb(null, s),
        (err: Error) => cb(err),
      );
      return undefined;
    };
    this.#agents.set(uid, agent);
    return agent;
  }

  #session(uid: string, address: string, port: number): Promise<ClientHttp2Session> {
    const key = `${uid}|${address}:${port}`;
    const have = this.#sessions.get(key);
    if (have) return have;
    const made = this.#connect(uid, address, port).then(
      (socket) =>
        new Promise<ClientHttp2Session>((resolve, reject) => {
          const session = h2connect(`http://${address}:${port}`, { createConnection: () => socket });
          session.once("connect", () => resolve(session));
          session.once("error", reject);
          session.on("error", () => {});
          const forget = () => {
            if (this.#sessions.get(key) === made) this.#sessions.delete(key);
          };
          session.once("close", forget);
          session.once("goaway", forget);
          session.setTimeout(IDLE_MS, () => session.close());
        }),
    );
    made.catch(() => {
      if (this.#sessions.get(key) === made) this.#sessions.delete(key);
    });
    this.#sessions.set(key, made);
    return made;
  }
}

export type { IncomingMessage };

// The node-relay paths: the floor of any proxy built on Node's own stacks, on the mesh's topology and with
// the mesh's shape but none of its logic (no capture, plan, balancing, policy, telemetry or log).
// - http (L7 rows): node 1's process serves HTTP/1.1 with node:http and sends each request as one HTTP/2
//   stream over one mutual-TLS session to node 2's process, which sends it to the server over keep-alive
//   HTTP/1.1 with an http.Agent and relays the answer back;
// - tcp (L4 rows): node 1's process takes TCP connections with node:net and carries each in one HTTP/2
//   CONNECT stream over one mutual-TLS session (HBONE's shape) to node 2's, which connects to the server.
// The mesh's cost above these rows is the mesh's own; HAProxy's below them is what Node's stacks cost.
//   node bench/node-relay.ts client http|tcp <listen host:port> <tunnel host:port> <cert dir>
//   node bench/node-relay.ts server http|tcp <listen host:port> <server host:port> <cert dir>
// Prints "listening" when ready. Certificates: bench/haproxy.ts makeCerts (n1.*, n2.*, ca.pem).
import { readFileSync } from "node:fs";
import { createServer as createTcpServer, connect as tcpConnect } from "node:net";
import { createServer, request, Agent, type IncomingMessage, type OutgoingHttpHeaders } from "node:http";
import {
  connect,
  constants,
  createSecureServer,
  type ClientHttp2Session,
  type SecureClientSessionOptions,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import { join } from "node:path";

const [role, mode, listen, upstream, certDir] = process.argv.slice(2);
if (!role || !listen || !upstream || !certDir || (mode !== "http" && mode !== "tcp"))
  throw new Error("usage: node-relay.ts client|server http|tcp <listen> <upstream> <certs>");
const split = (hp: string): [string, number] => {
  const i = hp.lastIndexOf(":");
  return [hp.slice(0, i), Number(hp.slice(i + 1))];
};
const [host, port] = split(listen);
const [upHost, upPort] = split(upstream);
const file = (n: string) => readFileSync(join(certDir, n));
const HOP = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "host",
  "te",
  "proxy-connection",
]);

function copyHeaders(h: IncomingHttpHeaders | IncomingMessage["headers"]): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const k in h) if (k.charCodeAt(0) !== 58 && !HOP.has(k)) out[k] = h[k];
  return out;
}

if (role === "client") {
  const name = "n1";
  let session: ClientHttp2Session | undefined;
  const sessionOf = (): ClientHttp2Session => {
    if (session && !session.closed && !session.destroyed) return session;
    const s = connect(`https://${upHost}:${upPort}`, {
      ca: file("ca.pem"),
      cert: file(`${name}.crt`),
      key: file(`${name}.key`),
      servername: "n2",
      noDelay: true,
    } as SecureClientSessionOptions);
    s.on("error", () => {});
    s.once("close", () => {
      if (session === s) session = undefined;
    });
    session = s;
    return s;
  };
  if (mode === "tcp") {
    const server = createTcpServer({ noDelay: true }, (socket) => {
      const stream = sessionOf().request({ ":method": "CONNECT", ":authority": upstream });
      stream.on("error", () => socket.destroy());
      socket.on("error", () => stream.close(constants.NGHTTP2_CANCEL));
      stream.once("response", () => {
        socket.pipe(stream);
        stream.pipe(socket);
      });
    });
    server.listen({ host, port, backlog: 4096 }, () => process.stdout.write("listening\n"));
  } else {
    const server = createServer(
      { keepAliveTimeout: 300_000, headersTimeout: 310_000, requestTimeout: 0 },
      (req, res) => {
        const stream = sessionOf().request(
          {
            ...copyHeaders(req.headers),
            ":method": req.method ?? "GET",
            ":path": req.url ?? "/",
            ":authority": req.headers.host ?? "x",
          },
          {
            endStream:
              req.headers["content-length"] === undefined && req.headers["transfer-encoding"] === undefined,
          },
        );
        stream.on("error", () => res.destroy());
        stream.once("response", (h) => {
          res.writeHead(Number(h[":status"]), copyHeaders(h) as Record<string, string>);
          stream.pipe(res);
        });
        if (!stream.writableEnded) req.pipe(stream);
      },
    );
    server.listen({ host, port, backlog: 4096 }, () => process.stdout.write("listening\n"));
  }
} else {
  const agent = new Agent({ keepAlive: true, scheduling: "lifo" });
  const server = createSecureServer({
    ca: file("ca.pem"),
    cert: file("n2.crt"),
    key: file("n2.key"),
    requestCert: true,
    rejectUnauthorized: true,
    settings: { enablePush: false },
  });
  server.on("secureConnection", (s: { setNoDelay(b: boolean): void }) => s.setNoDelay(true));
  server.on("stream", (stream: ServerHttp2Stream, h: IncomingHttpHeaders) => {
    if (mode === "tcp") {
      const socket = tcpConnect({ host: upHost, port: upPort, noDelay: true });
      socket.on("error", () => stream.close(constants.NGHTTP2_CONNECT_ERROR));
      stream.on("error", () => socket.destroy());
      socket.once("connect", () => {
        stream.respond({ ":status": 200 });
        socket.pipe(stream);
        stream.pipe(socket);
      });
      return;
    }
    const req = request({
      agent,
      host: upHost,
      port: upPort,
      method: String(h[":method"]),
      path: String(h[":path"]),
      headers: { ...copyHeaders(h), host: String(h[":authority"]) },
      setHost: false,
    });
    req.on("error", () => stream.close(constants.NGHTTP2_INTERNAL_ERROR));
    req.once("response", (res) => {
      stream.respond({ ...copyHeaders(res.headers), ":status": res.statusCode ?? 502 });
      res.pipe(stream);
    });
    stream.on("error", () => req.destroy());
    if (stream.endAfterHeaders) req.end();
    else stream.pipe(req);
  });
  server.listen({ host, port, backlog: 4096 }, () => process.stdout.write("listening\n"));
}
process.on("SIGTERM", () => process.exit(0));

// Tunnel hygiene (issue 10): an inbound HBONE session that carries no frame for sessionIdleMs is closed
// (a dead or half-gone peer), while one whose peer PINGs, as agents do, stays up. Real TLS and HTTP/2 on
// 127.0.0.1; the silent peer is a raw TLS socket that sends the HTTP/2 preface and then nothing.
import { connect as h2connect } from "node:http2";
import { createServer, type AddressInfo, type Server } from "node:net";
import { connect as tlsConnect } from "node:tls";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HboneServer } from "../../../../../agent/proxy/tunnel/hbone-server.ts";
import { inspectCertificate, type Svid } from "../../../../../agent/tls/svid.ts";
import { createTestCa } from "../../../../helpers/test-ca.ts";

const IDLE_MS = 300;
const ca = createTestCa();
const svid = (id: string): Svid => {
  const c = ca.issue(id);
  const info = inspectCertificate(c.certPem);
  return {
    spiffeId: id,
    keyPem: c.keyPem,
    certChain: [c.certPem],
    notBefore: info.notBefore,
    notAfter: info.notAfter,
  };
};
const server = svid("spiffe://cluster.local/ns/default/sa/server");
const client = svid("spiffe://cluster.local/ns/default/sa/client");

let listener: Server;
let hbone: HboneServer;
let port: number;

beforeAll(async () => {
  listener = createServer({ allowHalfOpen: true });
  await new Promise<void>((r) => listener.listen(0, "127.0.0.1", r));
  port = (listener.address() as AddressInfo).port;
  hbone = new HboneServer(listener, {
    uid: "default/server",
    log: pino({ level: "silent" }),
    sessionIdleMs: IDLE_MS,
    onStream: (stream) => stream.respond({ ":status": 200 }, { endStream: true }),
  });
  hbone.setCredentials(server, [ca.certPem]);
});
afterAll(() => {
  hbone.close();
  listener.close();
});

const tlsOptions = () => ({
  host: "127.0.0.1",
  port,
  key: client.keyPem,
  cert: client.certChain[0],
  ca: [ca.certPem],
  ALPNProtocols: ["h2"],
  rejectUnauthorized: false,
});

describe("HboneServer session idle limit", () => {
  it("closes a session whose peer went silent after the handshake", async () => {
    const started = performance.now();
    const socket = tlsConnect(tlsOptions());
    socket.on("error", () => {});
    await new Promise<void>((r) => socket.once("secureConnect", () => r()));
    // The client preface and an empty SETTINGS frame, then silence: no PING, no SETTINGS ACK.
    socket.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    socket.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]));
    socket.resume();
    await new Promise<void>((r) => socket.once("close", () => r()));
    const lived = performance.now() - started;
    expect(lived).toBeGreaterThanOrEqual(IDLE_MS - 50);
    expect(lived).toBeLessThan(IDLE_MS + 5000);
  });

  // Node refreshes a session's timer on a PING only while it has a 'ping' listener: without the
  // server's own, this session was cut at IDLE_MS.
  it("keeps a session whose peer PINGs, well past the idle limit", async () => {
    const session = h2connect(`https://127.0.0.1:${port}`, {
      createConnection: () => tlsConnect(tlsOptions()),
    });
    session.on("error", () => {});
    await new Promise<void>((r) => session.once("connect", () => r()));
    let closed = false;
    session.once("close", () => (closed = true));
    const pinger = setInterval(() => session.ping(() => {}), IDLE_MS / 3);
    await new Promise((r) => setTimeout(r, IDLE_MS * 4));
    clearInterval(pinger);
    expect(closed).toBe(false);
    session.destroy();
  });
});

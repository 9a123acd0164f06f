// The session pool and HBONE CONNECT against a real HTTP/2 + TLS server: stream cap → second session, idle release,
// concurrent callers share one connect, server identity check.
import { createSecureServer, type Http2SecureServer } from "node:http2";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HboneConnector } from "../../../agent/proxy/tunnel/hbone.ts";
import { SessionPool, type PoolSettings } from "../../../agent/proxy/tunnel/session-pool.ts";
import { inspectCertificate, type Svid } from "../../../agent/tls/svid.ts";
import { createTestCa } from "../../helpers/test-ca.ts";

const SERVER_ID = "spiffe://cluster.local/ns/default/sa/server";
const CLIENT_ID = "spiffe://cluster.local/ns/default/sa/client";

/** The pool and a CONNECT client over it, as the agent wires them. */
function hbonePool(settings: PoolSettings) {
  const pool = new SessionPool(settings);
  const hbone = new HboneConnector(pool);
  return { connect: hbone.connect.bind(hbone), stats: () => pool.stats(), close: () => pool.close() };
}

describe("SessionPool + HboneConnector", () => {
  const ca = createTestCa();
  let server: Http2SecureServer;
  let port: number;
  let sessions = 0;
  let client: Svid;

  beforeAll(async () => {
    const s = ca.issue(SERVER_ID);
    server = createSecureServer({ key: s.keyPem, cert: s.certPem, ca: [ca.certPem], requestCert: true });
    server.on("session", () => sessions++);
    server.on("stream", (st) => {
      st.on("error", () => {});
      st.respond({ ":status": 200 }, { endStream: false });
      st.on("data", (d) => st.write(d));
      st.on("end", () => st.end());
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
    const c = ca.issue(CLIENT_ID);
    const info = inspectCertificate(c.certPem);
    client = {
      spiffeId: CLIENT_ID,
      keyPem: c.keyPem,
      certChain: [c.certPem],
      notBefore: info.notBefore,
      notAfter: info.notAfter,
    };
  });
  afterAll(() => server.close());

  const req = (expectedIdentity = SERVER_ID) => ({
    source: client,
    bundle: [ca.certPem],
    address: "127.0.0.1",
    hbonePort: port,
    expectedIdentity,
    authority: "127.0.0.1:8080",
    timeoutMs: 2000,
  });

  it("opens a second session when the first reaches the stream cap; concurrent callers share connects", async () => {
    const pool = hbonePool({
      poolMaxStreams: 2,
      poolIdleMs: 60_000,
      pingIntervalMs: 0,
      pingTimeoutMs: 0,
    });
    const before = sessions;
    const streams = await Promise.all([pool.connect(req()), pool.connect(req()), pool.connect(req())]);
    expect(pool.stats()).toEqual({ sessions: 2, streams: 3 });
    expect(sessions - before).toBe(2);
    for (const s of streams) s.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(pool.stats().streams).toBe(0);
    expect(pool.stats().sessions).toBe(2); // kept warm
    const again = await pool.connect(req());
    expect(sessions - before).toBe(2); // reused, no handshake
    again.close();
    pool.close();
  });

  it("releases idle sessions after poolIdleMs", async () => {
    const pool = hbonePool({ poolMaxStreams: 100, poolIdleMs: 100, pingIntervalMs: 0, pingTimeoutMs: 0 });
    const s = await pool.connect(req());
    s.close();
    await new Promise((r) => setTimeout(r, 30));
    expect(pool.stats().sessions).toBe(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(pool.stats().sessions).toBe(0);
    pool.close();
  });

  it("keeps sessions alive with PING", async () => {
    const pool = hbonePool({
      poolMaxStreams: 100,
      poolIdleMs: 60_000,
      pingIntervalMs: 50,
      pingTimeoutMs: 1000,
    });
    const s = await pool.connect(req());
    await new Promise((r) => setTimeout(r, 200));
    expect(pool.stats().sessions).toBe(1);
    s.close();
    pool.close();
  });

  it("refuses a server whose certificate is not the expected identity (TlsFailure, endpoint fault)", async () => {
    const pool = hbonePool({
      poolMaxStreams: 100,
      poolIdleMs: 1000,
      pingIntervalMs: 0,
      pingTimeoutMs: 0,
    });
    await expect(pool.connect(req("spiffe://cluster.local/ns/default/sa/other"))).rejects.toMatchObject({
      flag: "TlsFailure",
      endpointFault: true,
    });
    pool.close();
  });

  it("fails fast on a refused port (ConnectionFailure)", async () => {
    const pool = hbonePool({
      poolMaxStreams: 100,
      poolIdleMs: 1000,
      pingIntervalMs: 0,
      pingTimeoutMs: 0,
    });
    const t = Date.now();
    await expect(pool.connect({ ...req(), hbonePort: 1 })).rejects.toMatchObject({
      flag: "ConnectionFailure",
    });
    expect(Date.now() - t).toBeLessThan(1000);
    pool.close();
  });
});

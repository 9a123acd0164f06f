// End-to-end fuzzing of the two servers that read bytes nobody vouches for, on two real agents in this
// process (mesh.ts): the downstream HTTP server behind a captured connection
// (random request lines, headers and bytes from the application) and the inbound HBONE server (random
// CONNECT targets and headers from a peer with a valid certificate, and random bytes, then a FIN,
// before any TLS session: the connection must be closed at once, not held for the handshake timeout). A
// server must answer (an HTTP status, a stream reset) or close, never crash the agent or leak an
// unhandled rejection (vitest fails the run on either), and must serve a valid request right after.
import { request } from "node:http";
import { connect as h2connect, type ClientHttp2Session } from "node:http2";
import { connect } from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ECHO, WEB, startFuzzMesh, type FuzzMesh } from "./mesh.ts";
import { FUZZ_TIMEOUT_MS, fuzz } from "./params.ts";

/** How long a server may take to answer or close a hostile request before the property fails. */
const ANSWER_MS = 3000;
const ECHO_TARGET = `${ECHO.pod}:${ECHO.port}`;

let mesh: FuzzMesh;
let capture: { host: string; port: number };
let echoCapture: { host: string; port: number };

beforeAll(async () => {
  mesh = await startFuzzMesh();
  capture = await mesh.dp.a.captureAddress("default/client", { address: WEB.vip, port: 80 });
  echoCapture = await mesh.dp.a.captureAddress("default/client", { address: ECHO.vip, port: 80 });
}, 60_000);

afterAll(async () => {
  await mesh?.stop();
});

/** Writes `bytes`, half-closes, and resolves with what came back once the server closed. */
function rawExchange(to: { host: string; port: number }, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect({ ...to, allowHalfOpen: false });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer and no close within ${ANSWER_MS} ms`));
    }, ANSWER_MS);
    s.on("error", () => {}); // a reset is a valid way to refuse
    s.on("data", (d: Buffer) => chunks.push(d));
    s.on("connect", () => s.end(bytes));
    s.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}

/** A TCP exchange through both agents and the tunnel to the echo app: the valid use of the HBONE server. */
async function validTunnel(): Promise<string> {
  return (await rawExchange(echoCapture, Buffer.from("still served"))).toString();
}

function validGet(): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { ...capture, path: "/ok", headers: { host: "web.default" }, agent: false },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

const token = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}$/);
const requestLine = fc.tuple(
  fc.oneof(
    fc.constantFrom("GET", "POST", "CONNECT", "PRI", "OPTIONS", "TRACE"),
    token,
    fc.string({ maxLength: 8 }),
  ),
  fc.oneof(
    fc.webPath(),
    fc.constantFrom("*", "http://evil/x", "//", "/%00", "/../..", ""),
    fc.string({ maxLength: 20 }),
  ),
  fc.constantFrom("HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/9", "", "http/1.1"),
);
const header = fc.tuple(
  fc.oneof(
    fc.constantFrom(
      "host",
      "content-length",
      "transfer-encoding",
      "connection",
      "upgrade",
      "expect",
      "te",
      "nodemesh-target",
      "nodemesh-app-protocol",
      "traceparent",
      "b3",
      "grpc-timeout",
      "x-request-id",
      "cookie",
      "forwarded",
    ),
    token,
  ),
  fc.oneof(
    fc.constantFrom(
      "chunked",
      "0",
      "-1",
      "99999999999999999999",
      "close",
      "websocket",
      "100-continue",
      "1S",
      "web.default",
    ),
    fc.string({ unit: "binary-ascii", maxLength: 30 }),
  ),
);
const httpRequest = fc
  .tuple(
    requestLine,
    fc.array(header, { maxLength: 6 }),
    fc.string({ unit: "binary-ascii", maxLength: 60 }),
    fc.boolean(),
  )
  .map(([[m, p, v], hs, body, crlf]) => {
    const eol = crlf ? "\r\n" : "\n";
    return Buffer.from(
      `${m} ${p} ${v}${eol}${hs.map(([k, val]) => `${k}: ${val}`).join(eol)}${eol}${eol}${body}`,
      "latin1",
    );
  });

describe("fuzz: the downstream HTTP server on a captured connection", () => {
  test(
    "any request bytes get an HTTP answer or a close, and a valid request is served right after",
    async () => {
      expect(await validGet()).toBe(200);
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            httpRequest,
            fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
          ),
          async (bytes) => {
            const reply = await rawExchange(capture, bytes);
            if (reply.length > 0) expect(reply.toString("latin1")).toMatch(/^HTTP\/1\.[01] \d{3} /);
            expect(await validGet()).toBe(200);
          },
        ),
        fuzz(150),
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});

describe("fuzz: the inbound HBONE server", () => {
  let session: ClientHttp2Session | undefined;
  const peer = () => {
    if (session && !session.destroyed && !session.closed) return session;
    const id = mesh.ca.issue("spiffe://cluster.local/ns/default/sa/client");
    session = h2connect(`https://${ECHO.pod}:15008`, {
      key: id.keyPem,
      cert: id.certPem,
      ca: [mesh.ca.certPem],
      checkServerIdentity: () => undefined,
    });
    session.on("error", () => {});
    return session;
  };
  afterAll(() => session?.destroy());

  /** One CONNECT: the status the server answered, or "reset" when it refused the stream. */
  function tunnel(headers: Record<string, string>, payload: string): Promise<number | "reset"> {
    return new Promise((resolve, reject) => {
      const s = peer().request({ ":method": "CONNECT", ...headers }, { endStream: false });
      const timer = setTimeout(
        () => (s.close(), reject(new Error(`no answer within ${ANSWER_MS} ms`))),
        ANSWER_MS,
      );
      let status: number | "reset" = "reset";
      s.on("response", (head) => {
        status = Number(head[":status"]);
        s.end(payload);
        s.resume();
      });
      s.on("error", () => {});
      s.on("close", () => (clearTimeout(timer), resolve(status)));
    });
  }

  test(
    "random CONNECT targets and headers from a valid peer get a status or a reset, and a valid one still opens",
    async () => {
      const authority = fc.oneof(
        fc.constantFrom(
          ECHO_TARGET,
          `${ECHO.pod}:0`,
          `${ECHO.pod}:65536`,
          `${ECHO.pod}:`,
          `${ECHO.pod}:0x${ECHO.port.toString(16)}`,
          ":80",
          "[::1]:80",
          "127.0.5.1:80",
          `${WEB.pod}:${WEB.port}`,
        ),
        fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 70000 })).map(([a, p]) => `${a}:${p}`),
        fc.stringMatching(/^[\x21-\x7e]{1,30}$/),
      );
      const extra = fc.dictionary(
        fc.constantFrom(
          "forwarded",
          "nodemesh-target",
          "nodemesh-app-protocol",
          "traceparent",
          "baggage",
          "x-a",
        ),
        fc.oneof(
          fc.constantFrom(
            'for="127.0.5.1"',
            "for=127.0.5.1:1;host=x",
            "http",
            "h2c",
            "grpc",
            `${WEB.pod}:${WEB.port}`,
          ),
          fc.stringMatching(/^[\x20-\x7e]{0,30}$/),
        ),
        { maxKeys: 3 },
      );
      await fc.assert(
        fc.asyncProperty(authority, extra, async (a, hs) => {
          const got = await tunnel({ ":authority": a, ...hs }, "hello");
          if (got !== "reset") expect(got >= 200 && got <= 599, String(got)).toBe(true);
          expect(await validTunnel()).toBe("still served");
        }),
        fuzz(60),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "random bytes and a FIN before TLS are answered with a close, and a valid tunnel still opens",
    async () => {
      const hbone = { host: ECHO.pod, port: 15008 };
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
            fc.constantFrom(
              Buffer.alloc(0),
              Buffer.from("1503030000", "hex"),
              Buffer.from("80090100000000", "hex"),
            ),
          ),
          async (bytes) => {
            await rawExchange(hbone, bytes); // rejects unless closed within ANSWER_MS
            expect(await validTunnel()).toBe("still served");
          },
        ),
        fuzz(40),
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});

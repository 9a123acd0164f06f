// pump() over a real HTTP/2 session on loopback: a response body relayed to a stream whose peer has
// already ended arrives whole and the stream closes with no write in flight (Node would otherwise build
// an ERR_STREAM_DESTROYED per response); backpressure holds a large body; a failed source resets the
// target with INTERNAL_ERROR (not the NO_ERROR of a destroy(), which reads as a complete body).
import { once } from "node:events";
import { connect, constants, createServer, type Http2Server, type ServerHttp2Stream } from "node:http2";
import type { AddressInfo } from "node:net";
import { PassThrough, Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { pump } from "../../../../agent/http/pump.ts";

let server: Http2Server | undefined;
afterEach(() => server?.close());

/** Serves every request by relaying `body()` with pump; resolves each stream's state at its close. */
async function serve(body: () => Readable) {
  const closes: { pendingWrite: boolean; bytes: number }[] = [];
  server = createServer();
  server.on("stream", (stream: ServerHttp2Stream) => {
    stream.on("error", () => {}); // as the agent's tunnel server: a reset target emits its error
    stream.resume();
    stream.once("end", () => {
      stream.respond({ ":status": 200 }, { endStream: false });
      let bytes = 0;
      pump(body(), stream, (n) => (bytes += n));
      stream.once("close", () => closes.push({ pendingWrite: stream.writableLength > 0, bytes }));
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const session = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const get = () =>
    new Promise<{ length: number; error?: string; rstCode?: number }>((resolve) => {
      const r = session.request({ ":method": "POST", ":path": "/" });
      let length = 0;
      r.on("data", (c: Buffer) => (length += c.length));
      r.on("end", () => resolve({ length }));
      r.on("error", (e: Error) => resolve({ length, error: e.message, rstCode: r.rstCode }));
      r.end("x");
    });
  return { closes, get, close: () => session.close() };
}

describe("pump", () => {
  it("relays a body whole and ends the stream", async () => {
    const s = await serve(() => Readable.from([Buffer.alloc(1024, 97)], { objectMode: false }));
    for (let i = 0; i < 50; i++) expect(await s.get()).toEqual({ length: 1024 });
    s.close();
    await new Promise((r) => setImmediate(r));
    expect(s.closes).toHaveLength(50);
    expect(s.closes.every((c) => c.bytes === 1024)).toBe(true);
  });

  it("relays a body larger than the HTTP/2 window with backpressure, and an empty one", async () => {
    const big = Buffer.alloc(4 * 1024 * 1024, 98);
    const chunks = Array.from({ length: 64 }, (_, i) => big.subarray(i * 65536, (i + 1) * 65536));
    const s1 = await serve(() => Readable.from(chunks));
    expect(await s1.get()).toEqual({ length: big.length });
    s1.close();
    server!.close();
    const s2 = await serve(() => Readable.from([]));
    expect(await s2.get()).toEqual({ length: 0 });
    s2.close();
  });

  it("resets the target with INTERNAL_ERROR when the source fails, never a clean end", async () => {
    const s = await serve(() => {
      const p = new PassThrough();
      p.write(Buffer.alloc(100));
      setImmediate(() => p.destroy(new Error("application connection reset")));
      return p;
    });
    const r = await s.get();
    // A destroy() would send RST_STREAM NO_ERROR: the peer would see 100 bytes and a normal end.
    expect(r).toMatchObject({ length: 100, rstCode: constants.NGHTTP2_INTERNAL_ERROR });
    expect(r.error).toMatch(/NGHTTP2_INTERNAL_ERROR/);
    s.close();
  });
});

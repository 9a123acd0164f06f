// RFC 6455 framing and handshake rules of the backend's WebSocket echo, and the h2c preface sniff.
import { describe, expect, it } from "vitest";
import { classify, H2_PREFACE } from "../../../../../demo/apps/lib/dual-server.ts";
import { acceptKey } from "../../../../../demo/apps/lib/websocket.ts";
import {
  CLOSE,
  closeReply,
  decodeFrame,
  encodeFrame,
  FrameError,
  OP,
} from "../../../../../demo/apps/lib/ws-frame.ts";

/** A client frame as a browser sends it: masked, with the length in the shortest form. */
function clientFrame(opcode: number, payload: Buffer, fin = true, mask = true): Buffer {
  const server = encodeFrame(opcode, payload);
  const headerLength = server.length - payload.length;
  const header = Buffer.from(server.subarray(0, headerLength));
  if (!fin) header[0] = header[0]! & 0x7f;
  if (!mask) return Buffer.concat([header, payload]);
  header[1] = header[1]! | 0x80;
  const key = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const masked = Buffer.from(payload.map((b, i) => b ^ key[i & 3]!));
  return Buffer.concat([header, key, masked]);
}

function decodeError(buf: Buffer, max = 1 << 20): FrameError {
  try {
    decodeFrame(buf, max);
  } catch (err) {
    if (err instanceof FrameError) return err;
    throw err;
  }
  throw new Error("expected a FrameError");
}

describe("decodeFrame", () => {
  it.each([0, 1, 125, 126, 65535, 65536, 200_000])("unmasks a %i-byte payload in every length form", (n) => {
    const payload = Buffer.from(Array.from({ length: n }, (_, i) => i % 251));
    const wire = clientFrame(OP.binary, payload);
    const result = decodeFrame(wire, 1 << 20);
    expect(result?.size).toBe(wire.length);
    expect(result?.frame.opcode).toBe(OP.binary);
    expect(result?.frame.fin).toBe(true);
    expect(result?.frame.payload.equals(payload)).toBe(true);
  });

  it("waits for more bytes at every cut of a frame instead of guessing", () => {
    const wire = clientFrame(OP.text, Buffer.alloc(70_000, "a"));
    for (const cut of [0, 1, 2, 5, 9, 13, wire.length - 1]) {
      expect(decodeFrame(wire.subarray(0, cut), 1 << 20)).toBeNull();
    }
  });

  it("decodes only the first of two frames that arrive together", () => {
    const one = clientFrame(OP.text, Buffer.from("one"));
    const result = decodeFrame(Buffer.concat([one, clientFrame(OP.text, Buffer.from("two"))]), 100);
    expect(result?.size).toBe(one.length);
    expect(result?.frame.payload.toString()).toBe("one");
  });

  it.each([
    [
      "an unmasked client frame",
      clientFrame(OP.text, Buffer.from("x"), true, false),
      CLOSE.protocolError,
      /not masked/,
    ],
    ["reserved bits", Buffer.from([0xc1, 0x80, 0, 0, 0, 0]), CLOSE.protocolError, /reserved bits/],
    ["an unknown opcode", Buffer.from([0x83, 0x80, 0, 0, 0, 0]), CLOSE.protocolError, /unknown opcode 0x3/],
    [
      "a fragmented ping",
      clientFrame(OP.ping, Buffer.from("p"), false),
      CLOSE.protocolError,
      /control frame/,
    ],
    ["a 126-byte ping", clientFrame(OP.ping, Buffer.alloc(126)), CLOSE.protocolError, /control frame/],
    ["a frame over the limit", clientFrame(OP.binary, Buffer.alloc(2000)), CLOSE.tooBig, /exceeds 1000/],
  ])("rejects %s with the right close code", (_name, wire, code, message) => {
    const err = decodeError(wire, 1000);
    expect(err.closeCode).toBe(code);
    expect(err.message).toMatch(message);
  });

  it("rejects a 64-bit length with the top bit set", () => {
    const wire = Buffer.from([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1]);
    expect(decodeError(wire).message).toMatch(/top bit/);
  });
});

describe("encodeFrame", () => {
  it.each([
    [5, 2],
    [125, 2],
    [126, 4],
    [65535, 4],
    [65536, 10],
  ])("writes a %i-byte payload with a %i-byte unmasked header", (n, header) => {
    const frame = encodeFrame(OP.text, Buffer.alloc(n, "z"));
    expect(frame.length).toBe(n + header);
    expect(frame[0]).toBe(0x80 | OP.text);
    expect(frame[1]! & 0x80).toBe(0);
  });
});

describe("closeReply", () => {
  const close = (code: number, reason = ""): Buffer => {
    const b = Buffer.alloc(2 + Buffer.byteLength(reason));
    b.writeUInt16BE(code, 0);
    b.write(reason, 2);
    return b;
  };

  it("answers an empty close with 1000 and a coded close with the same code", () => {
    expect(closeReply(Buffer.alloc(0))).toBe(1000);
    expect(closeReply(close(1001, "going away"))).toBe(1001);
    expect(closeReply(close(4000))).toBe(4000);
  });

  it.each([
    ["a 1-byte payload", Buffer.from([3]), CLOSE.protocolError],
    ["code 1005, which is never sent", close(1005), CLOSE.protocolError],
    ["code 999", close(999), CLOSE.protocolError],
    [
      "a reason that is not UTF-8",
      Buffer.concat([close(1000), Buffer.from([0xff, 0xfe])]),
      CLOSE.invalidPayload,
    ],
  ])("rejects %s", (_name, payload, code) => {
    expect(() => closeReply(payload)).toThrow(FrameError);
    try {
      closeReply(payload);
    } catch (err) {
      expect((err as FrameError).closeCode).toBe(code);
    }
  });
});

describe("handshake and protocol sniffing", () => {
  it("computes Sec-WebSocket-Accept as in RFC 6455 section 1.3", () => {
    expect(acceptKey("dGhlIHNhbXBsZSBub25jZQ==")).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  });

  it("waits on a prefix of the HTTP/2 preface, and decides on the full preface or the first differing byte", () => {
    expect(classify(Buffer.alloc(0))).toBeNull();
    expect(classify(H2_PREFACE.subarray(0, 3))).toBeNull();
    expect(classify(H2_PREFACE.subarray(0, 23))).toBeNull();
    expect(classify(H2_PREFACE)).toBe("h2");
    expect(classify(Buffer.concat([H2_PREFACE, Buffer.from([0, 0, 0, 4])]))).toBe("h2");
    expect(classify(Buffer.from("P"))).toBeNull();
    expect(classify(Buffer.from("POST / HTTP/1.1\r\n"))).toBe("http1");
    expect(classify(Buffer.from("GET / HTTP/1.1\r\n"))).toBe("http1");
    expect(classify(Buffer.from("PRI * HTTP/1.1\r\n"))).toBe("http1");
  });
});

// RFC 6455 framing for the server side of a WebSocket, pure (bytes in, frames out) so every rule
// is unit-tested: client frames must be masked, control frames short and unfragmented, reserved
// bits and opcodes unused. A violation is a FrameError carrying the close code to send (section 7.4).

export const OP = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

export const CLOSE = {
  normal: 1000,
  protocolError: 1002,
  invalidPayload: 1007,
  tooBig: 1009,
} as const;

export interface Frame {
  readonly fin: boolean;
  readonly opcode: number;
  readonly payload: Buffer;
}

export class FrameError extends Error {
  readonly closeCode: number;
  constructor(closeCode: number, message: string) {
    super(`websocket: ${message}`);
    this.name = "FrameError";
    this.closeCode = closeCode;
  }
}

const KNOWN_OPCODES = new Set<number>(Object.values(OP));
const isControl = (opcode: number): boolean => opcode >= 0x8;

/** Length of the payload and where the masking key starts, or null when the header is incomplete. */
function payloadLength(buf: Buffer): { length: number; offset: number } | null {
  const len7 = buf[1]! & 0x7f;
  if (len7 < 126) return { length: len7, offset: 2 };
  if (len7 === 126) return buf.length < 4 ? null : { length: buf.readUInt16BE(2), offset: 4 };
  if (buf.length < 10) return null;
  const length = buf.readBigUInt64BE(2);
  if (length >> 63n) throw new FrameError(CLOSE.protocolError, "64-bit payload length has its top bit set");
  // Anything past 2^53 is rejected by the caller's size limit long before it matters.
  return { length: Number(length), offset: 10 };
}

/**
 * Decodes the frame at the start of `buf`: null until it is complete, then the frame and how
 * many bytes it used. Throws FrameError on a protocol violation or a payload over `maxPayload`.
 */
export function decodeFrame(buf: Buffer, maxPayload: number): { frame: Frame; size: number } | null {
  if (buf.length < 2) return null;
  const b0 = buf[0]!;
  const b1 = buf[1]!;
  const opcode = b0 & 0x0f;
  const fin = (b0 & 0x80) !== 0;
  if (b0 & 0x70)
    throw new FrameError(CLOSE.protocolError, "reserved bits set without a negotiated extension");
  if (!KNOWN_OPCODES.has(opcode))
    throw new FrameError(CLOSE.protocolError, `unknown opcode 0x${opcode.toString(16)}`);
  if (!(b1 & 0x80)) throw new FrameError(CLOSE.protocolError, "client frame is not masked");
  const header = payloadLength(buf);
  if (header === null) return null;
  const { length, offset } = header;
  if (isControl(opcode) && (!fin || length > 125)) {
    throw new FrameError(CLOSE.protocolError, "control frame fragmented or longer than 125 bytes");
  }
  if (length > maxPayload)
    throw new FrameError(CLOSE.tooBig, `frame of ${length} bytes exceeds ${maxPayload}`);
  const start = offset + 4;
  if (buf.length < start + length) return null;
  const mask = buf.subarray(offset, start);
  const payload = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) payload[i] = buf[start + i]! ^ mask[i & 3]!;
  return { frame: { fin, opcode, payload }, size: start + length };
}

/** A complete, unmasked server frame (servers never mask, section 5.1). */
export function encodeFrame(opcode: number, payload: Buffer): Buffer {
  const n = payload.length;
  const extra = n < 126 ? 0 : n <= 0xffff ? 2 : 8;
  const header = Buffer.allocUnsafe(2 + extra);
  header[0] = 0x80 | opcode;
  if (extra === 0) header[1] = n;
  else if (extra === 2) {
    header[1] = 126;
    header.writeUInt16BE(n, 2);
  } else {
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(n), 2);
  }
  return Buffer.concat([header, payload]);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Throws invalidPayload (1007) unless `bytes` is well-formed UTF-8, as text frames must be. */
export function checkUtf8(bytes: Buffer, what: string): void {
  try {
    utf8.decode(bytes);
  } catch {
    throw new FrameError(CLOSE.invalidPayload, `${what} is not valid UTF-8`);
  }
}

/** The code to answer a peer's close frame with; throws on a malformed close payload. */
export function closeReply(payload: Buffer): number {
  if (payload.length === 0) return CLOSE.normal;
  if (payload.length === 1) throw new FrameError(CLOSE.protocolError, "close frame with a 1-byte payload");
  const code = payload.readUInt16BE(0);
  const valid =
    (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999);
  if (!valid) throw new FrameError(CLOSE.protocolError, `close code ${code} may not be sent on the wire`);
  checkUtf8(payload.subarray(2), "close reason");
  return code;
}

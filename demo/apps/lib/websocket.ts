// A WebSocket (RFC 6455) echo endpoint on /ws: the opening handshake, then every text or binary
// message comes back as one frame of the same type, pings get pongs, and a close is answered and
// ends the connection. With ?hello=1 the server speaks first, sending {"pod": ...}, so a client
// learns which pod it reached and the mesh is seen carrying server-to-client bytes after the 101.
import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import {
  checkUtf8,
  CLOSE,
  closeReply,
  decodeFrame,
  encodeFrame,
  FrameError,
  OP,
  type Frame,
} from "./ws-frame.ts";

const ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
// Large enough for the size tests (messages of a few MiB), small enough that a bad client cannot
// make the backend buffer without bound.
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export function acceptKey(key: string): string {
  return createHash("sha1")
    .update(key + ACCEPT_GUID)
    .digest("base64");
}

/** Why the handshake cannot be accepted, or null when it can (section 4.2.1). */
export function handshakeError(req: IncomingMessage): { status: number; reason: string } | null {
  const path = new URL(req.url ?? "/", "http://backend").pathname;
  if (path !== "/ws") return { status: 404, reason: `no WebSocket endpoint at ${path}; use /ws` };
  if (req.method !== "GET")
    return { status: 405, reason: `WebSocket handshake must be GET, got ${req.method}` };
  if (req.headers["sec-websocket-version"] !== "13") {
    return { status: 426, reason: "sec-websocket-version must be 13" };
  }
  const key = req.headers["sec-websocket-key"] ?? "";
  if (Buffer.from(key, "base64").length !== 16 || !/^[A-Za-z0-9+/]{22}==$/.test(key)) {
    return { status: 400, reason: "sec-websocket-key must be 16 random bytes in base64" };
  }
  return null;
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  426: "Upgrade Required",
};

function refuse(socket: Socket, status: number, reason: string, pod: string): void {
  const body = JSON.stringify({ pod, error: reason });
  const extra = status === 426 ? "sec-websocket-version: 13\r\n" : "";
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Bad Request"}\r\n` +
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `x-served-by: ${pod}\r\n${extra}connection: close\r\n\r\n${body}`,
  );
}

/** Invariants: `fragments` is non-empty only between the first and the final frame of a message. */
class EchoSession {
  readonly #socket: Socket;
  #buffer: Buffer = Buffer.alloc(0);
  #messageOpcode = 0;
  #fragments: Buffer[] = [];
  #fragmentBytes = 0;
  #closing = false;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => this.#receive(chunk));
    socket.on("error", () => socket.destroy());
    socket.on("drain", () => socket.resume());
  }

  send(opcode: number, payload: Buffer): void {
    // Pausing reads while the peer is slow to read our echoes keeps memory flat under load.
    if (!this.#socket.write(encodeFrame(opcode, payload))) this.#socket.pause();
  }

  #receive(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    try {
      for (let next = decodeFrame(this.#buffer, MAX_MESSAGE_BYTES); next !== null && !this.#closing;) {
        this.#buffer = this.#buffer.subarray(next.size);
        this.#frame(next.frame);
        next = decodeFrame(this.#buffer, MAX_MESSAGE_BYTES);
      }
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      this.#close(err.closeCode, err.message);
    }
  }

  #frame(frame: Frame): void {
    if (frame.opcode === OP.ping) return this.send(OP.pong, frame.payload);
    if (frame.opcode === OP.pong) return;
    if (frame.opcode === OP.close) return this.#close(closeReply(frame.payload), "");
    const starts = frame.opcode !== OP.continuation;
    if (starts === this.#fragments.length > 0) {
      const why = starts ? "new message before the previous one finished" : "continuation without a message";
      throw new FrameError(CLOSE.protocolError, why);
    }
    if (starts) this.#messageOpcode = frame.opcode;
    this.#fragmentBytes += frame.payload.length;
    if (this.#fragmentBytes > MAX_MESSAGE_BYTES) {
      throw new FrameError(CLOSE.tooBig, `message exceeds ${MAX_MESSAGE_BYTES} bytes`);
    }
    this.#fragments.push(frame.payload);
    if (!frame.fin) return;
    const message = Buffer.concat(this.#fragments);
    this.#fragments = [];
    this.#fragmentBytes = 0;
    if (this.#messageOpcode === OP.text) checkUtf8(message, "text message");
    this.send(this.#messageOpcode, message);
  }

  #close(code: number, reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    const payload = Buffer.alloc(2 + Buffer.byteLength(reason.slice(0, 120)));
    payload.writeUInt16BE(code, 0);
    payload.write(reason.slice(0, 120), 2);
    this.#socket.end(encodeFrame(OP.close, payload));
  }
}

/** The 'upgrade' handler for the HTTP/1.1 server: accepts /ws and starts echoing. */
export function createWebSocketEcho(
  pod: string,
): (req: IncomingMessage, socket: Socket, head: Buffer) => void {
  return (req, socket, head) => {
    const error = handshakeError(req);
    if (error !== null) return refuse(socket, error.status, error.reason, pod);
    socket.setNoDelay(true);
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n" +
        `sec-websocket-accept: ${acceptKey(req.headers["sec-websocket-key"]!)}\r\n` +
        `x-served-by: ${pod}\r\n\r\n`,
    );
    const session = new EchoSession(socket);
    const hello = new URL(req.url ?? "/", "http://backend").searchParams.get("hello");
    if (hello === "1") session.send(OP.text, Buffer.from(JSON.stringify({ pod })));
    if (head.length > 0) socket.emit("data", head);
  };
}

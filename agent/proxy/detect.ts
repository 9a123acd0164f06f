// Protocol detection on a captured connection whose port declares none: peek at the client's first bytes
// for an HTTP/1.x request line or the HTTP/2 preface. A server-first protocol (the client sends nothing
// until the server greets it) must not stall: after `timeoutMs` the connection is carried as opaque TCP
// (Linkerd's 10 s stall is a known complaint; ours defaults to far less). The bytes read are put back
// (`unshift`) so whoever carries the connection sees them first.
import type { Socket } from "node:net";

export type Detected = "http1" | "http2" | "tls" | "opaque" | "timeout" | "closed";

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** Longest method token we accept in a request line (RFC 9110 methods are short; WebDAV's are ≤ 16). */
const MAX_METHOD = 20;
/** Enough to see "METHOD /target HTTP/1.1" for any sane first line, or the whole preface. */
const MAX_PEEK = 8192;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Classifies the first bytes; undefined = not enough bytes yet to tell. Pure. */
export function classifyHead(head: Buffer): Exclude<Detected, "timeout" | "closed"> | undefined {
  if (head.length === 0) return undefined;
  if (head[0] === 0x16) return "tls"; // a TLS ClientHello record
  const n = Math.min(head.length, H2_PREFACE.length);
  if (head.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) {
    return head.length >= H2_PREFACE.length ? "http2" : undefined;
  }
  const sp = head.indexOf(0x20);
  if (sp < 0) {
    // A binary protocol shows a non-token byte at once: no need to wait for the timeout.
    const token = TOKEN.test(head.toString("latin1", 0, Math.min(head.length, MAX_METHOD + 1)));
    return !token || head.length > MAX_METHOD ? "opaque" : undefined;
  }
  if (sp === 0 || sp > MAX_METHOD || !TOKEN.test(head.toString("latin1", 0, sp))) return "opaque";
  const eol = head.indexOf("\r\n");
  if (eol < 0) return head.length >= MAX_PEEK ? "opaque" : undefined;
  return / HTTP\/1\.[01]$/.test(head.toString("latin1", 0, eol)) ? "http1" : "opaque";
}

export interface Detection {
  readonly protocol: Detected;
  /**
   * Set when the client half-closed (FIN) before the protocol was known: its bytes cannot be put back
   * into an ended stream, so the carrier writes them upstream itself and then ends the upstream.
   */
  readonly endedWith?: Buffer;
}

/** Reads until the protocol is known or `timeoutMs` passes; the bytes read are unshifted back. */
export function detectProtocol(socket: Socket, timeoutMs: number): Promise<Detection> {
  return new Promise((resolve) => {
    let head: Buffer = Buffer.alloc(0);
    const finish = (protocol: Detected, ended = false) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("close", onClose);
      socket.pause();
      if (ended) return resolve({ protocol, endedWith: head });
      if (head.length > 0) socket.unshift(head);
      resolve({ protocol });
    };
    const onData = (chunk: Buffer) => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const result = classifyHead(head);
      if (result) finish(result);
      else if (head.length >= MAX_PEEK) finish("opaque");
    };
    // A client that half-closes before the protocol is known is carried as TCP, FIN included.
    const onEnd = () => finish("opaque", true);
    const onClose = () => finish("closed");
    const timer = setTimeout(() => finish("timeout"), timeoutMs);
    socket.on("data", onData);
    socket.once("end", onEnd);
    socket.once("close", onClose);
    socket.resume();
  });
}

// Bidirectional copy between two duplex streams (a client socket and an HTTP/2 CONNECT stream, or a
// stream and the application's socket) with backpressure (a write that returns false pauses the source
// until the destination drains) and half-close (one side's end becomes the other side's end: FIN ↔
// END_STREAM), and one completion callback when both sides have closed. An error on either side destroys
// both (RST / RST_STREAM).
//
// Why not `stream.pipe`: pipe() adds its own 'data', 'drain', 'unpipe', 'close', 'finish' and 'error'
// listeners per direction and an extra dispatch per chunk; here each direction is one 'data' listener
// that writes, built once per connection (no per-chunk closure). Same semantics: a chunk is written as
// it is read, the source pauses when `write()` returns false and resumes on 'drain'.
import { constants, type Http2Stream } from "node:http2";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";

export type PipeDone = (err: Error | undefined) => void;

/** Returns a function that aborts the pipe (destroys both sides with `reason`). */
export function pipeBoth(a: Duplex, b: Duplex, done: PipeDone): (reason: Error) => void {
  let open = 2;
  let firstError: Error | undefined;
  const onClose = () => {
    if (--open === 0) done(firstError);
  };
  const onError = (err: Error) => {
    firstError ??= err;
    kill(a);
    kill(b);
  };
  a.once("close", onClose);
  b.once("close", onClose);
  a.on("error", onError);
  b.on("error", onError);
  // No automatic end: a FIN/END_STREAM is forwarded by `halfClose`, which turns a reset stream's 'end'
  // into a reset instead (Node ends the readable side of an RST_STREAMed stream before it reports the
  // error).
  forward(a, b);
  forward(b, a);
  a.once("end", () => halfClose(a, b));
  b.once("end", () => halfClose(b, a));
  if (a.isPaused()) a.resume();
  if (b.isPaused()) b.resume();
  return (reason: Error) => {
    firstError ??= reason;
    kill(a);
    kill(b);
  };
}

/** One direction: every chunk read from `from` is written to `to`; `from` waits while `to` is full. */
function forward(from: Duplex, to: Duplex): void {
  let waiting = false;
  const resume = () => {
    waiting = false;
    from.resume();
  };
  from.on("data", (chunk: Buffer) => {
    if (to.destroyed || to.write(chunk) || waiting) return;
    waiting = true;
    from.pause();
    to.once("drain", resume);
  });
}

function halfClose(from: Duplex, to: Duplex): void {
  if (!("rstCode" in from)) return void to.end();
  // Node ends an RST_STREAMed stream's readable side first and reports the reset a tick later: look
  // again after I/O callbacks so that a reset is forwarded as a reset, not as a clean FIN.
  setImmediate(() => {
    const rst = (from as Http2Stream).rstCode;
    if (from.errored || (rst !== undefined && rst !== constants.NGHTTP2_NO_ERROR)) kill(to);
    else to.end();
  });
}

/** An HTTP/2 stream is reset (RST_STREAM), a socket with a TCP RST. */
function kill(s: Duplex): void {
  if ("rstCode" in s) {
    // destroy(err) sends RST_STREAM without END_STREAM; close(code) lets the peer see a clean 'end'
    // before the reset (measured on Node 24), which would turn a cut into a graceful FIN.
    if (!s.destroyed) s.destroy(new Error("tunnel reset"));
  } else if ("resetAndDestroy" in s) {
    const sock = s as Socket;
    if (!sock.destroyed) sock.resetAndDestroy();
  } else {
    s.destroy();
  }
}

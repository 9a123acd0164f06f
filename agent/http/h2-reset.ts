// Resetting an HTTP/2 stream without ending it first. Node's `stream.close(code)` ends the writable
// side before it sends RST_STREAM: a body still being relayed goes out with END_STREAM, so the peer
// sees a complete (truncated) body and only then the reset — an upload the client abandoned would
// reach the application as a whole request. Generic: knows HTTP/2 streams, not requests.
import { constants, type Http2Stream } from "node:http2";

/** Error a stream is destroyed with when its writable side is still open (the wire says INTERNAL_ERROR). */
export class StreamReset extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`stream reset (HTTP/2 error code ${code})`);
    this.code = code;
  }
}

/**
 * RST_STREAM `code` when the stream's own body is complete; while it is still open, a destroy with an
 * error, which resets with INTERNAL_ERROR and never sends END_STREAM (Node offers no reset with a chosen
 * code that skips the end). The stream must have an 'error' listener.
 */
export function resetStream(stream: Http2Stream, code: number = constants.NGHTTP2_CANCEL): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.writableEnded) stream.close(code);
  else stream.destroy(new StreamReset(code));
}

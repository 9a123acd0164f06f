// A body relayed from one stream to another inside an agent (application ↔ tunnel stream). Generic:
// knows streams, not requests.
import type { Readable } from "node:stream";

/**
 * One direction with backpressure; the source's end ends the destination. A failed source destroys the
 * destination with the error: an HTTP/2 stream then sends RST_STREAM INTERNAL_ERROR (a destroy()
 * without one sends NO_ERROR, which the peer reads as a complete body: a response the application
 * cut would arrive truncated yet whole), an HTTP/1.1 request aborts its connection. `to` must have an
 * 'error' listener.
 * The end follows the last write at once: waiting for its callback (which would spare Node the
 * ERR_STREAM_DESTROYED it builds per response) sent END_STREAM in a later frame, and the source agent
 * then ended its HTTP/1.1 response after a client that had its whole body could already close.
 */
export function pump(
  from: Readable,
  to: NodeJS.WritableStream & { destroy(err?: Error): void; destroyed: boolean },
  count: (n: number) => void,
): void {
  from.on("data", (chunk: Buffer) => {
    count(chunk.length);
    if (!to.write(chunk)) {
      from.pause();
      (to as unknown as Readable).once("drain", () => from.resume());
    }
  });
  from.once("end", () => to.end());
  from.once("error", (err: Error) => {
    if (!to.destroyed) to.destroy(err);
  });
}

// A body relayed from one stream to another inside an agent (application ↔ tunnel stream). Generic:
// knows streams, not requests.
import type { Readable } from "node:stream";

/**
 * One direction with backpressure; the source's end ends the destination. A failed source destroys the
 * destination with the error: an HTTP/2 stream then sends RST_STREAM INTERNAL_ERROR (a destroy()
 * without one sends NO_ERROR, which the peer reads as a complete body: a response the application
 * cut would arrive truncated yet whole), an HTTP/1.1 request aborts its connection. `to` must have an
 * 'error' listener.
 * The end waits for the last write's callback: an HTTP/2 stream whose peer has already ended closes as
 * soon as it is ended, and closing with a write in flight makes Node build an ERR_STREAM_DESTROYED
 * (stack and all) for it — on every response, since the caller's request has ended by then.
 */
export function pump(
  from: Readable,
  to: NodeJS.WritableStream & { destroy(err?: Error): void; destroyed: boolean },
  count: (n: number) => void,
): void {
  let inFlight = 0;
  let ended = false;
  const finish = () => {
    if (!to.destroyed) to.end();
  };
  const written = () => {
    inFlight -= 1;
    if (ended && inFlight === 0) finish();
  };
  from.on("data", (chunk: Buffer) => {
    count(chunk.length);
    inFlight += 1;
    if (!to.write(chunk, written)) {
      from.pause();
      (to as unknown as Readable).once("drain", () => from.resume());
    }
  });
  from.once("end", () => {
    ended = true;
    if (inFlight === 0) finish();
  });
  from.once("error", (err: Error) => {
    if (!to.destroyed) to.destroy(err);
  });
}

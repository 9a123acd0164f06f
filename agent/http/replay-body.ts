// A request body that can be sent more than once, for retries: the client's body streams to the
// current try as it arrives (nothing waits for the whole body, so a client-streaming gRPC call is not
// stalled), while a copy is kept up to `maxBytes`. A retry gets a fresh stream that replays the copy and
// then follows the live body. Past `maxBytes` the copy is dropped and `replayable` turns false: the
// request is then not retried (Envoy's per-request buffer limit does the same).
//
// Invariants: only the newest view receives live chunks and drives backpressure (an older try is dead);
// `#chunks` is empty once overflowed.
import { PassThrough, type Readable } from "node:stream";

export class ReplayBody {
  readonly #source: Readable;
  readonly #maxBytes: number;
  #chunks: Buffer[] = [];
  #bytes = 0;
  #overflowed = false;
  #ended = false;
  #failed = false;
  #view: PassThrough | undefined;
  #started = false;

  constructor(source: Readable, maxBytes: number) {
    this.#source = source;
    this.#maxBytes = maxBytes;
  }

  /** Whether another try can have the whole body. */
  get replayable(): boolean {
    return !this.#overflowed && !this.#failed;
  }

  /** A fresh stream of the whole body for the next try; the previous view stops receiving. */
  view(): Readable {
    if (!this.replayable) throw new Error("request body is no longer replayable (over the retry buffer cap)");
    const previous = this.#view;
    const view = new PassThrough();
    this.#view = view;
    previous?.destroy();
    for (const c of this.#chunks) view.write(c);
    if (this.#ended) view.end();
    view.on("drain", () => this.#source.resume());
    if (!this.#started) this.#start();
    else this.#source.resume();
    return view;
  }

  #start(): void {
    this.#started = true;
    const src = this.#source;
    src.on("data", (chunk: Buffer) => {
      this.#keep(chunk);
      const view = this.#view;
      if (view && !view.destroyed && !view.write(chunk)) src.pause();
    });
    src.once("end", () => {
      this.#ended = true;
      this.#view?.end();
    });
    src.once("error", (err) => {
      this.#failed = true;
      this.#view?.destroy(err);
    });
    // An aborted client body closes without "end": no try may treat the partial body as whole.
    src.once("close", () => {
      if (this.#ended) return;
      this.#failed = true;
      this.#view?.destroy();
    });
  }

  #keep(chunk: Buffer): void {
    if (this.#overflowed) return;
    this.#bytes += chunk.length;
    if (this.#bytes > this.#maxBytes) {
      this.#overflowed = true;
      this.#chunks = [];
    } else this.#chunks.push(chunk);
  }
}

// RequestMirror as a layer: each mirror target gets a copy of the request (headers, and the body as it
// streams through), sent by the same upstream handler, its answer drained and dropped. The copy never
// slows the real request: it is fed without backpressure and abandoned when it falls more than
// MAX_BUFFERED bytes behind. Its authority carries Envoy's `-shadow` suffix so the mirror can tell.
import { PassThrough, type Readable } from "node:stream";
import type { Handler, Layer } from "../stack/compose.ts";
import type { Exchange, ResponseHead } from "./exchange.ts";

/** A mirror that cannot keep up is dropped rather than buffered without bound. */
const MAX_BUFFERED = 1024 * 1024;

export function mirrorLayer(send: Handler<Exchange, ResponseHead>): Layer<Exchange, ResponseHead> {
  return (next) => async (ex) => {
    const targets = ex.mirrors;
    if (!targets || targets.length === 0) return next(ex);
    const copies = targets.map(() =>
      ex.body ? new PassThrough({ highWaterMark: MAX_BUFFERED }) : undefined,
    );
    // The real request reads its own copy, with backpressure to the client; mirrors get theirs without.
    if (ex.body) ex.body = tee(ex.body, copies as PassThrough[]);
    targets.forEach((target, i) => {
      const shadow: Exchange = {
        ...ex,
        request: {
          ...ex.request,
          headers: { ...ex.request.headers },
          authority: `${ex.request.authority.replace(/:\d+$/, "")}-shadow`,
        },
        body: copies[i],
        backend: target,
        mirrors: undefined,
        signal: AbortSignal.timeout(30_000),
        requestBytes: 0,
      };
      send(shadow).then(
        (r) => r.body?.resume(),
        () => copies[i]?.destroy(),
      );
    });
    return next(ex);
  };
}

function tee(body: Readable, copies: PassThrough[]): Readable {
  const main = new PassThrough();
  body.on("data", (chunk: Buffer) => {
    for (const c of copies) {
      if (c.destroyed) continue;
      if (c.writableLength > MAX_BUFFERED) c.destroy();
      else c.write(chunk);
    }
    if (!main.write(chunk)) {
      body.pause();
      main.once("drain", () => body.resume());
    }
  });
  body.once("end", () => {
    main.end();
    copies.forEach((c) => c.end());
  });
  body.once("error", (err) => {
    main.destroy(err);
    copies.forEach((c) => c.destroy());
  });
  return main;
}

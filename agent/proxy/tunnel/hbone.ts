// HBONE: an opaque TCP connection as an HTTP/2 CONNECT stream on a pooled mTLS session. Resolves once
// the destination agent answered 200; its other answers become response flags (ztunnel's: 401 policy,
// 400 bad target, 503 application unreachable).
import type { ClientHttp2Stream } from "node:http2";
import { TunnelError } from "../../errors.ts";
import { classify, h2constants, type SessionPool, type SessionTarget } from "./session-pool.ts";

export interface TunnelRequest extends SessionTarget {
  /** CONNECT target, "podIP:targetPort". */
  readonly authority: string;
  readonly headers?: Record<string, string>;
}

export class HboneConnector {
  readonly #pool: SessionPool;

  constructor(pool: SessionPool) {
    this.#pool = pool;
  }

  /** Opens a CONNECT stream; `req.timeoutMs` bounds the whole establishment (session and 200). */
  async connect(req: TunnelRequest): Promise<ClientHttp2Stream> {
    const started = Date.now();
    const stream = await this.#pool.open(
      req,
      { ":method": "CONNECT", ":authority": req.authority, ...req.headers },
      { endStream: false },
    );
    const left = Math.max(1, req.timeoutMs - (Date.now() - started));
    try {
      await awaitConnected(stream, req, left);
      return stream;
    } catch (err) {
      stream.close(h2constants.NGHTTP2_CANCEL);
      throw err;
    }
  }
}

function awaitConnected(stream: ClientHttp2Stream, req: TunnelRequest, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      done();
      reject(
        new TunnelError(
          "ConnectionFailure",
          `tunnel to ${req.authority} via ${req.address}:${req.hbonePort} got no answer within ${req.timeoutMs} ms`,
          true,
        ),
      );
    }, timeoutMs);
    const onError = (err: NodeJS.ErrnoException) => (done(), reject(classify(err, req)));
    const onClose = () => {
      done();
      reject(
        new TunnelError("ConnectionFailure", `tunnel to ${req.authority} was reset before it opened`, true),
      );
    };
    const done = () => {
      clearTimeout(timer);
      stream.off("error", onError);
      stream.off("close", onClose);
    };
    stream.once("error", onError);
    stream.once("close", onClose);
    stream.once("response", (headers) => {
      done();
      const status = Number(headers[":status"]);
      if (status === 200) return resolve();
      reject(statusError(status, req));
    });
  });
}

/** Maps the peer's CONNECT status to a response flag. */
function statusError(status: number, req: TunnelRequest): TunnelError {
  if (status === 401 || status === 403) {
    return new TunnelError(
      "AuthorizationPolicyDenied",
      `${req.authority} refused the connection (HTTP ${status}): denied by an AuthorizationPolicy`,
      false,
    );
  }
  if (status === 503) {
    return new TunnelError(
      "ConnectionFailure",
      `the destination agent could not reach the application at ${req.authority} (HTTP 503); is it listening?`,
      true,
    );
  }
  return new TunnelError(
    "ConnectionFailure",
    `the destination agent answered HTTP ${status} for ${req.authority}; its config may be stale`,
    true,
  );
}

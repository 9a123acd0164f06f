// The test backend's request handler, one function for HTTP/1.1 and HTTP/2 (node's http2
// compatibility API gives both the same request/response shape). By default it answers a JSON
// report of what arrived; query parameters (see behaviour.ts) delay it, fail it, or swap the body
// for a streamed filler or an echo of the request body. Every answer names the pod in x-served-by.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { BehaviourError, parseBehaviour, shouldFail, type Behaviour } from "./behaviour.ts";

export type AnyRequest = IncomingMessage | Http2ServerRequest;
export type AnyResponse = ServerResponse | Http2ServerResponse;

/** What this handler needs of a response; node's HTTP/1.1 and HTTP/2 compat responses both fit. */
interface Reply {
  writeHead(status: number, headers: OutgoingHttpHeaders): unknown;
  write(chunk: Buffer): boolean;
  end(): unknown;
  end(data: string): unknown;
  once(event: "drain" | "close", listener: () => void): unknown;
}

// 64 KiB matches the default high-water mark of an HTTP/2 stream and a TCP socket, so each write
// is one unit of backpressure rather than many small ones.
const FILLER = Buffer.alloc(64 * 1024, "x");

/** The JSON body every plain request gets back. */
export interface Report {
  pod: string;
  method: string;
  url: string;
  path: string;
  query: Record<string, string>;
  authority: string;
  headers: AnyRequest["headers"];
  bodyBytes: number;
  peer: string;
  protocol: string;
}

export function protocolOf(req: AnyRequest): string {
  return req.httpVersionMajor === 2 ? "HTTP/2" : `HTTP/${req.httpVersion}`;
}

function sendJson(res: Reply, status: number, pod: string, body: object, head: boolean): void {
  const text = JSON.stringify(body);
  const noBody = head || status === 204 || status === 304;
  res.writeHead(status, {
    "content-type": "application/json",
    "x-served-by": pod,
    ...(noBody ? {} : { "content-length": Buffer.byteLength(text) }),
  });
  if (noBody) res.end();
  else res.end(text);
}

/** Runs `then` after `ms`, unless the client goes away first (no answer to a closed stream). */
function afterDelay(res: Reply, ms: number, then: () => void): void {
  if (ms === 0) return then();
  const timer = setTimeout(then, ms);
  res.once("close", () => clearTimeout(timer));
}

/** Writes `total` filler bytes, waiting for 'drain' whenever the peer reads slower than we write. */
function streamFiller(res: Reply, total: number): void {
  let left = total;
  const pump = (): void => {
    while (left > 0) {
      const chunk = left >= FILLER.length ? FILLER : FILLER.subarray(0, left);
      left -= chunk.length;
      if (!res.write(chunk)) return void res.once("drain", pump);
    }
    res.end();
  };
  pump();
}

/** Streams the request body back as it arrives; pausing the request is what carries backpressure. */
function streamEcho(req: AnyRequest, res: Reply): void {
  req.on("data", (chunk: Buffer) => {
    if (!res.write(chunk)) {
      req.pause();
      res.once("drain", () => req.resume());
    }
  });
  req.once("end", () => res.end());
  req.resume();
}

function report(req: AnyRequest, pod: string, url: URL, bodyBytes: number): Report {
  const authority = req.headers[":authority"] ?? req.headers.host ?? "";
  return {
    pod,
    method: req.method ?? "",
    url: req.url ?? "",
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    authority: String(authority),
    headers: req.headers,
    bodyBytes,
    peer: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
    protocol: protocolOf(req),
  };
}

function answer(req: AnyRequest, res: Reply, pod: string, url: URL, b: Behaviour, bodyBytes: number): void {
  const head = req.method === "HEAD";
  if (shouldFail(b)) {
    return sendJson(res, 503, pod, { pod, error: `injected failure (fail=${b.failPercent}%)` }, head);
  }
  if (b.bytes === null) return sendJson(res, b.status, pod, report(req, pod, url, bodyBytes), head);
  res.writeHead(b.status, {
    "content-type": "application/octet-stream",
    "content-length": b.bytes,
    "x-served-by": pod,
  });
  if (head) return void res.end();
  streamFiller(res, b.bytes);
}

/**
 * Builds the handler for one pod; the same function serves the HTTP/1.1 and the HTTP/2 server.
 * `failPercent` makes this pod fail that share of the requests that do not set `?fail=` themselves:
 * the demo's bad canary, a pod whose new version answers 503 to every other request.
 */
export function createHandler(pod: string, failPercent = 0): (req: AnyRequest, res: AnyResponse) => void {
  return (req, anyRes) => {
    const res: Reply = anyRes;
    const url = new URL(req.url ?? "/", "http://backend");
    if (url.pathname === "/ws") {
      const error = "/ws is a WebSocket endpoint: send GET with Upgrade: websocket over HTTP/1.1";
      return sendJson(res, 426, pod, { pod, error }, req.method === "HEAD");
    }
    let behaviour: Behaviour;
    try {
      behaviour = parseBehaviour(url.searchParams);
      if (failPercent > 0 && !url.searchParams.has("fail")) behaviour = { ...behaviour, failPercent };
    } catch (err) {
      if (!(err instanceof BehaviourError)) throw err;
      req.resume();
      return sendJson(res, 400, pod, { pod, error: err.message, field: err.field }, req.method === "HEAD");
    }
    if (behaviour.echo && req.method !== "HEAD") {
      const type = req.headers["content-type"] ?? "application/octet-stream";
      return afterDelay(res, behaviour.delayMs, () => {
        res.writeHead(behaviour.status, { "content-type": type, "x-served-by": pod });
        streamEcho(req, res);
      });
    }
    // Count the body rather than keep it: size tests send hundreds of megabytes.
    let bodyBytes = 0;
    req.on("data", (chunk: Buffer) => (bodyBytes += chunk.length));
    req.once("end", () =>
      afterDelay(res, behaviour.delayMs, () => answer(req, res, pod, url, behaviour, bodyBytes)),
    );
  };
}

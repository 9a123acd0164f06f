// The workload-facing side of the HTTP path: a captured connection, once known to speak HTTP/1.1 or
// HTTP/2 prior knowledge (h2c), is handed to one shared node:http or node:http2 server (never listening:
// sockets arrive by `emit("connection")`). Each request becomes an Exchange for the composed layers; the
// response they return is written back with backpressure, trailers and the right framing. HTTP/1.1
// keep-alive, pipelining (answered in order), chunked bodies and `Expect: 100-continue` are Node's.
// An `Upgrade` (WebSocket) is handed to `onUpgrade`, which carries the connection as opaque TCP.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import {
  createServer as createH2,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
} from "node:http2";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Handler } from "../stack/compose.ts";
import type { MeshView, ServicePortInfo, WorkloadInfo } from "../state/view.ts";
import { localReply, type Exchange, type ResponseHead } from "./exchange.ts";
import { endToEnd, ensureRequestId } from "./headers.ts";

/** What the outbound proxy knows about a connection before its first request. */
export interface DownstreamContext {
  readonly view: () => MeshView;
  readonly source: WorkloadInfo;
  readonly servicePort: ServicePortInfo;
  readonly socket: Socket;
}

export interface RequestDone {
  readonly exchange: Exchange;
  readonly response: ResponseHead;
  readonly requestBytes: number;
  readonly responseBytes: number;
  /** From the response's trailers (or headers, for a trailers-only answer). */
  readonly grpcStatus: string | undefined;
  /** The client went away before the response was complete. */
  readonly aborted: boolean;
}

export interface DownstreamDeps {
  readonly handler: Handler<Exchange, ResponseHead>;
  readonly onDone: (done: RequestDone) => void;
  readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer, ctx: DownstreamContext) => void;
}

// getBuiltinModule, not an ES import: see agent/admin/server.ts (an ES import of node:http loads undici).
const { createServer: createH1 } = process.getBuiltinModule("node:http");

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;
/** What both response kinds offer; their unions of overloads are not callable as such. */
interface ResWriter {
  writeHead(status: number, headers: Record<string, string | string[] | number>): unknown;
  write(chunk: Buffer): boolean;
  end(): unknown;
  addTrailers(t: Record<string, string>): void;
}

export class DownstreamServer {
  readonly #deps: DownstreamDeps;
  readonly #h1 = createH1({ keepAliveTimeout: 60_000, requestTimeout: 0, headersTimeout: 60_000 });
  readonly #h2 = createH2({ settings: { enablePush: false } });
  readonly #ctx = new WeakMap<object, DownstreamContext>();
  #pending: DownstreamContext | undefined;

  constructor(deps: DownstreamDeps) {
    this.#deps = deps;
    this.#h1.on("request", (req: IncomingMessage, res: ServerResponse) => {
      const ctx = this.#ctx.get(req.socket);
      // The HTTP/1 parser accepts any "HTTP/d.d"; major 2 here would be taken for an HTTP/2 stream.
      if (req.httpVersionMajor !== 1) {
        res.shouldKeepAlive = false;
        return void res.writeHead(505, { "content-length": 0 }).end();
      }
      if (ctx) void this.#serve(req, res, ctx);
      else res.destroy();
    });
    this.#h1.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const ctx = this.#ctx.get(req.socket);
      if (ctx) deps.onUpgrade(req, socket, head, ctx);
      else socket.destroy();
    });
    this.#h1.on("clientError", (_err, socket: Duplex) => {
      if (socket.writable)
        socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
      else socket.destroy();
    });
    // The session is created synchronously inside emit("connection"): bind it to the context then.
    this.#h2.on("session", (session: Http2Session) => {
      if (this.#pending) this.#ctx.set(session, this.#pending);
      session.on("error", () => {});
    });
    this.#h2.on("request", (req: Http2ServerRequest, res: Http2ServerResponse) => {
      const ctx = this.#ctx.get(req.stream.session as Http2Session);
      if (ctx) void this.#serve(req, res, ctx);
      else res.stream.close();
    });
  }

  accept(socket: Socket, protocol: "http1" | "http2", ctx: DownstreamContext): void {
    if (protocol === "http1") {
      this.#ctx.set(socket, ctx);
      this.#h1.emit("connection", socket);
      socket.resume(); // detection paused it; the HTTP/1.1 parser reads through 'data'
    } else {
      // Not resumed: the HTTP/2 session reads the socket's handle itself, after replaying what detection
      // put back (on the next tick, before any new read); a JS 'data' flow beside it would steal frames.
      this.#pending = ctx;
      this.#h2.emit("connection", socket);
      this.#pending = undefined;
    }
  }

  close(): void {
    this.#h1.closeAllConnections();
  }

  async #serve(req: Req, res: Res, ctx: DownstreamContext): Promise<void> {
    const headers = endToEnd(req.headers);
    const requestId = ensureRequestId(headers);
    const abort = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) abort.abort();
    });
    const exchange = newExchange(req, ctx, headers, requestId, abort.signal);
    exchange.body = hasBody(req) ? req : undefined;
    let response: ResponseHead;
    try {
      response = await this.#deps.handler(exchange);
    } catch (err) {
      response = localReply(
        502,
        "ProxyError",
        `the mesh failed on this request: ${(err as Error).message}`,
        isGrpc(exchange),
      );
    }
    this.#respond(req, res, exchange, response);
  }

  #respond(req: Req, res: Res, exchange: Exchange, response: ResponseHead): void {
    let responseBytes = 0;
    let finished = false;
    const g = response.headers["grpc-status"];
    let grpcStatus = typeof g === "string" ? g : undefined;
    const done = (aborted: boolean) => {
      if (finished) return;
      finished = true;
      this.#deps.onDone({
        exchange,
        response,
        requestBytes: exchange.requestBytes,
        responseBytes,
        grpcStatus,
        aborted,
      });
    };
    response.trailers?.then(
      (t) => {
        const s = t?.["grpc-status"];
        if (typeof s === "string") grpcStatus = s;
      },
      () => {},
    );
    res.once("finish", () => done(false));
    res.once("close", () => done(!res.writableFinished));
    if (res.destroyed) return done(true);
    for (const f of exchange.responseFilters ?? []) f(response.headers as Record<string, string>);
    const headers = endToEnd(response.headers as Record<string, string>);
    const w = res as unknown as ResWriter;
    w.writeHead(response.status, headers as Record<string, string>);
    const body = response.body;
    if (!body) return void finishWithTrailers(res, response);
    body.on("data", (chunk: Buffer) => {
      responseBytes += chunk.length;
      if (!w.write(chunk)) {
        body.pause();
        res.once("drain", () => body.resume());
      }
    });
    body.once("end", () => finishWithTrailers(res, response));
    body.once("error", () => res.destroy());
    res.once("close", () => {
      if (!body.readableEnded) body.destroy();
    });
  }
}

/** The Exchange of one request from the workload, before any layer ran. */
export function newExchange(
  req: Req,
  ctx: DownstreamContext,
  headers: OutgoingHttpHeaders,
  requestId: string,
  signal: AbortSignal,
): Exchange {
  const http2 = req.httpVersionMajor === 2;
  return {
    view: ctx.view(),
    source: ctx.source,
    servicePort: ctx.servicePort,
    request: {
      method: req.method ?? "GET",
      path: req.url ?? "/",
      authority: String(
        (http2 ? req.headers[":authority"] : req.headers.host) ?? ctx.servicePort.service.host,
      ),
      headers,
      protocol: http2 ? "HTTP/2" : "HTTP/1.1",
      requestId,
    },
    body: undefined,
    signal,
    start: performance.now(),
    requestBytes: 0,
  };
}

function finishWithTrailers(res: Res, response: ResponseHead): void {
  const w = res as unknown as ResWriter;
  if (!response.trailers) return void w.end();
  response.trailers.then(
    (t) => {
      if (t && Object.keys(t).length > 0) w.addTrailers(t as Record<string, string>);
      w.end();
    },
    () => res.destroy(),
  );
}

function hasBody(req: Req): boolean {
  if (req.httpVersionMajor === 2) return !(req as Http2ServerRequest).stream.endAfterHeaders;
  const length = req.headers["content-length"];
  return length !== undefined ? length !== "0" : req.headers["transfer-encoding"] !== undefined;
}

export function isGrpc(ex: Exchange): boolean {
  const ct = ex.request.headers["content-type"];
  return typeof ct === "string" && ct.startsWith("application/grpc");
}

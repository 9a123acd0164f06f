// The outbound HTTP path, assembled: captured connections known to speak HTTP are served by the
// DownstreamServer; each request runs the composed layers (route → upstream; issue-8 layers such as
// retry, timeout and breaker slot in between) and is reported once by the source reporter. An upgrade
// (WebSocket) is routed like a request, then carried as opaque TCP to one endpoint of its backend.
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { compose, type Layer } from "../stack/compose.ts";
import type { MeshView } from "../state/view.ts";
import type { RequestTelemetry } from "../telemetry/http.ts";
import type { ForwardPlan } from "../proxy/plan.ts";
import type { HttpCarrier } from "../proxy/outbound.ts";
import type { Exchange, ResponseHead } from "./exchange.ts";
import { headerValue } from "./headers.ts";
import { mirrorLayer } from "./mirror.ts";
import { reportOutbound } from "./outbound-report.ts";
import { selectBackend, routeLayer } from "./route.ts";
import type { OutboundTracing } from "./trace.ts";
import { DownstreamServer, newExchange, type DownstreamContext, type RequestDone } from "./server.ts";
import { upstreamHandler, type UpstreamDeps } from "./upstream.ts";

export interface HttpOutboundDeps extends UpstreamDeps {
  view(): MeshView;
  readonly telemetry: RequestTelemetry;
  /** Carries an upgraded connection as opaque TCP to `plan`'s endpoints, `head` written first. */
  readonly tunnel: (socket: Duplex, plan: ForwardPlan, head: Buffer) => void;
  /** Extra layers between routing and the upstream (issue 8: retry, timeout, breaker, fault, rate limit). */
  readonly layers?: readonly Layer<Exchange, ResponseHead>[];
  /** CLIENT spans (agent/http/trace.ts): outermost layer, one event per try; absent = tracing off. */
  readonly tracing?: OutboundTracing;
}

export class HttpOutbound implements HttpCarrier {
  readonly #server: DownstreamServer;
  readonly #deps: HttpOutboundDeps;
  readonly #plans = new WeakMap<Socket, ForwardPlan>();

  constructor(deps: HttpOutboundDeps) {
    this.#deps = deps;
    const upstream = upstreamHandler(deps);
    const t = deps.tracing;
    const layers = [routeLayer(), mirrorLayer(upstream), ...(deps.layers ?? [])];
    this.#server = new DownstreamServer({
      handler: compose(t ? [t.layer, ...layers, t.attempts] : layers, upstream),
      onDone: (done) => this.#report(done),
      onUpgrade: (req, socket, head, ctx) => this.#upgrade(req, socket, head, ctx),
    });
  }

  accept(socket: Socket, protocol: "http1" | "http2", plan: ForwardPlan): void {
    const servicePort = plan.servicePort;
    if (!servicePort) return void socket.destroy(); // plan.ts sends only service ports here
    this.#plans.set(socket, plan);
    this.#server.accept(socket, protocol, {
      view: () => this.#deps.view(),
      source: plan.source,
      servicePort,
      socket,
    });
  }

  close(): void {
    this.#server.close();
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, ctx: DownstreamContext): void {
    const plan = this.#plans.get(ctx.socket);
    if (!plan) return void socket.destroy();
    const probe = newExchange(
      req,
      ctx,
      req.headers,
      headerValue(req.headers, "x-request-id"),
      new AbortController().signal,
    );
    const backend = selectBackend(probe);
    if ("status" in backend) {
      socket.end(
        `HTTP/1.1 ${backend.status} ${backend.reason ?? ""}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
      );
      return;
    }
    // The application answers the upgrade itself: the request goes through as it came, byte for byte.
    const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
    for (let i = 0; i < req.rawHeaders.length; i += 2)
      lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    const prefix = Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), head]);
    this.#deps.tunnel(
      socket,
      {
        ...plan,
        servicePort: backend,
        endpoints: backend.endpoints,
        destination: backend.key,
        serviceHost: backend.service.host,
      },
      prefix,
    );
  }

  #report(done: RequestDone): void {
    reportOutbound(this.#deps.telemetry, done, "source", this.#deps.tracing?.finish(done));
  }
}

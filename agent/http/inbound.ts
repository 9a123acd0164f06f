// The destination agent's side of a per-request stream (any method but CONNECT on 15008): checks that the
// target is this workload, authorizes the request (L7 AuthorizationPolicy), and sends it to the
// application over a keep-alive connection from inside the pod, HTTP/1.1 or h2c as the port speaks. The
// answer goes back on the same stream: status, headers, body with backpressure, trailers (gRPC). Rate
// limits are checked after authorization (local-ratelimit.ts), and an HTTP/1.1 application connection
// is closed after the destination's `connectionPool.http.maxRequestsPerConnection` requests.
import { isIPv4 } from "node:net";
import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import {
  constants,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import { evaluateAuthz, normalizePath } from "../policy/authz.ts";
import type { MeshView, WorkloadInfo } from "../state/view.ts";
import { parseForwarded } from "../proxy/inbound.ts";
import { parseHostPort } from "../proxy/tunnel/host-port.ts";
import type { AppClients } from "./app-client.ts";
import type { LocalRateLimiter } from "./local-ratelimit.ts";
import { grpcStatusOf } from "./exchange.ts";
import { APP_PROTOCOL_HEADER, REMOTE_IP_HEADER, TARGET_HEADER, endToEnd, headerValue } from "./headers.ts";
import type { InboundTracing } from "./trace.ts";
import { FLAG_HEADER } from "./upstream.ts";
import { RULE_HEADER } from "./ratelimit-policy.ts";
import { closeAfterRequests } from "./app-connection-limit.ts";
import { pump } from "./pump.ts";
import { resetStream } from "./h2-reset.ts";
import type { TraceSpan } from "../telemetry/tracing/index.ts";

/** One request as the destination reporter records it. */
export interface InboundRequest {
  readonly uid: string;
  readonly workload: WorkloadInfo | undefined;
  readonly principal: string | undefined;
  /** The calling pod's address when the peer's certificate proves it, else the peer agent's. */
  readonly sourceAddress: string;
  readonly headers: IncomingHttpHeaders;
  readonly start: number;
  status: number;
  flag: string;
  reason?: string;
  policy?: string;
  requestBytes: number;
  responseBytes: number;
  grpcStatus?: string;
  /** The SERVER span (tracing on): ended when the request is reported. */
  readonly span?: TraceSpan;
}

export interface InboundHttpDeps {
  view(): MeshView;
  readonly apps: AppClients;
  readonly limiter: LocalRateLimiter;
  readonly onDone: (req: InboundRequest) => void;
  /** SERVER spans (agent/http/trace.ts); absent = tracing off. */
  readonly tracing?: InboundTracing;
}

export function serveInboundRequest(
  deps: InboundHttpDeps,
  uid: string,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  principal: string | undefined,
  sourceAddress: string,
): void {
  const view = deps.view();
  const w = view.localWorkload(uid);
  const rec: InboundRequest = {
    uid,
    workload: w,
    principal,
    sourceAddress,
    headers,
    start: performance.now(),
    status: 0,
    flag: "-",
    requestBytes: 0,
    responseBytes: 0,
    span: deps.tracing?.start(headers, sourceAddress),
  };
  let reported = false;
  const report = () => {
    if (reported) return;
    reported = true;
    deps.onDone(rec);
    deps.tracing?.finish(rec, view);
  };
  stream.once("close", report);
  const grpc = headerValue(headers, "content-type").startsWith("application/grpc");
  const refuse = (
    status: number,
    flag: string,
    reason: string,
    extra: OutgoingHttpHeaders = {},
    grpcStatus = grpcStatusOf(status),
  ) => {
    rec.status = status;
    rec.flag = flag;
    rec.reason = reason;
    if (stream.destroyed || stream.headersSent) return;
    if (grpc) {
      rec.grpcStatus = String(grpcStatus);
      stream.respond(
        {
          ":status": 200,
          "content-type": "application/grpc",
          "grpc-status": rec.grpcStatus,
          "grpc-message": encodeURIComponent(reason),
          [FLAG_HEADER]: flag,
          ...extra,
        },
        { endStream: true },
      );
    } else {
      stream.respond({
        ":status": status,
        "content-type": "text/plain; charset=utf-8",
        [FLAG_HEADER]: flag,
        ...extra,
      });
      stream.end(`${reason}\n`);
    }
  };
  const target = parseHostPort(headerValue(headers, TARGET_HEADER));
  if (!w) return refuse(503, "NoHealthyUpstream", `workload ${uid} is no longer on this node`);
  if (!target || target.address !== w.address)
    return refuse(
      400,
      "IPMismatch",
      `request target ${headerValue(headers, TARGET_HEADER) || "(none)"} is not ${w.address}`,
    );
  if (!principal) return refuse(401, "IdentityError", "peer certificate has no SPIFFE ID");
  const method = headerValue(headers, ":method");
  // The application is sent the path the policy judged (dot segments resolved, unreserved escapes
  // decoded, as Envoy's normalize_path does for Istio), so `/./admin` cannot pass a DENY on `/admin*`.
  const raw = headerValue(headers, ":path");
  const q = raw.indexOf("?");
  const path = normalizePath(raw) + (q >= 0 ? raw.slice(q) : "");
  const host = headerValue(headers, ":authority");
  const fromGateway = view.isGatewayIdentity(principal); // principal is set: checked above
  const decision = evaluateAuthz(view.authorizationPoliciesFor(uid), {
    principal,
    sourceIp: sourceAddress,
    remoteIp: fromGateway ? remoteIpOf(headers, sourceAddress) : sourceAddress,
    destinationIp: target.address,
    destinationPort: target.port,
    http: { method, path, host, headers },
  });
  if (!decision.allowed) {
    rec.policy = decision.policy;
    return refuse(403, "AuthorizationPolicyDenied", `RBAC: access denied (${decision.reason})`);
  }
  const serviceHost = parseForwarded(headers["forwarded"]).host;
  const rule = headers[RULE_HEADER];
  const admitted = deps.limiter.admit(view, {
    uid,
    serviceHost,
    principal,
    rule: typeof rule === "string" ? rule : undefined,
  });
  if (!admitted.ok) {
    rec.policy = admitted.policy;
    const seconds = Math.max(1, Math.ceil(admitted.retryAfterMs / 1000));
    // gRPC's own code for a quota (RESOURCE_EXHAUSTED, 8), not the 429 → UNAVAILABLE mapping.
    const extra = { ...admitted.headers, "retry-after": String(seconds) };
    return refuse(429, "RateLimited", admitted.limit, extra, GRPC_RESOURCE_EXHAUSTED);
  }
  const limitHeaders = admitted.headers;
  const out = appHeaders(headers, sourceAddress, fromGateway);
  rec.span?.inject(out); // the application's own spans become children of the SERVER span
  const endStream = stream.endAfterHeaders;
  if (headerValue(headers, APP_PROTOCOL_HEADER) === "http2") {
    deps.apps
      .http2(
        uid,
        w.address,
        target.port,
        { ...out, ":method": method, ":path": path, ":authority": host, ":scheme": "http" },
        endStream,
      )
      .then(
        (app) => relayFromH2(stream, app, rec, endStream, limitHeaders),
        (err: Error) =>
          refuse(
            503,
            "ConnectionFailure",
            `application ${w.address}:${target.port} unreachable: ${err.message}`,
          ),
      );
    return;
  }
  const req = deps.apps.http1(uid, w.address, target.port, method, path, { ...out, host });
  closeAfterRequests(req, view, serviceHost);
  req.once("error", (err) =>
    refuse(503, "ConnectionFailure", `application ${w.address}:${target.port} unreachable: ${err.message}`),
  );
  req.once("response", (res: IncomingMessage) => relayFromH1(stream, res, rec, limitHeaders));
  stream.once("close", () => {
    if (!req.writableFinished || !rec.status) req.destroy();
  });
  if (endStream) req.end();
  else pump(stream, req, (n) => (rec.requestBytes += n));
}

/** The original client a Gateway names behind its trusted proxies (agent/gateway/layer.ts), else its peer. */
function remoteIpOf(headers: IncomingHttpHeaders, sourceAddress: string): string {
  const claimed = headerValue(headers, REMOTE_IP_HEADER);
  return isIPv4(claimed) ? claimed : sourceAddress;
}

/** `fromGateway`: the edge already appended its client (the address it vouches for) to x-forwarded-for. */
function appHeaders(
  headers: IncomingHttpHeaders,
  sourceAddress: string,
  fromGateway: boolean,
): OutgoingHttpHeaders {
  const out = endToEnd(headers);
  delete out["forwarded"]; // the source agent's, for the agents only
  const xff = headerValue(headers, "x-forwarded-for");
  out["x-forwarded-for"] = fromGateway && xff ? xff : xff ? `${xff}, ${sourceAddress}` : sourceAddress;
  out["x-forwarded-proto"] = "http";
  out["forwarded"] = `for="${sourceAddress}";proto=http`;
  return out;
}

/** gRPC status RESOURCE_EXHAUSTED: what a rate-limited call ends with. */
const GRPC_RESOURCE_EXHAUSTED = 8;

function relayFromH1(
  stream: ServerHttp2Stream,
  res: IncomingMessage,
  rec: InboundRequest,
  limitHeaders: OutgoingHttpHeaders | undefined,
): void {
  rec.status = res.statusCode ?? 502;
  if (stream.destroyed) return void res.destroy();
  const headers = limitHeaders ? { ...endToEnd(res.headers), ...limitHeaders } : endToEnd(res.headers);
  stream.respond({ ...headers, ":status": rec.status }, { endStream: false });
  pump(res, stream, (n) => (rec.responseBytes += n));
  stream.once("close", () => res.destroy());
}

function relayFromH2(
  stream: ServerHttp2Stream,
  app: ClientHttp2Stream,
  rec: InboundRequest,
  requestEnded: boolean,
  limitHeaders: OutgoingHttpHeaders | undefined,
): void {
  app.on("error", () => {});
  stream.once("close", () => {
    resetStream(app, constants.NGHTTP2_CANCEL);
  });
  if (!requestEnded) pump(stream, app, (n) => (rec.requestBytes += n));
  let trailers: OutgoingHttpHeaders | undefined;
  app.once("trailers", (t: IncomingHttpHeaders) => {
    trailers = endToEnd(t);
    const g = t["grpc-status"];
    if (typeof g === "string") rec.grpcStatus = g;
  });
  app.once("response", (h: IncomingHttpHeaders, flags: number) => {
    rec.status = Number(h[":status"]);
    const g = h["grpc-status"];
    if (typeof g === "string") rec.grpcStatus = g; // trailers-only response
    if (stream.destroyed) return;
    const ended = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    stream.respond(
      { ...endToEnd(h), ...limitHeaders, ":status": rec.status },
      { endStream: ended, waitForTrailers: !ended },
    );
    if (ended) return;
    stream.once("wantTrailers", () => stream.sendTrailers(trailers ?? {}));
    pump(app, stream, (n) => (rec.responseBytes += n));
  });
  app.once("close", () => {
    if (!rec.status) {
      rec.status = 503;
      rec.flag = "UpstreamConnectionTermination";
      if (!stream.destroyed && !stream.headersSent)
        stream.respond({ ":status": 503, [FLAG_HEADER]: rec.flag }, { endStream: true });
    } else if (app.rstCode !== undefined && app.rstCode !== constants.NGHTTP2_NO_ERROR && !stream.destroyed) {
      resetStream(stream, app.rstCode);
    }
  });
}

// The last handler of the outbound request path: one HTTP/2 stream per request on the pooled mTLS
// session to the chosen endpoint's node (no CONNECT, no per-request handshake), carrying the target
// workload; requests of one client connection so spread over endpoints. Endpoint choice is per request
// (balancer + outlier state shared with the L4 path). A failure to get a session never reached the
// application, so the next endpoint is tried; a 502/503/504 from the endpoint counts as a gateway error
// for outlier ejection.
import {
  constants,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from "node:http2";
import type { AgentSettings } from "../config.ts";
import { TunnelError } from "../errors.ts";
import type { PickContext } from "../balance/balancer.ts";
import { candidates, type DestinationState, type EndpointStates } from "../balance/endpoint-state.ts";
import type { OutlierSettings } from "../health/outlier.ts";
import type { IdentityManager } from "../identity/manager.ts";
import type { SessionPool } from "../proxy/tunnel/session-pool.ts";
import type { Handler } from "../stack/compose.ts";
import type { EndpointInfo, ServicePortInfo } from "../state/view.ts";
import { localReply, type Exchange, type ResponseHead } from "./exchange.ts";
import { hashKey } from "./hash-policy.ts";
import { APP_PROTOCOL_HEADER, TARGET_HEADER } from "./headers.ts";
import { isGrpc } from "./server.ts";

/** The destination agent says why it answered itself (the source labels the request with it). */
export const FLAG_HEADER = "nodemesh-response-flag";

export interface UpstreamDeps {
  readonly pool: SessionPool;
  readonly identities: IdentityManager;
  readonly endpoints: EndpointStates;
  readonly settings: Pick<AgentSettings, "connectTimeoutMs" | "connectAttempts" | "hbonePort">;
  readonly defaultOutlier: OutlierSettings;
}

export function upstreamHandler(deps: UpstreamDeps): Handler<Exchange, ResponseHead> {
  return async (ex) => {
    const sp = ex.backend ?? ex.servicePort;
    const grpc = isGrpc(ex);
    if (sp.endpoints.length === 0) {
      return localReply(503, "NoHealthyUpstream", `${sp.service.host}:${sp.port} has no endpoints`, grpc);
    }
    const timeoutMs = sp.service.connectTimeoutMs ?? deps.settings.connectTimeoutMs;
    const svid = deps.identities.get(ex.source.spiffeId) ?? (await deps.identities.ready(ex.source.spiffeId));
    const state = destinationState(deps, sp);
    const pick = pickContext(ex, sp, state);
    const tried = new Set<string>();
    let last: TunnelError | undefined;
    for (let attempt = 0; attempt < deps.settings.connectAttempts && !ex.signal.aborted; attempt++) {
      const key = state.balancer.pick(
        candidates(state.endpoints, tried, (k) => state.outlier.isEjected(k)),
        pick,
      );
      const ep = key === undefined ? undefined : sp.endpoints.find((e) => e.key === key);
      if (!ep) break;
      tried.add(ep.key);
      ex.attempts = attempt + 1;
      ex.destination = ep.workload;
      ex.upstreamHost = `${ep.address}:${deps.settings.hbonePort}`;
      try {
        const stream = await deps.pool.open(
          {
            source: svid,
            bundle: deps.identities.bundle,
            address: ep.address,
            hbonePort: deps.settings.hbonePort,
            expectedIdentity: ep.workload.spiffeId,
            timeoutMs,
          },
          requestHeaders(ex, sp, ep),
          { endStream: ex.body === undefined },
        );
        return await exchangeOn(stream, ex, ep, state, deps);
      } catch (err) {
        last = err instanceof TunnelError ? err : new TunnelError("ConnectionFailure", String(err), true);
        if (last.endpointFault) state.outlier.failure(ep.key, sp.endpoints.length);
        if (!last.endpointFault) break;
      }
    }
    return localReply(
      503,
      last?.flag ?? "NoHealthyUpstream",
      last?.message ?? `every endpoint of ${sp.service.host}:${sp.port} is ejected or was tried`,
      grpc,
    );
  };
}

function destinationState(deps: UpstreamDeps, sp: ServicePortInfo): DestinationState {
  return deps.endpoints.state(
    sp.key,
    {
      loadBalancer: sp.service.loadBalancer ?? "PEAK_EWMA",
      balancerOptions: sp.service.balancerOptions,
      outlier: { ...deps.defaultOutlier, ...sp.service.outlier },
    },
    sp.endpointKeys,
  );
}

/** The request's hash for a consistent-hash service (and the cookie to set when Envoy would make one). */
function pickContext(ex: Exchange, sp: ServicePortInfo, state: DestinationState): PickContext {
  const policy = sp.service.hashPolicy;
  if (!policy) return { endpoints: state.endpoints };
  const q = ex.request.path.indexOf("?");
  const { hash, setCookie } = hashKey(policy, {
    headers: ex.request.headers as Record<string, string | string[] | undefined>,
    query: q < 0 ? "" : ex.request.path.slice(q + 1),
    sourceAddress: ex.source.address,
  });
  if (setCookie) (ex.responseFilters ??= []).push((h) => appendSetCookie(h, setCookie));
  return hash === undefined ? { endpoints: state.endpoints } : { hash, endpoints: state.endpoints };
}

function appendSetCookie(h: OutgoingHttpHeaders, cookie: string): void {
  const have = h["set-cookie"];
  h["set-cookie"] =
    have === undefined ? [cookie] : [...(Array.isArray(have) ? have : [String(have)]), cookie];
}

function requestHeaders(ex: Exchange, sp: ServicePortInfo, ep: EndpointInfo): OutgoingHttpHeaders {
  return {
    ...ex.request.headers,
    ":method": ex.request.method,
    ":path": ex.request.path,
    ":authority": ex.request.authority,
    ":scheme": "http",
    [TARGET_HEADER]: `${ep.address}:${ep.port}`,
    [APP_PROTOCOL_HEADER]: sp.protocol === "http" ? "http1" : "http2",
    forwarded: `for="${ex.source.address}";host="${sp.service.host}"`,
  };
}

/** Streams the body up, resolves at the response headers; the stream's fate feeds balancer and outlier. */
function exchangeOn(
  stream: ClientHttp2Stream,
  ex: Exchange,
  ep: EndpointInfo,
  state: DestinationState,
  deps: UpstreamDeps,
): Promise<ResponseHead> {
  const started = performance.now();
  deps.endpoints.active.inc(ep.key);
  stream.once("close", () => deps.endpoints.active.dec(ep.key));
  const onAbort = () => stream.close(constants.NGHTTP2_CANCEL);
  ex.signal.addEventListener("abort", onAbort, { once: true });
  stream.once("close", () => ex.signal.removeEventListener("abort", onAbort));
  if (ex.body) forwardBody(ex, stream);
  const trailers = new Promise<OutgoingHttpHeaders | undefined>((resolve) => {
    stream.once("trailers", (t: IncomingHttpHeaders) => resolve(t as OutgoingHttpHeaders));
    stream.once("close", () => resolve(undefined));
  });
  return new Promise((resolve, reject) => {
    stream.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new TunnelError("UpstreamConnectionTermination", `stream to ${ep.key} failed: ${err.message}`, true, {
          cause: err,
        }),
      ),
    );
    stream.once("close", () =>
      reject(
        new TunnelError(
          "UpstreamConnectionTermination",
          `stream to ${ep.key} was reset before the response`,
          true,
        ),
      ),
    );
    stream.once("response", (headers, flags) => {
      const status = Number(headers[":status"]);
      const latency = performance.now() - started;
      ex.upstreamMs = performance.now() - ex.start;
      const gatewayError = status === 502 || status === 503 || status === 504;
      if (gatewayError) state.outlier.failure(ep.key, state.endpoints.length);
      else state.outlier.success(ep.key);
      state.balancer.observe?.(ep.key, latency, gatewayError);
      const flag = headers[FLAG_HEADER];
      const out: OutgoingHttpHeaders = {};
      for (const name in headers) if (name.charCodeAt(0) !== 58) out[name] = headers[name];
      const endStream = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      resolve({
        status,
        headers: out,
        ...(endStream ? {} : { body: stream, trailers }),
        ...(typeof flag === "string" ? { flag } : {}),
      });
    });
  });
}

function forwardBody(ex: Exchange, stream: ClientHttp2Stream): void {
  const body = ex.body!;
  body.on("data", (chunk: Buffer) => {
    ex.requestBytes += chunk.length;
    if (!stream.write(chunk)) {
      body.pause();
      stream.once("drain", () => body.resume());
    }
  });
  body.once("end", () => stream.end());
  body.once("error", () => stream.close(constants.NGHTTP2_CANCEL));
  stream.once("close", () => body.unpipe?.());
}

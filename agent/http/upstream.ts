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
import { resetStream } from "./h2-reset.ts";
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
    for (let attempt = 0; attempt < deps.settings.connectAttempts && !cancelled(ex); attempt++) {
      const ep = pickEndpoint(ex, sp, state, tried, pick);
      if (!ep) break;
      tried.add(ep.key);
      ex.triedEndpoints?.add(ep.key);
      ex.endpoint = ep.key;
      ex.attempts = attempt + 1;
      ex.destination = ep.workload;
      ex.upstreamHost = `${ep.address}:${deps.settings.hbonePort}`;
      let stream: ClientHttp2Stream;
      try {
        stream = await deps.pool.open(
          {
            source: svid,
            bundle: deps.identities.bundle,
            address: ep.address,
            hbonePort: deps.settings.hbonePort,
            expectedIdentity: ep.workload.spiffeId,
            sourceAddress: ex.source.address,
            timeoutMs,
          },
          requestHeaders(ex, sp, ep),
          { endStream: ex.body === undefined },
        );
      } catch (err) {
        last = err instanceof TunnelError ? err : new TunnelError("ConnectionFailure", String(err), true);
        if (last.endpointFault) state.outlier.failure(ep.key, sp.endpoints.length);
        if (!last.endpointFault) break;
        continue;
      }
      // Once the stream is open the request may have reached the application (and its body is spent):
      // a failure from here on is the retry layer's to judge, never a silent replay to the next endpoint.
      try {
        return await exchangeOn(stream, ex, ep, state, deps);
      } catch (err) {
        const e =
          err instanceof TunnelError
            ? err
            : new TunnelError("UpstreamConnectionTermination", String(err), true);
        // The client leaving resets the stream too; that is no fault of the endpoint.
        if (!ex.signal.aborted) state.outlier.failure(ep.key, sp.endpoints.length);
        return { ...localReply(503, e.flag, e.message, grpc), unsent: refused(stream) };
      }
    }
    return {
      ...localReply(
        503,
        last?.flag ?? "NoHealthyUpstream",
        last?.message ?? `every endpoint of ${sp.service.host}:${sp.port} is ejected, open or was tried`,
        grpc,
      ),
      // Only an endpoint's connect failure is worth a retry; nothing left to pick, or a policy refusal, is not.
      unsent: last?.endpointFault === true,
    };
  };
}

function cancelled(ex: Exchange): boolean {
  return ex.signal.aborted || ex.trySignal?.aborted === true;
}

/** REFUSED_STREAM: the peer did no processing of the stream (RFC 9113 §8.7), so a replay is safe. */
function refused(stream: ClientHttp2Stream): boolean {
  return stream.rstCode === constants.NGHTTP2_REFUSED_STREAM;
}

/**
 * Not tried in this try, not ejected, not skipped (open breaker); endpoints earlier tries went to only
 * when no other one is left, so that each retry goes to another endpoint where one exists.
 */
function pickEndpoint(
  ex: Exchange,
  sp: ServicePortInfo,
  state: DestinationState,
  tried: ReadonlySet<string>,
  pick: PickContext,
): EndpointInfo | undefined {
  const skip = ex.skipEndpoint;
  const usable = skip ? state.endpoints.filter((k) => !skip(k)) : state.endpoints;
  const ejected = (k: string) => state.outlier.isEjected(k);
  const earlier = ex.triedEndpoints;
  let options = earlier?.size ? candidates(usable, new Set([...tried, ...earlier]), ejected) : [];
  if (options.length === 0) options = candidates(usable, tried, ejected);
  const key = state.balancer.pick(options, pick);
  return key === undefined ? undefined : sp.endpoints.find((e) => e.key === key);
}

function destinationState(deps: UpstreamDeps, sp: ServicePortInfo): DestinationState {
  return deps.endpoints.stateOf(
    sp,
    sp.key,
    () => ({
      loadBalancer: sp.service.loadBalancer ?? "PEAK_EWMA",
      balancerOptions: sp.service.balancerOptions,
      outlier: { ...deps.defaultOutlier, ...sp.service.outlier },
    }),
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
  // The client going away or the try being cancelled (timeout) resets the stream: the backend sees it.
  const onAbort = () => resetStream(stream, constants.NGHTTP2_CANCEL);
  const signals = ex.trySignal ? [ex.signal, ex.trySignal] : [ex.signal];
  for (const sig of signals) {
    if (sig.aborted) onAbort();
    sig.addEventListener("abort", onAbort, { once: true });
  }
  if (ex.body) forwardBody(ex, stream);
  let resolveTrailers: (t: OutgoingHttpHeaders | undefined) => void = () => {};
  const trailers = new Promise<OutgoingHttpHeaders | undefined>((r) => (resolveTrailers = r));
  stream.once("trailers", (t: IncomingHttpHeaders) => resolveTrailers(t as OutgoingHttpHeaders));
  return new Promise((resolve, reject) => {
    let settled = false;
    // One 'close' listener for everything a stream's end releases; errors are built only when the
    // response never came (an Error captures a stack: not something to pay on every request).
    stream.once("close", () => {
      deps.endpoints.active.dec(ep.key);
      for (const sig of signals) sig.removeEventListener("abort", onAbort);
      resolveTrailers(undefined);
      if (settled) return;
      settled = true;
      reject(
        new TunnelError(
          "UpstreamConnectionTermination",
          `stream to ${ep.key} was reset before the response`,
          true,
        ),
      );
    });
    stream.once("error", (err: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      reject(
        new TunnelError("UpstreamConnectionTermination", `stream to ${ep.key} failed: ${err.message}`, true, {
          cause: err,
        }),
      );
    });
    stream.once("response", (headers, flags) => {
      settled = true;
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
  body.once("error", () => resetStream(stream, constants.NGHTTP2_CANCEL));
}

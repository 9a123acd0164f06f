// Timeout layers. `requestTimeoutLayer` bounds the whole request, retries included (HTTPRoute
// `timeouts.request`, else TrafficPolicy `timeout`, else NODEMESH_DEFAULT_REQUEST_TIMEOUT_MS, lowered by
// a gRPC client's `grpc-timeout`); `tryTimeoutLayer` bounds one try (`timeouts.backendRequest`, else
// TrafficPolicy `retries.perTryTimeout`). "0s" disables either. Both count until the response headers
// only, so a streamed body or a long-lived gRPC stream is never cut; upgrades never pass these layers.
// On expiry the client gets 504 (gRPC DEADLINE_EXCEEDED), flag UpstreamRequestTimeout (Envoy's UT), and
// the try's stream is reset through `ex.trySignal`, so the backend sees the cancellation.
import type { AgentSettings } from "../config.ts";
import type { Handler, Layer } from "../stack/compose.ts";
import { localReply, type Exchange, type ResponseHead } from "./exchange.ts";
import { headerValue } from "./headers.ts";
import { resilienceOf } from "./resilience-policy.ts";
import { isGrpc } from "./server.ts";

export const TIMEOUT_FLAG = "UpstreamRequestTimeout";

/** gRPC's `grpc-timeout` (PROTOCOL-HTTP2.md: 1-8 digits and a unit H M S m u n) in ms; undefined if malformed. */
export function grpcTimeoutMs(value: string): number | undefined {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value.trim());
  if (!m) return undefined;
  const unit = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 }[m[2] as "H"];
  return Math.max(1, Math.ceil(Number(m[1]) * unit));
}

/**
 * The whole-request deadlines in ms (0 = none): the configured one (route > policy > agent default),
 * counted from the end of the request body as Envoy's route timeout is, so a slow upload or a
 * client-streaming call is not cut while it sends; and the gRPC client's own `grpc-timeout`, counted
 * from the start of the call as gRPC deadlines are.
 */
export function requestTimeouts(
  ex: Exchange,
  defaultMs: number,
): { afterBodyMs: number; fromStartMs: number } {
  const sp = ex.backend ?? ex.servicePort;
  const afterBodyMs = ex.rule?.timeouts.requestMs ?? resilienceOf(ex.view, sp.service).timeoutMs ?? defaultMs;
  const header = headerValue(ex.request.headers, "grpc-timeout");
  return { afterBodyMs, fromStartMs: (header ? grpcTimeoutMs(header) : undefined) ?? 0 };
}

export function requestTimeoutLayer(
  settings: Pick<AgentSettings, "defaultRequestTimeoutMs">,
): Layer<Exchange, ResponseHead> {
  return (next) => (ex) => {
    const t = requestTimeouts(ex, settings.defaultRequestTimeoutMs);
    return withDeadline(ex, next, "request", t.afterBodyMs, t.fromStartMs);
  };
}

export function tryTimeoutLayer(): Layer<Exchange, ResponseHead> {
  return (next) => (ex) => {
    const sp = ex.backend ?? ex.servicePort;
    const ms =
      ex.rule?.timeouts.backendRequestMs ?? resilienceOf(ex.view, sp.service).retry.perTryTimeoutMs ?? 0;
    return withDeadline(ex, next, "try", ms, 0);
  };
}

/** Calls `fire` `ms` after the request body ends (at once if there is none); returns the disarm. */
function armAfterBody(ex: Exchange, ms: number, fire: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => (timer = setTimeout(fire, ms));
  const body = ex.body;
  if (!body || body.readableEnded) arm();
  else body.once("end", arm);
  return () => {
    body?.off("end", arm);
    clearTimeout(timer);
  };
}

/**
 * Runs `next` with a deadline. The try signal is narrowed for the inner layers and restored when the
 * answer came in time; after an expiry it stays aborted, so a retry loop still running inside stops.
 */
async function withDeadline(
  ex: Exchange,
  next: Handler<Exchange, ResponseHead>,
  what: "request" | "try",
  afterBodyMs: number,
  fromStartMs: number,
): Promise<ResponseHead> {
  if (afterBodyMs <= 0 && fromStartMs <= 0) return next(ex);
  const outer = ex.trySignal;
  const ctl = new AbortController();
  // The outer signal is followed by hand: AbortSignal.any() costs several times more per request (it
  // keeps weak references to every source and dependant), and this runs for every request.
  const follow = () => ctl.abort(outer?.reason);
  if (outer?.aborted) follow();
  else outer?.addEventListener("abort", follow, { once: true });
  ex.trySignal = ctl.signal;
  const disarm: (() => void)[] = [() => outer?.removeEventListener("abort", follow)];
  const expired = new Promise<ResponseHead>((resolve) => {
    const fire = (ms: number) => () => {
      const sp = ex.backend ?? ex.servicePort;
      const reason = `${what} timeout of ${ms} ms to ${sp.service.host}:${sp.port}`;
      // Settle first: aborting resets the stream, and the reset answer must not win the race.
      resolve(localReply(504, TIMEOUT_FLAG, reason, isGrpc(ex)));
      ctl.abort();
    };
    if (afterBodyMs > 0) disarm.push(armAfterBody(ex, afterBodyMs, fire(afterBodyMs)));
    if (fromStartMs > 0) {
      const t = setTimeout(fire(fromStartMs), fromStartMs);
      disarm.push(() => clearTimeout(t));
    }
  });
  const pending = next(ex);
  try {
    const res = await Promise.race([pending, expired]);
    // A late answer after the deadline is dropped; its stream was already reset through the signal.
    if (ctl.signal.aborted)
      pending.then(
        (late) => late.body?.destroy(),
        () => undefined,
      );
    else ex.trySignal = outer;
    return res;
  } finally {
    for (const d of disarm) d();
  }
}

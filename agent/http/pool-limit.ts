// Connection-pool limits as a layer (Istio's DestinationRule `connectionPool`, Envoy's circuit-breaker
// thresholds), per destination in the calling agent: at most `http2MaxRequests` requests in flight (on an
// HTTP/1.1 port also at most `tcp.maxConnections`, as each request in flight needs its own connection
// there), `http1MaxPendingRequests` more waiting for a slot, and at most `maxRetries` retries in flight.
// Beyond them the request is answered 503 at once with flag UpstreamOverflow (Envoy's UO), never sent.
// It sits inside the retry loop: every try holds a slot from its start until its response ends (body
// included, so a long gRPC stream holds one, as in Envoy), and a try is a retry when its attempt number
// is above 1. Mesh answers (the overflow itself) are not retried by the retry layer.
import { ConcurrencyLimit, type Release } from "../ratelimit/concurrency-limit.ts";
import type { Layer } from "../stack/compose.ts";
import type { ServicePortInfo } from "../state/view.ts";
import { localReply, type Exchange, type ResponseHead } from "./exchange.ts";
import { resilienceOf, type PoolPolicy } from "./resilience-policy.ts";
import { ATTEMPT_HEADER } from "./retry.ts";
import { isGrpc } from "./server.ts";

export const OVERFLOW_FLAG = "UpstreamOverflow";

export type PoolLimitName = "http2MaxRequests" | "maxConnections" | "http1MaxPendingRequests" | "maxRetries";

/** Where the layer reports each overflow (ResilienceMetrics implements it). */
export interface OverflowSink {
  upstreamOverflow(destination: string, limit: PoolLimitName): void;
}

interface Limits {
  readonly signature: string;
  readonly requests: ConcurrencyLimit | undefined;
  readonly retries: ConcurrencyLimit | undefined;
  /** Which setting bounds `requests` (what an overflow is blamed on). */
  readonly bound: "http2MaxRequests" | "maxConnections";
}

/** The in-flight slots an HTTP/1.1 port gets: one connection per request, so maxConnections bounds it. */
export function requestSlots(sp: ServicePortInfo, p: PoolPolicy): number {
  return sp.protocol === "http" ? Math.min(p.maxRequests, p.maxConnections) : p.maxRequests;
}

/** The counters of every destination, kept across requests; a changed limit starts fresh counters. */
export class PoolLimits {
  readonly #byKey = new Map<string, Limits>();

  get(sp: ServicePortInfo, p: PoolPolicy): Limits {
    const slots = requestSlots(sp, p);
    const signature = `${slots}/${p.maxPending}/${p.maxRetries}`;
    let l = this.#byKey.get(sp.key);
    if (l?.signature === signature) return l;
    l = {
      signature,
      requests:
        slots === Infinity ? undefined : new ConcurrencyLimit({ maxActive: slots, maxPending: p.maxPending }),
      retries:
        p.maxRetries === Infinity
          ? undefined
          : // maxRetries 0 = no retry may be in flight: a limit of 1 that is never handed out below.
            new ConcurrencyLimit({ maxActive: Math.max(1, p.maxRetries), maxPending: 0 }),
      bound:
        p.maxRequests <= p.maxConnections || sp.protocol !== "http" ? "http2MaxRequests" : "maxConnections",
    };
    this.#byKey.set(sp.key, l);
    return l;
  }

  /** Forgets destinations that left the config. */
  retain(keep: (key: string) => boolean): void {
    for (const key of this.#byKey.keys()) if (!keep(key)) this.#byKey.delete(key);
  }

  /** For the config dump: in-flight and waiting counts per destination. */
  dump(): { destination: string; active: number; pending: number; retries: number }[] {
    return [...this.#byKey].map(([destination, l]) => ({
      destination,
      active: l.requests?.active ?? 0,
      pending: l.requests?.pending ?? 0,
      retries: l.retries?.active ?? 0,
    }));
  }
}

function overflow(ex: Exchange, sp: ServicePortInfo, limit: PoolLimitName, n: number, sink?: OverflowSink) {
  sink?.upstreamOverflow(sp.key, limit);
  const reason = `connection pool limit ${limit} (${n}) of ${sp.service.host}:${sp.port} reached`;
  return localReply(503, OVERFLOW_FLAG, reason, isGrpc(ex));
}

export function poolLimitLayer(pools: PoolLimits, sink?: OverflowSink): Layer<Exchange, ResponseHead> {
  return (next) => async (ex) => {
    const sp = ex.backend ?? ex.servicePort;
    const p = resilienceOf(ex.view, sp.service).pool;
    const retry =
      ex.request.headers[ATTEMPT_HEADER] !== undefined && ex.request.headers[ATTEMPT_HEADER] !== "1";
    // The common case, no limit configured: no counter, no closure.
    if (requestSlots(sp, p) === Infinity && (!retry || p.maxRetries === Infinity)) return next(ex);
    const limits = pools.get(sp, p);
    const held: Release[] = [];
    const releaseAll = () => {
      for (const r of held) r();
    };
    if (retry && limits.retries) {
      const r = p.maxRetries === 0 ? undefined : limits.retries.tryAcquire();
      if (!r) return overflow(ex, sp, "maxRetries", p.maxRetries, sink);
      held.push(r);
    }
    if (limits.requests) {
      const got = await slot(ex, limits.requests);
      if (got === "overflow") {
        releaseAll();
        const name = limits.requests.settings.maxPending > 0 ? "http1MaxPendingRequests" : limits.bound;
        const n = name === "http1MaxPendingRequests" ? p.maxPending : limits.requests.settings.maxActive;
        return overflow(ex, sp, name, n, sink);
      }
      if (got === undefined) {
        releaseAll();
        // The client left or the deadline fired while waiting: the outer layers answer for it.
        return localReply(503, OVERFLOW_FLAG, "gave up waiting for a connection pool slot", isGrpc(ex));
      }
      held.push(got);
    }
    let res: ResponseHead;
    try {
      res = await next(ex);
    } catch (err) {
      releaseAll();
      throw err;
    }
    holdUntilDone(ex, res, releaseAll);
    return res;
  };
}

function slot(ex: Exchange, limit: ConcurrencyLimit): Release | "overflow" | Promise<Release | undefined> {
  if (limit.active < limit.settings.maxActive) return limit.acquire();
  // Only a waiter needs a signal: the client leaving or the request deadline takes it off the queue.
  const signal = ex.trySignal ? AbortSignal.any([ex.signal, ex.trySignal]) : ex.signal;
  return limit.acquire(signal);
}

/** Releases when the response is over: its body ended or closed, or the client or the deadline gave up. */
function holdUntilDone(ex: Exchange, res: ResponseHead, release: () => void): void {
  const body = res.body;
  if (!body || body.destroyed || body.readableEnded) return release();
  const signals = ex.trySignal ? [ex.signal, ex.trySignal] : [ex.signal];
  const done = () => {
    body.off("end", done);
    body.off("close", done);
    for (const s of signals) s.removeEventListener("abort", done);
    release();
  };
  body.once("end", done);
  body.once("close", done);
  for (const s of signals) {
    if (s.aborted) return done();
    s.addEventListener("abort", done, { once: true });
  }
}

// The tap hub behind `nodemesh tap`: a live, bounded and sampled stream of the requests and connections
// this agent finishes, fed from the two places that write access lines (RequestTelemetry.finish and
// AgentMetrics.finish), and the admin page that streams it as NDJSON.
//
// Cost: with nobody tapping, the data path pays one boolean read per request (`active`); an event is
// built only when some subscriber's filter matches and its sampling and rate budget admit it. A tap can
// never slow the data path: events go to the socket without waiting, and when the socket's buffer is
// over a bound (a slow reader, tap-page.ts) the event is dropped and counted, not queued.
import type { LoggedRequest } from "./access-log.ts";
import type { ConnRecord } from "./metrics.ts";

/** Taps served at once: each costs a filter check per event, so the hub bounds them. */
export const MAX_TAPS = 8;
/** Per-tap ceilings an operator cannot exceed (a tap is a debugging aid, not a log pipeline). */
export const TAP_LIMITS = Object.freeze({ maxEvents: 10_000, maxSeconds: 600, maxRate: 1_000 });
export const TAP_DEFAULTS = Object.freeze({ maxEvents: 100, seconds: 30, rate: 100, sample: 1 });

export interface TapFilter {
  /** Matches the source or the destination workload ("name" or "namespace/name"). */
  readonly workload?: string;
  /** Matches destination_service ("name.namespace", or "name" for any namespace). */
  readonly service?: string;
  /** Matches route_name ("namespace/name", or "name" for any namespace); connections have none. */
  readonly route?: string;
  /**
   * A bare name on the command line: matches as `workload`, `service` or `route` does. A routed
   * request's destination_service is the backend the route picked, so its route is how "web" is found.
   */
  readonly target?: string;
  readonly namespace?: string;
  readonly kind?: "http" | "tcp";
  readonly reporter?: "source" | "destination";
  readonly method?: string;
  /** Path prefix. */
  readonly path?: string;
}

export interface TapOptions {
  readonly filter: TapFilter;
  readonly maxEvents: number;
  readonly seconds: number;
  /** Events per second at most (token bucket, burst of one second). */
  readonly rate: number;
  /** Fraction of matching events delivered, 0 < sample <= 1. */
  readonly sample: number;
}

/** What every event's identity part reads; the request and connection label sets both have it. */
interface PeerLabels {
  readonly reporter: string;
  readonly source_workload: string;
  readonly source_workload_namespace: string;
  readonly source_principal: string;
  readonly destination_service: string;
  readonly destination_workload: string;
  readonly destination_workload_namespace: string;
  readonly destination_principal: string;
}

export type TapEvent = Record<string, string | number | undefined>;

interface Subscriber {
  readonly opts: TapOptions;
  readonly send: (event: TapEvent) => boolean;
  tokens: number;
  last: number;
  delivered: number;
  dropped: number;
  sampledOut: number;
  limited: number;
  readonly done: () => void;
}

/**
 * Invariants: `active` is true exactly while a subscriber exists; a subscriber receives at most
 * `maxEvents` events and is ended (once) when it has them, when its time is up, or when its reader leaves.
 */
export class TapHub {
  active = false;
  readonly #subs = new Set<Subscriber>();
  readonly #random: () => number;
  readonly #now: () => number;

  constructor(opts: { random?: () => number; now?: () => number } = {}) {
    this.#random = opts.random ?? Math.random;
    this.#now = opts.now ?? (() => performance.now());
  }

  get size(): number {
    return this.#subs.size;
  }

  /** Adds a subscriber; returns its end function, or undefined when MAX_TAPS are already served. */
  subscribe(
    opts: TapOptions,
    send: (event: TapEvent) => boolean,
    onEnd: (summary: TapEvent) => void,
  ): (() => void) | undefined {
    if (this.#subs.size >= MAX_TAPS) return undefined;
    let ended = false;
    const sub: Subscriber = {
      opts,
      send,
      tokens: Math.min(opts.rate, opts.maxEvents),
      last: this.#now(),
      delivered: 0,
      dropped: 0,
      sampledOut: 0,
      limited: 0,
      done: () => {
        if (ended) return;
        ended = true;
        clearTimeout(timer);
        this.#subs.delete(sub);
        this.active = this.#subs.size > 0;
        const { delivered, dropped, sampledOut, limited } = sub;
        onEnd({ type: "end", delivered, dropped, sampled_out: sampledOut, rate_limited: limited });
      },
    };
    const timer = setTimeout(sub.done, opts.seconds * 1000);
    timer.unref();
    this.#subs.add(sub);
    this.active = true;
    return sub.done;
  }

  /** A finished request (called where its access line is written); `durationMs` as logged. */
  request(rec: LoggedRequest, durationMs: number): void {
    for (const sub of this.#subs) {
      if (!matches(sub.opts.filter, "http", rec.labels, rec.method, rec.path, rec.labels.route_name))
        continue;
      if (this.#admit(sub)) this.#deliver(sub, requestEvent(rec, durationMs));
    }
  }

  /** A finished connection (called where its access line is written). */
  connection(rec: ConnRecord, failed: boolean): void {
    for (const sub of this.#subs) {
      if (!matches(sub.opts.filter, "tcp", rec.labels, undefined, undefined)) continue;
      if (this.#admit(sub)) this.#deliver(sub, connectionEvent(rec, failed));
    }
  }

  /** Sampling first (it costs nothing), then the per-second budget. */
  #admit(sub: Subscriber): boolean {
    if (sub.opts.sample < 1 && this.#random() >= sub.opts.sample) {
      sub.sampledOut++;
      return false;
    }
    const now = this.#now();
    sub.tokens = Math.min(sub.opts.rate, sub.tokens + ((now - sub.last) / 1000) * sub.opts.rate);
    sub.last = now;
    if (sub.tokens < 1) {
      sub.limited++;
      return false;
    }
    sub.tokens--;
    return true;
  }

  #deliver(sub: Subscriber, event: TapEvent): void {
    if (sub.send(event)) sub.delivered++;
    else sub.dropped++;
    if (sub.delivered >= sub.opts.maxEvents) sub.done();
  }
}

function matches(
  f: TapFilter,
  kind: "http" | "tcp",
  l: PeerLabels,
  method: string | undefined,
  path: string | undefined,
  route?: string,
): boolean {
  if (f.kind !== undefined && f.kind !== kind) return false;
  if (f.reporter !== undefined && f.reporter !== l.reporter) return false;
  if (f.namespace !== undefined) {
    const ns = f.namespace;
    if (l.source_workload_namespace !== ns && l.destination_workload_namespace !== ns) return false;
  }
  if (f.workload !== undefined && !workloadMatches(f.workload, l)) return false;
  if (f.service !== undefined && !serviceMatches(f.service, l.destination_service)) return false;
  if (f.route !== undefined && !routeMatches(f.route, route)) return false;
  if (f.target !== undefined) {
    const t = f.target;
    if (!workloadMatches(t, l) && !serviceMatches(t, l.destination_service) && !routeMatches(t, route))
      return false;
  }
  if (f.method !== undefined && (method === undefined || method.toUpperCase() !== f.method)) return false;
  if (f.path !== undefined && (path === undefined || !path.startsWith(f.path))) return false;
  return true;
}

function routeMatches(want: string, route: string | undefined): boolean {
  if (route === undefined || route === "" || route === "unknown") return false;
  return route === want || (!want.includes("/") && route.endsWith(`/${want}`));
}

function workloadMatches(want: string, l: PeerLabels): boolean {
  return (
    sameWorkload(want, l.source_workload_namespace, l.source_workload) ||
    sameWorkload(want, l.destination_workload_namespace, l.destination_workload)
  );
}

function serviceMatches(want: string, service: string): boolean {
  return service === want || service.startsWith(`${want}.`);
}

function sameWorkload(want: string, namespace: string, name: string): boolean {
  const slash = want.indexOf("/");
  return slash < 0 ? want === name : want.slice(0, slash) === namespace && want.slice(slash + 1) === name;
}

function peers(l: PeerLabels): TapEvent {
  return {
    reporter: l.reporter,
    "src.workload": l.source_workload,
    "src.namespace": l.source_workload_namespace,
    "src.identity": l.source_principal,
    "dst.service": l.destination_service,
    "dst.workload": l.destination_workload,
    "dst.namespace": l.destination_workload_namespace,
    "dst.identity": l.destination_principal,
  };
}

function requestEvent(rec: LoggedRequest, durationMs: number): TapEvent {
  return {
    type: "request",
    time: new Date().toISOString(),
    ...peers(rec.labels),
    method: rec.method,
    path: rec.path,
    authority: rec.authority || undefined,
    protocol: rec.protocol,
    status: rec.responseCode,
    grpc_status: rec.grpcStatus || undefined,
    flags: rec.flags && rec.flags !== "-" ? rec.flags : undefined,
    details: rec.reason || undefined,
    duration_ms: Math.round(durationMs * 1000) / 1000,
    route: rec.labels.route_name === "unknown" ? undefined : rec.labels.route_name || undefined,
    upstream: rec.upstreamHost || undefined,
    attempts: rec.attempts,
    policy: rec.policy || undefined,
    request_id: rec.requestId || undefined,
    trace_id: rec.traceId || undefined,
  };
}

function connectionEvent(rec: ConnRecord, failed: boolean): TapEvent {
  const flags = rec.labels.response_flags;
  return {
    type: "connection",
    time: new Date().toISOString(),
    ...peers(rec.labels),
    direction: rec.direction,
    "src.addr": rec.srcAddr,
    "dst.addr": rec.dstAddr,
    outcome: failed ? "failed" : "closed",
    flags: flags && flags !== "-" ? flags : undefined,
    error: rec.reason || undefined,
    bytes_received: rec.received,
    bytes_sent: rec.sent,
    duration_ms: Math.round((performance.now() - rec.start) * 1000) / 1000,
  };
}

// The admin page GET /tap that streams the tap hub (tap.ts) as NDJSON, and its query's validation: every
// bad parameter gets a 400 naming it. Backpressure: an event finding the socket's buffer over
// TAP_BUFFER_BYTES is dropped (and counted in the end summary); nothing waits on a slow reader.
import type { IncomingMessage, ServerResponse } from "node:http";
import { MAX_TAPS, TAP_DEFAULTS, TAP_LIMITS, type TapEvent, type TapHub, type TapOptions } from "./tap.ts";

const TAP_BUFFER_BYTES = 256 * 1024;

/** Validates the tap page's query; every error names the parameter. */
export function parseTapQuery(q: URLSearchParams): TapOptions {
  const num = (name: string, dflt: number, min: number, max: number, integer = true): number => {
    const raw = q.get(name);
    if (raw === null || raw === "") return dflt;
    const v = Number(raw);
    if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v)))
      throw new TapQueryError(
        `${name} must be a${integer ? "n integer" : " number"} in ${min}..${max}, got "${raw}"`,
      );
    return v;
  };
  const oneOf = <T extends string>(name: string, values: readonly T[]): T | undefined => {
    const raw = q.get(name);
    if (raw === null || raw === "") return undefined;
    if (!(values as readonly string[]).includes(raw))
      throw new TapQueryError(`${name} must be one of ${values.join(", ")}, got "${raw}"`);
    return raw as T;
  };
  const text = (name: string) => q.get(name) || undefined;
  const sample = num("sample", TAP_DEFAULTS.sample, 0, 1, false);
  if (sample === 0) throw new TapQueryError(`sample must be > 0 (a fraction of events), got "0"`);
  const path = text("path");
  if (path !== undefined && !path.startsWith("/"))
    throw new TapQueryError(`path must start with "/", got "${path}"`);
  return {
    filter: {
      workload: text("workload"),
      service: text("service"),
      route: text("route"),
      target: text("target"),
      namespace: text("namespace"),
      kind: oneOf("kind", ["http", "tcp"] as const),
      reporter: oneOf("reporter", ["source", "destination"] as const),
      method: text("method")?.toUpperCase(),
      path,
    },
    maxEvents: num("max", TAP_DEFAULTS.maxEvents, 1, TAP_LIMITS.maxEvents),
    seconds: num("seconds", TAP_DEFAULTS.seconds, 0.1, TAP_LIMITS.maxSeconds, false),
    rate: num("rate", TAP_DEFAULTS.rate, 1, TAP_LIMITS.maxRate),
    sample,
  };
}

export class TapQueryError extends Error {
  readonly code = "NODEMESH_ERR_TAP_QUERY";
}

/**
 * The admin page: GET /tap?workload=…&max=…&seconds=… streams one JSON object per line, starting with
 * {"type":"start"} and ending with {"type":"end", delivered, dropped, …}.
 */
export function tapPage(hub: TapHub) {
  return (req: IncomingMessage, url: URL, res: ServerResponse) => {
    if (req.method !== "GET") return { status: 405, body: "use GET\n" };
    let opts: TapOptions;
    try {
      opts = parseTapQuery(url.searchParams);
    } catch (err) {
      if (err instanceof TapQueryError) return { status: 400, body: `tap: ${err.message}\n` };
      throw err;
    }
    const line = (e: TapEvent) => `${JSON.stringify(e)}\n`;
    const send = (e: TapEvent): boolean => {
      if (res.destroyed || res.writableLength >= TAP_BUFFER_BYTES) return false;
      res.write(line(e));
      return true;
    };
    const end = hub.subscribe(opts, send, (summary) => res.end(line(summary)));
    if (!end) return { status: 429, body: `tap: ${MAX_TAPS} taps are running on this agent; retry later\n` };
    res.writeHead(200, { "content-type": "application/x-ndjson", "cache-control": "no-store" });
    res.write(line({ type: "start", ...flatFilter(opts) }));
    res.on("close", end);
    return undefined;
  };
}

function flatFilter(opts: TapOptions): TapEvent {
  return { ...opts.filter, max: opts.maxEvents, seconds: opts.seconds, rate: opts.rate, sample: opts.sample };
}

// The sampling decision for one request, made before any span exists so that an unsampled request
// never enters the SDK (a non-recording span costs the ids and the headers, nothing else). Pure.
//
// Parent-based samplers follow what the caller said: the W3C sampled flag, B3's `1`/`0`, B3 debug
// (always sampled), a B3 decision without ids (`b3: 0`) for the new trace it starts; a caller that
// deferred (B3 ids without a sampling state) is decided by the root sampler on the caller's trace id, so
// every hop that defers agrees. Samplers that are not parent-based (always_on, always_off,
// traceidratio) decide every request themselves, as the OpenTelemetry specification defines them.
import type { ExtractedTrace } from "./propagation.ts";

/** The root sampler's verdict for a trace id (always on, always off, or the trace-id ratio). */
export type RootSampler = (traceId: string) => boolean;

export function decideSampling(
  parentBased: boolean,
  root: RootSampler,
  incoming: ExtractedTrace,
  traceId: string,
): boolean {
  if (!parentBased) return root(traceId);
  const p = incoming.parent;
  if (p) {
    if (p.debug) return true;
    return p.sampled ?? root(traceId);
  }
  return incoming.decision ?? root(traceId);
}

/** 16 or 32 random lowercase hex digits, never all zero (W3C: an all-zero id is invalid). */
export function randomId(hexDigits: 16 | 32): string {
  let id = "";
  for (let i = 0; i < hexDigits; i += 8)
    id += ((Math.random() * 2 ** 32) >>> 0).toString(16).padStart(8, "0");
  return /^0+$/.test(id) ? `${id.slice(0, -1)}1` : id;
}

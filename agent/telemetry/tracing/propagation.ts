// Trace context on the wire: W3C Trace Context (`traceparent`, `tracestate`) and Zipkin B3, single
// header (`b3`) and multi header (`x-b3-*`). Pure parsing and formatting, no OTel types, so it is
// table-tested and costs a few string operations per request.
//
// What the mesh promises (docs/tracing.md): context is extracted from either format, W3C first (as
// Linkerd: one format must win when both are present and disagree); it is injected as W3C always and, in
// addition, in each B3 form the request came with, so B3-only applications keep their traces. A
// malformed header is ignored (a new trace starts) and overwritten with a well-formed one, never passed
// on as it came: the next hop would otherwise have to guess too.

type HeaderBag = Readonly<Record<string, string | string[] | number | undefined>>;
type MutableHeaders = Record<string, string | string[] | number | undefined>;

/** The remote caller's span, as the request carried it. */
export interface TraceParent {
  /** 32 lowercase hex digits (a 64-bit B3 id is left-padded with zeros, as OTel does). */
  readonly traceId: string;
  /** 16 lowercase hex digits. */
  readonly spanId: string;
  /** undefined: the caller deferred the decision (B3 without a sampling state). */
  readonly sampled: boolean | undefined;
  /** B3 debug (`d`, `X-B3-Flags: 1`): sample regardless of the sampler, and say so downstream. */
  readonly debug: boolean;
  /** The W3C tracestate list, validated; passed on unchanged. */
  readonly tracestate?: string;
}

export interface ExtractedTrace {
  readonly parent: TraceParent | undefined;
  /** A B3 sampling decision without ids (`b3: 0`, `X-B3-Sampled` alone): honoured for a new trace. */
  readonly decision: boolean | undefined;
  /** The request carried `b3` / `x-b3-*` headers (even malformed ones): answer in the same form. */
  readonly b3Single: boolean;
  readonly b3Multi: boolean;
}

/** What the mesh's own span tells the next hop. */
export interface OutgoingTrace {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
  readonly debug: boolean;
  /** The span this one is a child of (B3 carries it; W3C does not). */
  readonly parentSpanId?: string | undefined;
  readonly tracestate?: string | undefined;
}

export const TRACEPARENT = "traceparent";
export const TRACESTATE = "tracestate";
export const B3 = "b3";
export const B3_TRACE_ID = "x-b3-traceid";
export const B3_SPAN_ID = "x-b3-spanid";
export const B3_PARENT_SPAN_ID = "x-b3-parentspanid";
export const B3_SAMPLED = "x-b3-sampled";
export const B3_FLAGS = "x-b3-flags";

const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
const ZERO_TRACE = "00000000000000000000000000000000";
const ZERO_SPAN = "0000000000000000";
const PAD64 = "0000000000000000";
/** W3C tracestate: at most 32 list members, each key=value in the specification's grammar. */
const TRACESTATE_MEMBER =
  /^([a-z0-9][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;
const MAX_TRACESTATE_MEMBERS = 32;

export function extractTrace(headers: HeaderBag): ExtractedTrace {
  const b3Single = headers[B3] !== undefined;
  const b3Multi =
    headers[B3_TRACE_ID] !== undefined ||
    headers[B3_SAMPLED] !== undefined ||
    headers[B3_FLAGS] !== undefined;
  const w3c = parseTraceparent(single(headers[TRACEPARENT]));
  if (w3c) {
    const tracestate = parseTracestate(headers[TRACESTATE]);
    return { parent: tracestate ? { ...w3c, tracestate } : w3c, decision: undefined, b3Single, b3Multi };
  }
  const b3 = b3Single ? parseB3Single(single(headers[B3])) : b3Multi ? parseB3Multi(headers) : undefined;
  return { parent: b3?.parent, decision: b3?.decision, b3Single, b3Multi };
}

/** `00-<trace-id>-<parent-id>-<flags>`; a future version is read by its first four fields. */
export function parseTraceparent(value: string | undefined): TraceParent | undefined {
  if (value === undefined || value.length < 55) return undefined;
  const version = value.slice(0, 2);
  if (!/^[0-9a-f]{2}$/.test(version) || version === "ff") return undefined;
  if (version === "00" ? value.length !== 55 : value.length > 55 && value[55] !== "-") return undefined;
  if (value[2] !== "-" || value[35] !== "-" || value[52] !== "-") return undefined;
  const traceId = value.slice(3, 35);
  const spanId = value.slice(36, 52);
  const flags = value.slice(53, 55);
  if (!TRACE_ID.test(traceId) || traceId === ZERO_TRACE) return undefined;
  if (!SPAN_ID.test(spanId) || spanId === ZERO_SPAN) return undefined;
  if (!/^[0-9a-f]{2}$/.test(flags)) return undefined;
  return { traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1, debug: false };
}

/** Keeps the valid list members (up to 32) and drops the rest, as the specification allows. */
export function parseTracestate(value: string | string[] | number | undefined): string | undefined {
  if (value === undefined) return undefined;
  const raw = Array.isArray(value) ? value.join(",") : String(value);
  const members: string[] = [];
  for (const part of raw.split(",")) {
    const m = part.trim();
    if (m !== "" && TRACESTATE_MEMBER.test(m)) members.push(m);
    if (members.length === MAX_TRACESTATE_MEMBERS) break;
  }
  return members.length > 0 ? members.join(",") : undefined;
}

interface B3Result {
  readonly parent?: TraceParent;
  readonly decision?: boolean;
}

/** `{TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]]`, or a lone sampling state. */
export function parseB3Single(value: string | undefined): B3Result | undefined {
  if (value === undefined) return undefined;
  const v = value.trim().toLowerCase();
  if (v === "0") return { decision: false };
  if (v === "1" || v === "d") return { decision: true };
  const parts = v.split("-");
  if (parts.length < 2 || parts.length > 4) return undefined;
  const traceId = b3TraceId(parts[0]!);
  const spanId = parts[1]!;
  if (!traceId || !SPAN_ID.test(spanId) || spanId === ZERO_SPAN) return undefined;
  const state = parts[2];
  if (state !== undefined && state !== "0" && state !== "1" && state !== "d") return undefined;
  if (parts[3] !== undefined && !SPAN_ID.test(parts[3])) return undefined;
  return {
    parent: {
      traceId,
      spanId,
      sampled: state === undefined ? undefined : state !== "0",
      debug: state === "d",
    },
  };
}

export function parseB3Multi(headers: HeaderBag): B3Result | undefined {
  const flags = single(headers[B3_FLAGS])?.trim();
  const sampledRaw = single(headers[B3_SAMPLED])?.trim().toLowerCase();
  const debug = flags === "1";
  // "true"/"false" are the pre-spec values some Zipkin clients still send.
  const sampled = debug
    ? true
    : sampledRaw === "1" || sampledRaw === "true"
      ? true
      : sampledRaw === "0" || sampledRaw === "false"
        ? false
        : undefined;
  const rawTrace = single(headers[B3_TRACE_ID]);
  const rawSpan = single(headers[B3_SPAN_ID])?.trim().toLowerCase();
  if (rawTrace === undefined && rawSpan === undefined)
    return sampled === undefined ? undefined : { decision: sampled };
  const traceId = rawTrace === undefined ? undefined : b3TraceId(rawTrace.trim().toLowerCase());
  if (!traceId || rawSpan === undefined || !SPAN_ID.test(rawSpan) || rawSpan === ZERO_SPAN) return undefined;
  return { parent: { traceId, spanId: rawSpan, sampled, debug } };
}

/**
 * Writes the outgoing context: `traceparent` (and `tracestate` when there is one) always, `b3` and
 * `x-b3-*` when the request came with them. Any stale value of those headers is replaced.
 */
export function injectTrace(
  headers: MutableHeaders,
  out: OutgoingTrace,
  formats: { readonly b3Single: boolean; readonly b3Multi: boolean },
): void {
  headers[TRACEPARENT] = `00-${out.traceId}-${out.spanId}-${out.sampled ? "01" : "00"}`;
  if (out.tracestate) headers[TRACESTATE] = out.tracestate;
  else delete headers[TRACESTATE];
  if (!formats.b3Single && !formats.b3Multi) return;
  const traceId = out.traceId.startsWith(PAD64) ? out.traceId.slice(16) : out.traceId;
  const state = out.debug ? "d" : out.sampled ? "1" : "0";
  if (formats.b3Single) {
    headers[B3] = `${traceId}-${out.spanId}-${state}${out.parentSpanId ? `-${out.parentSpanId}` : ""}`;
  }
  if (formats.b3Multi) {
    headers[B3_TRACE_ID] = traceId;
    headers[B3_SPAN_ID] = out.spanId;
    if (out.parentSpanId) headers[B3_PARENT_SPAN_ID] = out.parentSpanId;
    else delete headers[B3_PARENT_SPAN_ID];
    // B3: debug implies sampled, and X-B3-Sampled must not be sent beside X-B3-Flags: 1.
    if (out.debug) {
      headers[B3_FLAGS] = "1";
      delete headers[B3_SAMPLED];
    } else {
      headers[B3_SAMPLED] = out.sampled ? "1" : "0";
      delete headers[B3_FLAGS];
    }
  }
}

/** 16 or 32 hex digits, not all zero; a 64-bit id is padded to OTel's 128 bits. */
function b3TraceId(v: string): string | undefined {
  const id = v.length === 16 ? PAD64 + v : v;
  return TRACE_ID.test(id) && id !== ZERO_TRACE ? id : undefined;
}

/** A header sent twice is ambiguous for a single-valued field: treated as absent. */
function single(v: string | string[] | number | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (Array.isArray(v)) return v.length === 1 ? v[0] : undefined;
  return String(v);
}

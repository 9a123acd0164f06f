// W3C Trace Context and B3 on the wire: what is accepted, what is ignored (a malformed header never
// throws and never becomes a parent), and what the mesh writes for the next hop.
import { describe, expect, it } from "vitest";
import {
  extractTrace,
  injectTrace,
  parseB3Multi,
  parseB3Single,
  parseTraceparent,
  parseTracestate,
} from "../../../../../agent/telemetry/tracing/propagation.ts";

const T = "4bf92f3577b34da6a3ce929d0e0e4736";
const S = "00f067aa0ba902b7";
const P = "b7ad6b7169203331";

describe("traceparent", () => {
  it("reads version 00 with the sampled flag", () => {
    expect(parseTraceparent(`00-${T}-${S}-01`)).toEqual({
      traceId: T,
      spanId: S,
      sampled: true,
      debug: false,
    });
    expect(parseTraceparent(`00-${T}-${S}-00`)?.sampled).toBe(false);
    // Other flag bits do not change the sampled bit.
    expect(parseTraceparent(`00-${T}-${S}-03`)?.sampled).toBe(true);
  });

  it("reads a future version by its first four fields", () => {
    expect(parseTraceparent(`01-${T}-${S}-01-extra`)?.traceId).toBe(T);
    expect(parseTraceparent(`01-${T}-${S}-01`)?.spanId).toBe(S);
  });

  it.each([
    ["empty", ""],
    ["version ff", `ff-${T}-${S}-01`],
    ["version 00 with extra fields", `00-${T}-${S}-01-extra`],
    ["future version glued to more", `01-${T}-${S}-01x`],
    ["uppercase hex", `00-${T.toUpperCase()}-${S}-01`],
    ["all-zero trace id", `00-${"0".repeat(32)}-${S}-01`],
    ["all-zero span id", `00-${T}-${"0".repeat(16)}-01`],
    ["short trace id", `00-${T.slice(2)}-${S}-01`],
    ["bad flags", `00-${T}-${S}-0g`],
    ["wrong separators", `00_${T}_${S}_01`],
    ["two headers joined", `00-${T}-${S}-01, 00-${T}-${P}-01`],
    ["garbage", "not a trace"],
  ])("ignores %s", (_what, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });
});

describe("tracestate", () => {
  it("keeps valid members, in order, and drops malformed ones", () => {
    expect(parseTracestate("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")).toBe(
      "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
    );
    expect(parseTracestate("ok=1, BAD=2 ,=x,tenant@vendor=v")).toBe("ok=1,tenant@vendor=v");
    expect(parseTracestate(["a=1", "b=2"])).toBe("a=1,b=2");
    expect(parseTracestate("nothing valid")).toBeUndefined();
  });

  it("keeps at most 32 members", () => {
    const many = Array.from({ length: 40 }, (_, i) => `k${i}=v`).join(",");
    expect(parseTracestate(many)!.split(",")).toHaveLength(32);
  });
});

describe("B3", () => {
  it("reads the single header in all its forms", () => {
    expect(parseB3Single(`${T}-${S}-1-${P}`)).toEqual({
      parent: { traceId: T, spanId: S, sampled: true, debug: false },
    });
    expect(parseB3Single(`${T}-${S}`)?.parent?.sampled).toBeUndefined();
    expect(parseB3Single(`${T}-${S}-d`)?.parent).toMatchObject({ sampled: true, debug: true });
    expect(parseB3Single(`${T}-${S}-0`)?.parent?.sampled).toBe(false);
    expect(parseB3Single("0")).toEqual({ decision: false });
    expect(parseB3Single("1")).toEqual({ decision: true });
    // A 64-bit trace id is padded to 128 bits, as OpenTelemetry does.
    expect(parseB3Single(`a3ce929d0e0e4736-${S}-1`)?.parent?.traceId).toBe(
      `0000000000000000a3ce929d0e0e4736`,
    );
  });

  it.each([
    `${T}`,
    `${T}-${S}-2`,
    `${T}-${S}-1-nothex`,
    `${T}-${S}-1-${P}-more`,
    `${"0".repeat(32)}-${S}-1`,
    `${T}-${"0".repeat(16)}-1`,
    `${T.slice(1)}-${S}-1`,
    "",
  ])("ignores the malformed single header %j", (value) => {
    expect(parseB3Single(value)).toBeUndefined();
  });

  it("reads the multi headers, debug winning over sampled", () => {
    expect(parseB3Multi({ "x-b3-traceid": T, "x-b3-spanid": S, "x-b3-sampled": "1" })).toEqual({
      parent: { traceId: T, spanId: S, sampled: true, debug: false },
    });
    expect(parseB3Multi({ "x-b3-traceid": T, "x-b3-spanid": S, "x-b3-flags": "1" })?.parent).toMatchObject({
      sampled: true,
      debug: true,
    });
    expect(
      parseB3Multi({ "x-b3-traceid": T, "x-b3-spanid": S, "x-b3-sampled": "false" })?.parent?.sampled,
    ).toBe(false);
    expect(parseB3Multi({ "x-b3-sampled": "0" })).toEqual({ decision: false });
    expect(parseB3Multi({ "x-b3-traceid": T })).toBeUndefined();
    expect(parseB3Multi({ "x-b3-traceid": "xyz", "x-b3-spanid": S })).toBeUndefined();
    expect(parseB3Multi({ "x-b3-traceid": [T, T], "x-b3-spanid": S })).toBeUndefined();
  });
});

describe("extractTrace", () => {
  it("prefers W3C when both formats are present, and remembers that B3 came", () => {
    const e = extractTrace({
      traceparent: `00-${T}-${S}-01`,
      b3: `${"1".repeat(32)}-${P}-0`,
      "x-b3-sampled": "0",
    });
    expect(e.parent).toMatchObject({ traceId: T, spanId: S, sampled: true });
    expect(e).toMatchObject({ b3Single: true, b3Multi: true });
  });

  it("falls back to B3 when traceparent is malformed, and to nothing when both are", () => {
    expect(extractTrace({ traceparent: "garbage", b3: `${T}-${S}-1` }).parent?.spanId).toBe(S);
    const none = extractTrace({ traceparent: "garbage", b3: "garbage" });
    expect(none.parent).toBeUndefined();
    expect(none.b3Single).toBe(true);
  });

  it("carries tracestate only with a valid traceparent", () => {
    expect(extractTrace({ traceparent: `00-${T}-${S}-01`, tracestate: "a=1" }).parent?.tracestate).toBe(
      "a=1",
    );
    expect(extractTrace({ traceparent: "bad", tracestate: "a=1" }).parent).toBeUndefined();
  });

  it("finds nothing in a request without trace headers", () => {
    expect(extractTrace({ "user-agent": "curl" })).toEqual({
      parent: undefined,
      decision: undefined,
      b3Single: false,
      b3Multi: false,
    });
  });
});

describe("injectTrace", () => {
  const out = { traceId: T, spanId: P, sampled: true, debug: false, parentSpanId: S };

  it("writes W3C only when the request had no B3, dropping a stale tracestate", () => {
    const h: Record<string, string> = { tracestate: "stale=1" };
    injectTrace(h, out, { b3Single: false, b3Multi: false });
    expect(h).toEqual({ traceparent: `00-${T}-${P}-01` });
  });

  it("writes W3C and each B3 form the request came with", () => {
    const h: Record<string, string> = { b3: "garbage", "x-b3-traceid": "old", "x-b3-flags": "1" };
    injectTrace(h, { ...out, tracestate: "a=1" }, { b3Single: true, b3Multi: true });
    expect(h).toEqual({
      traceparent: `00-${T}-${P}-01`,
      tracestate: "a=1",
      b3: `${T}-${P}-1-${S}`,
      "x-b3-traceid": T,
      "x-b3-spanid": P,
      "x-b3-parentspanid": S,
      "x-b3-sampled": "1",
    });
  });

  it("keeps a 64-bit B3 trace id 64 bits long, marks debug, and says 00 when unsampled", () => {
    const h: Record<string, string> = {};
    const t64 = `0000000000000000${T.slice(16)}`;
    injectTrace(
      h,
      { traceId: t64, spanId: P, sampled: true, debug: true },
      { b3Single: true, b3Multi: true },
    );
    expect(h["b3"]).toBe(`${T.slice(16)}-${P}-d`);
    expect(h["x-b3-traceid"]).toBe(T.slice(16));
    expect(h["x-b3-flags"]).toBe("1");
    expect(h["x-b3-sampled"]).toBeUndefined();
    expect(h["traceparent"]).toBe(`00-${t64}-${P}-01`);
    const u: Record<string, string> = {};
    injectTrace(u, { ...out, sampled: false }, { b3Single: true, b3Multi: false });
    expect(u["traceparent"]).toBe(`00-${T}-${P}-00`);
    expect(u["b3"]).toBe(`${T}-${P}-0-${S}`);
  });

  it("round-trips: what it writes, it reads back", () => {
    const h: Record<string, string> = {};
    injectTrace(h, out, { b3Single: true, b3Multi: true });
    expect(parseTraceparent(h["traceparent"])).toMatchObject({ traceId: T, spanId: P, sampled: true });
    expect(parseB3Single(h["b3"])?.parent).toMatchObject({ traceId: T, spanId: P, sampled: true });
    expect(parseB3Multi(h)?.parent).toMatchObject({ traceId: T, spanId: P, sampled: true });
  });
});

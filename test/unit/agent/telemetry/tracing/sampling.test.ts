// The sampling decision table: parent-based samplers follow the caller (W3C flag, B3 state, debug, a
// B3 decision without ids) and decide with the root sampler when the caller deferred or said nothing;
// the other samplers ignore the caller.
import { describe, expect, it } from "vitest";
import { extractTrace } from "../../../../../agent/telemetry/tracing/propagation.ts";
import { decideSampling, randomId } from "../../../../../agent/telemetry/tracing/sampling.ts";

const T = "4bf92f3577b34da6a3ce929d0e0e4736";
const S = "00f067aa0ba902b7";
const yes = () => true;
const no = () => false;

describe("decideSampling", () => {
  it.each<[string, Record<string, string>, boolean, boolean]>([
    // [case, headers, parent-based verdict with root=no, parent-based verdict with root=yes]
    ["no headers: the root sampler", {}, false, true],
    ["W3C sampled", { traceparent: `00-${T}-${S}-01` }, true, true],
    ["W3C not sampled", { traceparent: `00-${T}-${S}-00` }, false, false],
    ["B3 sampled", { b3: `${T}-${S}-1` }, true, true],
    ["B3 not sampled", { b3: `${T}-${S}-0` }, false, false],
    ["B3 debug", { b3: `${T}-${S}-d` }, true, true],
    ["B3 deferred: the root sampler", { b3: `${T}-${S}` }, false, true],
    ["B3 `0` without ids", { b3: "0" }, false, false],
    ["B3 `1` without ids", { "x-b3-sampled": "1" }, true, true],
    ["malformed headers: the root sampler", { traceparent: "junk", b3: "junk" }, false, true],
  ])("parent-based, %s", (_case, headers, rootNo, rootYes) => {
    const e = extractTrace(headers);
    expect(decideSampling(true, no, e, T)).toBe(rootNo);
    expect(decideSampling(true, yes, e, T)).toBe(rootYes);
  });

  it("samplers that are not parent-based ignore the caller", () => {
    const sampled = extractTrace({ traceparent: `00-${T}-${S}-01` });
    const debug = extractTrace({ b3: `${T}-${S}-d` });
    expect(decideSampling(false, no, sampled, T)).toBe(false);
    expect(decideSampling(false, no, debug, T)).toBe(false);
    expect(decideSampling(false, yes, extractTrace({ traceparent: `00-${T}-${S}-00` }), T)).toBe(true);
  });

  it("asks the root sampler about the caller's trace id when it deferred", () => {
    const asked: string[] = [];
    decideSampling(
      true,
      (id) => (asked.push(id), true),
      extractTrace({ "x-b3-traceid": T, "x-b3-spanid": S }),
      T,
    );
    expect(asked).toEqual([T]);
  });
});

describe("randomId", () => {
  it("draws lowercase hex ids of the right length", () => {
    const ids = new Set(Array.from({ length: 1000 }, () => randomId(32)));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(randomId(16)).toMatch(/^[0-9a-f]{16}$/);
  });
});

// The test backend's query-string contract: each parameter's accepted forms and its errors.
import { describe, expect, it } from "vitest";
import {
  BehaviourError,
  MAX_BYTES,
  MAX_DELAY_MS,
  parseBehaviour,
  shouldFail,
} from "../../../../../demo/apps/lib/behaviour.ts";

const parse = (qs: string) => parseBehaviour(new URLSearchParams(qs));

describe("parseBehaviour", () => {
  it("defaults to an immediate 200 JSON answer and ignores unknown parameters", () => {
    expect(parse("route=canary&x=1")).toEqual({
      delayMs: 0,
      status: 200,
      failPercent: 0,
      bytes: null,
      echo: false,
    });
  });

  it.each([
    ["delay=250", { delayMs: 250 }],
    [`delay=${MAX_DELAY_MS}`, { delayMs: MAX_DELAY_MS }],
    ["status=503", { status: 503 }],
    ["status=200", { status: 200 }],
    ["status=599", { status: 599 }],
    ["fail=25%", { failPercent: 25 }],
    ["fail=12.5", { failPercent: 12.5 }],
    ["fail=100%", { failPercent: 100 }],
    ["bytes=0", { bytes: 0 }],
    [`bytes=${MAX_BYTES}`, { bytes: MAX_BYTES }],
    ["echo=1", { echo: true }],
    ["echo", { echo: true }],
    ["echo=true", { echo: true }],
    ["echo=0", { echo: false }],
    ["status=201&echo=1&delay=5", { status: 201, echo: true, delayMs: 5 }],
  ])("accepts %s", (qs, expected) => {
    expect(parse(qs)).toMatchObject(expected);
  });

  it.each([
    ["delay=abc", "delay", /whole number/],
    ["delay=-1", "delay", /whole number/],
    ["delay=1.5", "delay", /whole number/],
    [`delay=${MAX_DELAY_MS + 1}`, "delay", /0\.\.300000/],
    ["status=42", "status", /200\.\.599/],
    ["status=600", "status", /200\.\.599/],
    ["status=100", "status", /200\.\.599/],
    ["status=", "status", /whole number/],
    ["fail=101%", "fail", /percentage/],
    ["fail=half", "fail", /percentage/],
    ["fail=-5%", "fail", /percentage/],
    [`bytes=${MAX_BYTES + 1}`, "bytes", /0\.\./],
    ["bytes=1e6", "bytes", /whole number/],
    ["echo=yes", "echo", /1, true, 0 or false/],
    ["echo=1&bytes=10", "echo", /cannot be combined with bytes/],
    ["status=204&bytes=10", "status", /204 has no body/],
    ["status=304&echo=1", "status", /304 has no body/],
  ])("rejects %s naming %s", (qs, field, message) => {
    let error: unknown;
    try {
      parse(qs);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(BehaviourError);
    expect((error as BehaviourError).field).toBe(field);
    expect((error as BehaviourError).message).toMatch(new RegExp(`^query parameter ${field}: `));
    expect((error as BehaviourError).message).toMatch(message);
  });
});

describe("shouldFail", () => {
  it("never fails at 0% and always at 100%, whatever the draw", () => {
    const zero = parse("");
    const all = parse("fail=100%");
    for (const draw of [0, 0.5, 0.999999]) {
      expect(shouldFail(zero, () => draw)).toBe(false);
      expect(shouldFail(all, () => draw)).toBe(true);
    }
  });

  it("fails exactly the draws below the percentage", () => {
    const quarter = parse("fail=25%");
    expect(shouldFail(quarter, () => 0.2499)).toBe(true);
    expect(shouldFail(quarter, () => 0.25)).toBe(false);
  });
});

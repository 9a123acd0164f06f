// The HTTP side of policy matching: path normalisation (what a path rule sees), templates, authority
// ports and header lookup.
import { describe, expect, test } from "vitest";
import { compilePath, headerValue, normalizePath, stripPort } from "../../../agent/policy/http-match.ts";

describe("normalizePath (Istio BASE: RFC 3986 normalisation, no query)", () => {
  test.each([
    ["/a/b", "/a/b"],
    ["/a/b?x=1#f", "/a/b"],
    ["/a#f?x", "/a"],
    ["/./a", "/a"],
    ["/a/./b/.", "/a/b/"],
    ["/a/../b", "/b"],
    ["/a/b/..", "/a/"],
    ["/../../a", "/a"],
    ["/%61%2Db%7e", "/a-b~"],
    ["/%2e%2E/admin", "/admin"],
    ["/a%2fb", "/a%2Fb"], // an encoded slash stays a character of the segment
    ["/a%5cb", "/a%5Cb"],
    ["/a%zz", "/a%zz"],
    ["/a/.hidden/..x", "/a/.hidden/..x"],
    ["*", "*"],
    ["", ""],
  ])("%j → %j", (raw, expected) => {
    expect(normalizePath(raw)).toBe(expected);
    expect(normalizePath(expected)).toBe(expected); // idempotent: the data path may forward it
  });
});

describe("compilePath", () => {
  test("templates combine {*} and {**}", () => {
    const m = compilePath("/v1/{*}/files/{**}");
    expect(m("/v1/alice/files/a/b")).toBe(true);
    expect(m("/v1/alice/files")).toBe(false);
    expect(m("/v1/alice/bob/files/a")).toBe(false);
  });
  test("{**} in the middle needs at least one segment", () => {
    const m = compilePath("/a/{**}/z");
    expect(m("/a/b/c/z")).toBe(true);
    expect(m("/a/z")).toBe(false);
  });
  test("other braces are literal", () => {
    expect(compilePath("/a/{id}")("/a/{id}")).toBe(true);
    expect(compilePath("/a/{id}")("/a/7")).toBe(false);
  });
});

describe("stripPort", () => {
  test.each([
    ["h", "h"],
    ["h:80", "h"],
    ["[fd00::1]:80", "[fd00::1]"],
    ["[fd00::1]", "[fd00::1]"],
    ["fd00::1", "fd00::1"],
    ["10.0.0.1:8080", "10.0.0.1"],
  ])("%j → %j", (a, expected) => expect(stripPort(a)).toBe(expected));
});

describe("headerValue", () => {
  test("lower-case lookup, other casings, arrays joined", () => {
    expect(headerValue({ "x-a": "1" }, "x-a")).toBe("1");
    expect(headerValue({ "X-A": "1" }, "x-a")).toBe("1");
    expect(headerValue({ "x-a": ["1", "2"] }, "x-a")).toBe("1,2");
    expect(headerValue({}, "x-a")).toBeUndefined();
  });
});

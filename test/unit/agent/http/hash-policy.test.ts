// hashKey: what each consistent-hash policy hashes, when it yields no hash, and the generated cookie.
import { describe, expect, it, test } from "vitest";
import type { ConsistentHashLB } from "../../../../controller/api/index.ts";
import { hash32 } from "../../../../agent/balance/hash.ts";
import {
  cookieValue,
  hashKey,
  normalizeIp,
  queryParameter,
  type HashRequest,
} from "../../../../agent/http/hash-policy.ts";

const req = (over: Partial<HashRequest> = {}): HashRequest => ({
  headers: {},
  query: "",
  sourceAddress: "10.0.0.7",
  ...over,
});

describe("hashKey", () => {
  const cases: [string, ConsistentHashLB, HashRequest, number | undefined][] = [
    ["header value", { httpHeaderName: "x-user" }, req({ headers: { "x-user": "alice" } }), hash32("alice")],
    [
      "header name is case-insensitive",
      { httpHeaderName: "X-User" },
      req({ headers: { "x-user": "alice" } }),
      hash32("alice"),
    ],
    ["absent header: no hash", { httpHeaderName: "x-user" }, req(), undefined],
    [
      "empty header list: no hash",
      { httpHeaderName: "x-user" },
      req({ headers: { "x-user": [] } }),
      undefined,
    ],
    [
      "empty header value is a value",
      { httpHeaderName: "x-user" },
      req({ headers: { "x-user": "" } }),
      hash32(""),
    ],
    [
      "cookie value",
      { httpCookie: { name: "sid" } },
      req({ headers: { cookie: "a=1; sid=xyz; b=2" } }),
      hash32("xyz"),
    ],
    [
      "cookie without ttl, absent: no hash",
      { httpCookie: { name: "sid" } },
      req({ headers: { cookie: "a=1" } }),
      undefined,
    ],
    ["query parameter", { httpQueryParameterName: "shard" }, req({ query: "?a=1&shard=7" }), hash32("7")],
    ["query parameter, decoded", { httpQueryParameterName: "u" }, req({ query: "u=a%20b" }), hash32("a b")],
    [
      "absent query parameter: no hash",
      { httpQueryParameterName: "shard" },
      req({ query: "a=1" }),
      undefined,
    ],
    ["source IP", { useSourceIp: true }, req(), hash32("10.0.0.7")],
    [
      "IPv4-mapped source IP = the IPv4 one",
      { useSourceIp: true },
      req({ sourceAddress: "::ffff:10.0.0.7" }),
      hash32("10.0.0.7"),
    ],
    ["empty source address: no hash", { useSourceIp: true }, req({ sourceAddress: "" }), undefined],
  ];
  test.each(cases)("%s", (_name, policy, request, expected) => {
    const r = hashKey(policy, request);
    expect(r.hash).toBe(expected);
    expect(r.setCookie).toBeUndefined();
  });

  it("hashes several values of one header independently of their order", () => {
    const p = { httpHeaderName: "x-tag" };
    const a = hashKey(p, req({ headers: { "x-tag": ["b", "a"] } })).hash;
    expect(a).toBe(hashKey(p, req({ headers: { "x-tag": ["a", "b"] } })).hash);
    expect(a).not.toBe(hashKey(p, req({ headers: { "x-tag": ["a", "c"] } })).hash);
  });
});

describe("generated affinity cookie (ttl set, cookie absent)", () => {
  const policy = (ttl: string, path?: string): ConsistentHashLB => ({
    httpCookie: { name: "sid", ttl, path },
  });

  it("returns a Set-Cookie and the hash of the value it sets, so the next request lands the same", () => {
    const r = hashKey(policy("1h", "/shop"), req({ sourcePort: 40000 }));
    expect(r.setCookie).toMatch(/^sid=[0-9a-f]{16}; Max-Age=3600; Path=\/shop; HttpOnly$/);
    const value = /^sid=([0-9a-f]{16});/.exec(r.setCookie ?? "")?.[1] as string;
    expect(r.hash).toBe(hash32(value));
    const next = hashKey(
      policy("1h", "/shop"),
      req({ headers: { cookie: `sid=${value}` }, sourcePort: 41000 }),
    );
    expect(next).toEqual({ hash: r.hash });
  });

  it("is stable per client connection and differs between connections", () => {
    const a = hashKey(policy("10s"), req({ sourcePort: 1 }));
    expect(hashKey(policy("10s"), req({ sourcePort: 1 }))).toEqual(a);
    expect(hashKey(policy("10s"), req({ sourcePort: 2 })).setCookie).not.toBe(a.setCookie);
  });

  it("makes a session cookie for ttl 0s and rounds sub-second ttls up", () => {
    expect(hashKey(policy("0s"), req()).setCookie).toMatch(/^sid=[0-9a-f]{16}; HttpOnly$/);
    expect(hashKey(policy("250ms"), req()).setCookie).toContain("; Max-Age=1;");
  });
});

describe("parsing helpers", () => {
  test.each([
    ["a=1; sid=xyz", "sid", "xyz"],
    ['sid="quoted"', "sid", "quoted"],
    ["sidx=1; sid=2", "sid", "2"],
    ["sid=first; sid=second", "sid", "first"],
    ["novalue; sid=", "sid", ""],
    ["SID=upper", "sid", undefined],
    ["a=1", "sid", undefined],
  ])("cookie %j → %s=%j", (header, name, expected) => {
    expect(cookieValue(header, name)).toBe(expected);
  });

  it("reads cookies split over several HTTP/2 cookie fields", () => {
    expect(cookieValue(["a=1", "sid=h2"], "sid")).toBe("h2");
    expect(cookieValue(undefined, "sid")).toBeUndefined();
  });

  it("takes the first query value and decodes + as a space", () => {
    expect(queryParameter("?k=1&k=2", "k")).toBe("1");
    expect(queryParameter("k=a+b", "k")).toBe("a b");
    expect(queryParameter("", "k")).toBeUndefined();
  });

  it("normalizes addresses", () => {
    expect(normalizeIp("::FFFF:192.168.1.1")).toBe("192.168.1.1");
    expect(normalizeIp("FD00::1")).toBe("fd00::1");
    expect(normalizeIp("::ffff")).toBe("::ffff");
  });
});

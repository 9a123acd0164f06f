// agent/http/filters.ts: header modifiers (the conformance RequestHeaderModifier cases), the spec's
// ReplacePrefixMatch table, redirect Location rules, URL rewrite, mirror draws and weighted picks.
import { describe, expect, test } from "vitest";
import {
  mirrorsFor,
  modifyHeaders,
  modifyPath,
  pickWeighted,
  redirectLocation,
  replacePrefix,
  rewriteUrl,
} from "../../../agent/http/filters.ts";
import type { HeaderModifier, HttpFilter } from "../../../agent/state/routes.ts";

const mod = (m: Partial<HeaderModifier>): HeaderModifier => ({ set: [], add: [], remove: [], ...m });

describe("modifyHeaders", () => {
  const cases: [
    string,
    Record<string, string | string[]>,
    HeaderModifier,
    Record<string, string | string[]>,
  ][] = [
    [
      "set adds a new header",
      { "some-other-header": "val" },
      mod({ set: [{ name: "x-header-set", value: "set-overwrites-values" }] }),
      { "some-other-header": "val", "x-header-set": "set-overwrites-values" },
    ],
    [
      "set overwrites",
      { "x-header-set": "some-other-value" },
      mod({ set: [{ name: "x-header-set", value: "set-overwrites-values" }] }),
      { "x-header-set": "set-overwrites-values" },
    ],
    [
      "add to nothing",
      {},
      mod({ add: [{ name: "x-header-add", value: "add-appends-values" }] }),
      { "x-header-add": "add-appends-values" },
    ],
    [
      "add appends with a comma",
      { "x-header-add": "some-other-value" },
      mod({ add: [{ name: "x-header-add", value: "add-appends-values" }] }),
      { "x-header-add": "some-other-value,add-appends-values" },
    ],
    ["remove", { "x-header-remove": "val", keep: "k" }, mod({ remove: ["x-header-remove"] }), { keep: "k" }],
    [
      "names are case-insensitive",
      {
        "X-Header-Set": "original-val-set",
        "X-HEADER-ADD": "original-val-add",
        "x-Header-Remove": "original-val-remove",
      },
      mod({
        set: [{ name: "x-header-set", value: "header-set" }],
        add: [{ name: "x-header-add", value: "header-add" }],
        remove: ["x-header-remove"],
      }),
      { "x-header-set": "header-set", "x-header-add": "original-val-add,header-add" },
    ],
    [
      "set-cookie gets another line",
      { "set-cookie": "a=1" },
      mod({ add: [{ name: "set-cookie", value: "b=2" }] }),
      { "set-cookie": ["a=1", "b=2"] },
    ],
    [
      "an array value is appended to",
      { via: ["1.1 a", "1.1 b"] },
      mod({ add: [{ name: "via", value: "1.1 c" }] }),
      { via: "1.1 a,1.1 b,1.1 c" },
    ],
  ];
  test.each(cases)("%s", (_n, input, m, want) => {
    const h = { ...input };
    expect(modifyHeaders(h, m)).toBe(h);
    expect(h).toEqual(want);
  });
});

describe("ReplacePrefixMatch (the spec's table)", () => {
  const table: [string, string, string, string][] = [
    ["/foo/bar", "/foo", "/xyz", "/xyz/bar"],
    ["/foo/bar", "/foo", "/xyz/", "/xyz/bar"],
    ["/foo/bar", "/foo/", "/xyz", "/xyz/bar"],
    ["/foo/bar", "/foo/", "/xyz/", "/xyz/bar"],
    ["/foo", "/foo", "/xyz", "/xyz"],
    ["/foo/", "/foo", "/xyz", "/xyz/"],
    ["/foo/bar", "/foo", "", "/bar"],
    ["/foo/", "/foo", "", "/"],
    ["/foo", "/foo", "", "/"],
    ["/foo/", "/foo", "/", "/"],
    ["/foo", "/foo", "/", "/"],
    ["/foo/bar", "/foo", "/", "/bar"],
    // conformance HTTPRouteRewritePath
    ["/prefix/one/two", "/prefix/one", "/one", "/one/two"],
    ["/strip-prefix/three", "/strip-prefix", "/", "/three"],
    ["/strip-prefix", "/strip-prefix", "/", "/"],
    [
      "/prefix/rewrite-path-and-modify-headers/one",
      "/prefix/rewrite-path-and-modify-headers",
      "/prefix",
      "/prefix/one",
    ],
    ["/anything", "/", "/api", "/api/anything"],
    ["/foobar", "/foo", "/xyz", "/foobar"],
  ];
  test.each(table)("%s with prefix %s replaced by %s → %s", (path, prefix, replacement, want) => {
    expect(replacePrefix(path, prefix, replacement)).toBe(want);
  });

  test("modifyPath: full replacement, prefix replacement, and a non-prefix match left alone", () => {
    expect(
      modifyPath(
        "/full/one/two",
        { type: "ReplaceFullPath", value: "/one" },
        { type: "PathPrefix", value: "/full/one" },
      ),
    ).toBe("/one");
    expect(
      modifyPath("/a/b", { type: "ReplacePrefixMatch", value: "/z" }, { type: "PathPrefix", value: "/a" }),
    ).toBe("/z/b");
    expect(
      modifyPath("/a/b", { type: "ReplacePrefixMatch", value: "/z" }, { type: "Exact", value: "/a/b" }),
    ).toBe("/a/b");
  });
});

describe("redirectLocation", () => {
  type R = Extract<HttpFilter, { type: "RequestRedirect" }>;
  const r = (f: Partial<R>): R => ({
    type: "RequestRedirect",
    scheme: undefined,
    hostname: undefined,
    port: undefined,
    path: undefined,
    statusCode: 302,
    ...f,
  });
  const req = { scheme: "http" as const, host: "echo", port: 80, path: "/original-prefix/lemon", query: "" };
  const prefix = { type: "PathPrefix" as const, value: "/original-prefix" };
  const cases: [string, R, Partial<typeof req>, number, string][] = [
    [
      "hostname, default 302",
      r({ hostname: "example.org" }),
      {},
      302,
      "http://example.org/original-prefix/lemon",
    ],
    [
      "hostname and 301",
      r({ hostname: "example.org", statusCode: 301 }),
      {},
      301,
      "http://example.org/original-prefix/lemon",
    ],
    [
      "prefix path",
      r({ path: { type: "ReplacePrefixMatch", value: "/replacement-prefix" } }),
      {},
      302,
      "http://echo/replacement-prefix/lemon",
    ],
    [
      "full path",
      r({ path: { type: "ReplaceFullPath", value: "/full-path-replacement" } }),
      {},
      302,
      "http://echo/full-path-replacement",
    ],
    ["port kept", r({ port: 8083 }), {}, 302, "http://echo:8083/original-prefix/lemon"],
    [
      "port and host",
      r({ port: 8083, hostname: "example.org" }),
      {},
      302,
      "http://example.org:8083/original-prefix/lemon",
    ],
    [
      "scheme https: port 443, omitted",
      r({ scheme: "https" }),
      {},
      302,
      "https://echo/original-prefix/lemon",
    ],
    [
      "scheme https and host, 302",
      r({ scheme: "https", hostname: "example.org" }),
      { port: 8080 },
      302,
      "https://example.org/original-prefix/lemon",
    ],
    [
      "no scheme, no port: the listener port",
      r({ hostname: "example.org" }),
      { port: 8080 },
      302,
      "http://example.org:8080/original-prefix/lemon",
    ],
    [
      "explicit default port is omitted",
      r({ scheme: "http", port: 80 }),
      { port: 8080 },
      302,
      "http://echo/original-prefix/lemon",
    ],
    [
      "https with a non-default port",
      r({ scheme: "https", port: 8443 }),
      {},
      302,
      "https://echo:8443/original-prefix/lemon",
    ],
    [
      "303 keeps the query",
      r({ statusCode: 303 }),
      { query: "a=1" },
      303,
      "http://echo/original-prefix/lemon?a=1",
    ],
  ];
  test.each(cases)("%s", (_n, f, over, status, location) => {
    expect(redirectLocation(f, { ...req, ...over }, prefix)).toEqual({ status, location });
  });
});

describe("rewriteUrl", () => {
  test("hostname replaces the authority; path modifiers as for redirects", () => {
    const match = { type: "PathPrefix" as const, value: "/prefix/original" };
    expect(
      rewriteUrl(
        { type: "URLRewrite", hostname: "one.example.org", path: undefined },
        { path: "/one", authority: "echo:80" },
        match,
      ),
    ).toEqual({ path: "/one", authority: "one.example.org" });
    expect(
      rewriteUrl(
        {
          type: "URLRewrite",
          hostname: undefined,
          path: { type: "ReplacePrefixMatch", value: "/rewritten-prefix" },
        },
        { path: "/prefix/original", authority: "echo" },
        match,
      ),
    ).toEqual({
      path: "/rewritten-prefix",
      authority: "echo",
    });
  });
});

describe("mirrorsFor", () => {
  const mirror = (numerator: number, denominator = 100): HttpFilter => ({
    type: "RequestMirror",
    service: "mesh/m",
    port: 80,
    numerator,
    denominator,
  });
  test("100% always, 0% never, a fraction against the draw; other filters ignored", () => {
    const filters: HttpFilter[] = [
      mirror(100),
      mirror(0),
      mirror(1, 4),
      { type: "URLRewrite", hostname: "x", path: undefined },
    ];
    expect(mirrorsFor(filters, () => 0.2).length).toBe(2);
    expect(mirrorsFor(filters, () => 0.25).length).toBe(1);
    expect(mirrorsFor([mirror(20)], () => 0.999).length).toBe(0);
  });
  test("20% of 10,000 draws is within 3 sigma", () => {
    let n = 0;
    for (let i = 0; i < 10_000; i++) n += mirrorsFor([mirror(20)]).length;
    expect(Math.abs(n - 2000)).toBeLessThan(120);
  });
});

describe("pickWeighted", () => {
  const b = (name: string, weight: number) => ({ name, weight });
  test("draws map onto cumulative weights; weight 0 is never picked", () => {
    const list = [b("v1", 70), b("v3", 0), b("v2", 30)];
    expect(pickWeighted(list, () => 0)?.name).toBe("v1");
    expect(pickWeighted(list, () => 0.699)?.name).toBe("v1");
    expect(pickWeighted(list, () => 0.7)?.name).toBe("v2");
    expect(pickWeighted(list, () => 0.9999999)?.name).toBe("v2");
    expect(pickWeighted(list, () => 1)?.name).toBe("v2");
    expect(pickWeighted([b("v3", 0), b("v1", 1)], () => 0)?.name).toBe("v1");
  });
  test("all weights 0, or no backends: undefined (the spec's 500)", () => {
    expect(pickWeighted([b("a", 0), b("b", 0)])).toBeUndefined();
    expect(pickWeighted([])).toBeUndefined();
  });
  test("a 90/10 split over 10,000 picks lands within 1.5 points", () => {
    const seen = { v1: 0, v2: 0, v3: 0 };
    for (let i = 0; i < 10_000; i++)
      seen[pickWeighted([b("v1", 90), b("v2", 10), b("v3", 0)])!.name as "v1"] += 1;
    expect(Math.abs(seen.v1 / 10_000 - 0.9)).toBeLessThan(0.015);
    expect(seen.v3).toBe(0);
  });
});

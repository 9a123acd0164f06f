// HTTPRoute and GRPCRoute schemas: full documents parse with the spec's defaults and re-parse to
// themselves; every CRD rule rejects with a message that names the field.
import { describe, expect, test } from "vitest";
import { formatIssue, gatewayDurationMs, validateDocument } from "../../../controller/api/index.ts";

const G = "gateway.networking.k8s.io/v1";
const parent = { group: "", kind: "Service", name: "echo", port: 80 };
const http = (spec: Record<string, unknown>) => ({
  apiVersion: G,
  kind: "HTTPRoute",
  metadata: { name: "r", namespace: "mesh" },
  spec: { parentRefs: [parent], ...spec },
});
const grpc = (spec: Record<string, unknown>) => ({ ...http(spec), kind: "GRPCRoute" });
const rule = (r: Record<string, unknown>) => http({ rules: [r] });

function errors(doc: unknown): string[] {
  const r = validateDocument(doc, "m.yaml", 2);
  return r.ok ? [] : r.issues.map(formatIssue);
}

describe("valid routes", () => {
  test("an HTTPRoute with every field parses, gets the spec's defaults and re-parses to itself", () => {
    const doc = http({
      hostnames: ["echo.mesh.svc.cluster.local", "*.example.org"],
      rules: [
        {
          name: "canary",
          matches: [
            {
              path: { type: "Exact", value: "/v1" },
              headers: [
                { name: "Version", value: "one" },
                { type: "RegularExpression", name: "x-id", value: "[0-9]+" },
              ],
              queryParams: [{ name: "animal", value: "whale" }],
              method: "GET",
            },
            { path: { type: "RegularExpression", value: "/api/v[0-9]+/.*" } },
          ],
          filters: [
            {
              type: "RequestHeaderModifier",
              requestHeaderModifier: { set: [{ name: "X-A", value: "1" }], remove: ["x-b"] },
            },
            {
              type: "ResponseHeaderModifier",
              responseHeaderModifier: { add: [{ name: "X-C", value: "2" }] },
            },
            {
              type: "RequestMirror",
              requestMirror: { backendRef: { name: "shadow", port: 80 }, percent: 20 },
            },
          ],
          backendRefs: [
            { name: "echo-v1", port: 8080, weight: 95 },
            {
              name: "echo-v2",
              namespace: "other",
              port: 8080,
              weight: 5,
              filters: [{ type: "URLRewrite", urlRewrite: { hostname: "v2.example.org" } }],
            },
          ],
          timeouts: { request: "10s", backendRequest: "1s" },
          retry: { codes: [500, 503], attempts: 2, backoff: "100ms" },
        },
        {
          matches: [{ path: { type: "PathPrefix", value: "/old" } }],
          filters: [
            {
              type: "RequestRedirect",
              requestRedirect: {
                scheme: "https",
                hostname: "example.org",
                port: 8443,
                path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/new" },
              },
            },
          ],
        },
        {},
      ],
    });
    const r = validateDocument(doc, "f", 1);
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok || r.resource.kind !== "HTTPRoute") return;
    const [first, redirect, empty] = r.resource.spec.rules;
    expect(first?.matches[0]?.headers?.[0]).toEqual({ type: "Exact", name: "Version", value: "one" });
    expect(first?.matches[1]?.queryParams).toBeUndefined();
    expect(first?.backendRefs?.[0]).toEqual({
      group: "",
      kind: "Service",
      name: "echo-v1",
      port: 8080,
      weight: 95,
    });
    expect(redirect?.filters?.[0]?.requestRedirect?.statusCode).toBe(302);
    expect(empty?.matches).toEqual([{ path: { type: "PathPrefix", value: "/" } }]);
    const again = validateDocument(JSON.parse(JSON.stringify(r.resource)), "f", 1);
    expect(again.ok && again.resource).toEqual(r.resource);
  });

  test("defaults: no rules is one catch-all rule; a backendRef weighs 1; namespace defaults", () => {
    const r = validateDocument({ ...http({}), metadata: { name: "r" } }, "f", 1);
    expect(r.ok && r.resource.kind === "HTTPRoute" && r.resource.metadata.namespace).toBe("default");
    expect(r.ok && r.resource.kind === "HTTPRoute" && r.resource.spec.rules).toEqual([
      { matches: [{ path: { type: "PathPrefix", value: "/" } }] },
    ]);
    const w = validateDocument(rule({ backendRefs: [{ name: "a", port: 1 }] }), "f", 1);
    expect(
      w.ok && w.resource.kind === "HTTPRoute" && w.resource.spec.rules[0]?.backendRefs?.[0]?.weight,
    ).toBe(1);
  });

  test("a GRPCRoute parses, defaults method match type to Exact, and re-parses to itself", () => {
    const doc = grpc({
      rules: [
        {
          matches: [
            {
              method: { service: "grpc.testing.TestService", method: "UnaryCall" },
              headers: [{ name: "x-test-case", value: "set" }],
            },
            { method: { type: "RegularExpression", service: "grpc\\..*" } },
          ],
          filters: [
            { type: "RequestHeaderModifier", requestHeaderModifier: { add: [{ name: "x-a", value: "b" }] } },
          ],
          backendRefs: [
            { name: "echo-v1", port: 7070, weight: 70 },
            { name: "echo-v3", port: 7070, weight: 0 },
          ],
        },
      ],
    });
    const r = validateDocument(doc, "f", 1);
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok || r.resource.kind !== "GRPCRoute") return;
    expect(r.resource.spec.rules[0]?.matches?.[0]?.method?.type).toBe("Exact");
    const again = validateDocument(JSON.parse(JSON.stringify(r.resource)), "f", 1);
    expect(again.ok && again.resource).toEqual(r.resource);
  });

  test("gatewayDurationMs", () => {
    expect(gatewayDurationMs("1h30m")).toBe(5_400_000);
    expect(gatewayDurationMs("500ms")).toBe(500);
    expect(gatewayDurationMs("1m1s1ms")).toBe(61_001);
    expect(gatewayDurationMs("0s")).toBe(0);
    expect(() => gatewayDurationMs("1.5s")).toThrow(/invalid Gateway API duration/);
  });
});

const P = "m.yaml: document 2 (HTTPRoute mesh/r): ";
const PG = "m.yaml: document 2 (GRPCRoute mesh/r): ";
const path = (type: string, value: string) => rule({ matches: [{ path: { type, value } }] });
const filter = (f: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  rule({ filters: [f], ...extra });
const rhm = (m: Record<string, unknown>) =>
  filter({ type: "RequestHeaderModifier", requestHeaderModifier: m });
const redirect = (r: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  filter({ type: "RequestRedirect", requestRedirect: r }, extra);
const many = <T>(n: number, f: (i: number) => T) => Array.from({ length: n }, (_, i) => f(i));

const cases: [string, unknown, string[]][] = [
  [
    "wrong apiVersion",
    { ...http({}), apiVersion: "gateway.networking.k8s.io/v1beta1" },
    [`${P}apiVersion: apiVersion must be "${G}"`],
  ],
  [
    "no parentRefs",
    http({ parentRefs: [] }),
    [`${P}spec.parentRefs: a route needs at least one parentRef (a Service or a Gateway)`],
  ],
  [
    // An omitted kind means Gateway (test/unit/controller/gateway.test.ts): with group "" that is neither.
    "core group without kind",
    http({ parentRefs: [{ group: "", name: "gw" }] }),
    [
      `${P}spec.parentRefs[0].kind: parentRef core/Gateway is not supported: a route attaches to a Service (group "", kind Service) or to a Gateway (group gateway.networking.k8s.io, kind Gateway; the defaults)`,
    ],
  ],
  [
    "parent port out of range",
    http({ parentRefs: [{ ...parent, port: 70000 }] }),
    [`${P}spec.parentRefs[0].port: must be a port between 1 and 65535`],
  ],
  [
    "same parent twice without port",
    http({
      parentRefs: [
        { ...parent, port: undefined },
        { ...parent, port: undefined },
      ],
    }),
    [
      `${P}spec.parentRefs: sectionName or port must be unique when parentRefs includes 2 or more references to the same parent`,
    ],
  ],
  [
    "same parent twice, one with port",
    http({ parentRefs: [parent, { ...parent, port: undefined }] }),
    [
      `${P}spec.parentRefs: sectionName or port must be specified when parentRefs includes 2 or more references to the same parent`,
    ],
  ],
  [
    "bad hostname",
    http({ hostnames: ["Not_A_Host"] }),
    [`${P}spec.hostnames[0]: must be a lowercase DNS hostname, optionally starting with *.`],
  ],
  ["17 rules", http({ rules: many(17, () => ({})) }), [`${P}spec.rules: at most 16 rules`]],
  [
    "empty rules",
    http({ rules: [] }),
    [`${P}spec.rules: rules needs at least one rule (omit it for the default catch-all)`],
  ],
  [
    "65 matches in a rule",
    rule({ matches: many(65, () => ({})) }),
    [`${P}spec.rules[0].matches: at most 64 matches per rule`],
  ],
  [
    "129 matches in a route",
    http({ rules: many(3, () => ({ matches: many(43, () => ({})) })) }),
    [
      `${P}spec.rules: While 16 rules and 64 matches per rule are allowed, the total number of matches across all rules in a route must be less than 128 (found 129)`,
    ],
  ],
  [
    "duplicate rule names",
    http({ rules: [{ name: "a" }, { name: "a" }] }),
    [`${P}spec.rules[1].name: Rule name must be unique within the route`],
  ],
  [
    "prefix without slash",
    path("PathPrefix", "api"),
    [
      `${P}spec.rules[0].matches[0].path.value: value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']`,
    ],
  ],
  [
    "exact with //",
    path("Exact", "/a//b"),
    [
      `${P}spec.rules[0].matches[0].path.value: must not contain '//' when type one of ['Exact', 'PathPrefix']`,
    ],
  ],
  [
    "exact with /../",
    path("Exact", "/a/../b"),
    [
      `${P}spec.rules[0].matches[0].path.value: must not contain '/../' when type one of ['Exact', 'PathPrefix']`,
    ],
  ],
  [
    "prefix with %2f",
    path("PathPrefix", "/a%2fb"),
    [
      `${P}spec.rules[0].matches[0].path.value: must not contain '%2f' when type one of ['Exact', 'PathPrefix']`,
    ],
  ],
  [
    "prefix with #",
    path("PathPrefix", "/a#b"),
    [
      `${P}spec.rules[0].matches[0].path.value: must not contain '#' when type one of ['Exact', 'PathPrefix']`,
    ],
  ],
  [
    "prefix ending /..",
    path("PathPrefix", "/a/.."),
    [
      `${P}spec.rules[0].matches[0].path.value: must not end with '/..' when type one of ['Exact', 'PathPrefix']`,
    ],
  ],
  [
    "prefix with a space",
    path("PathPrefix", "/a b"),
    [
      `${P}spec.rules[0].matches[0].path.value: must only contain valid path characters (RFC 3986 pchar or %XX) when type one of ['Exact', 'PathPrefix']`,
    ],
  ],
  [
    "regex that does not compile",
    path("RegularExpression", "(a"),
    [
      `${P}spec.rules[0].matches[0].path.value: must be a valid regular expression: Invalid regular expression: /(a/: Unterminated group`,
    ],
  ],
  [
    "unknown path type",
    path("Suffix", "/a"),
    [
      `${P}spec.rules[0].matches[0].path.type: type must be one of ['Exact', 'PathPrefix', 'RegularExpression']`,
    ],
  ],
  [
    "bad header match name and empty value",
    rule({ matches: [{ headers: [{ name: "x y", value: "" }] }] }),
    [
      `${P}spec.rules[0].matches[0].headers[0].name: must be a valid HTTP header name (RFC 7230 token characters, no spaces or ':')`,
      `${P}spec.rules[0].matches[0].headers[0].value: value must not be empty`,
    ],
  ],
  [
    "header regex that does not compile",
    rule({ matches: [{ headers: [{ type: "RegularExpression", name: "x", value: "[" }] }] }),
    [
      `${P}spec.rules[0].matches[0].headers[0].value: must be a valid regular expression: Invalid regular expression: /[/: Unterminated character class`,
    ],
  ],
  [
    "duplicate header names in one match",
    rule({
      matches: [
        {
          headers: [
            { name: "v", value: "1" },
            { name: "v", value: "2" },
          ],
        },
      ],
    }),
    [`${P}spec.rules[0].matches[0].headers[1].name: duplicate header name "v"`],
  ],
  [
    "duplicate query names in one match",
    rule({
      matches: [
        {
          queryParams: [
            { name: "q", value: "1" },
            { name: "q", value: "2" },
          ],
        },
      ],
    }),
    [`${P}spec.rules[0].matches[0].queryParams[1].name: duplicate query parameter name "q"`],
  ],
  [
    "17 header matches",
    rule({ matches: [{ headers: many(17, (i) => ({ name: `h${i}`, value: "v" })) }] }),
    [`${P}spec.rules[0].matches[0].headers: at most 16 header matches`],
  ],
  [
    "unknown method",
    rule({ matches: [{ method: "FETCH" }] }),
    [
      `${P}spec.rules[0].matches[0].method: method must be one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH`,
    ],
  ],
  [
    "unknown field",
    rule({ sessionPersistence: {} }),
    [`${P}spec.rules[0]: Unrecognized key: "sessionPersistence"`],
  ],
  [
    "CORS filter",
    filter({ type: "CORS", cors: {} }),
    [
      `${P}spec.rules[0].filters[0].type: type must be one of RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, RequestRedirect, URLRewrite, ExtensionRef ("CORS" is not supported by nodemesh)`,
      `${P}spec.rules[0].filters[0]: Unrecognized key: "cors"`,
    ],
  ],
  [
    "filter without its field",
    filter({ type: "URLRewrite" }),
    [
      `${P}spec.rules[0].filters[0].urlRewrite: filter.urlRewrite must be specified for URLRewrite filter.type`,
    ],
  ],
  [
    "filter with another type's field",
    filter({ type: "URLRewrite", urlRewrite: {}, requestHeaderModifier: {} }),
    [
      `${P}spec.rules[0].filters[0].requestHeaderModifier: filter.requestHeaderModifier must be nil if the filter.type is not RequestHeaderModifier`,
    ],
  ],
  [
    "repeated RequestHeaderModifier",
    rule({
      filters: [
        { type: "RequestHeaderModifier", requestHeaderModifier: {} },
        { type: "RequestHeaderModifier", requestHeaderModifier: {} },
      ],
    }),
    [`${P}spec.rules[0].filters: RequestHeaderModifier filter cannot be repeated`],
  ],
  [
    "redirect and rewrite together",
    rule({
      filters: [
        { type: "RequestRedirect", requestRedirect: {} },
        { type: "URLRewrite", urlRewrite: {} },
      ],
    }),
    [
      `${P}spec.rules[0].filters: May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both`,
    ],
  ],
  [
    "redirect with backendRefs",
    redirect({}, { backendRefs: [{ name: "a", port: 80 }] }),
    [`${P}spec.rules[0].filters: RequestRedirect filter must not be used together with backendRefs`],
  ],
  [
    "redirect status 305",
    redirect({ statusCode: 305 }),
    [`${P}spec.rules[0].filters[0].requestRedirect.statusCode: statusCode must be 301, 302, 303, 307 or 308`],
  ],
  [
    "redirect scheme ftp",
    redirect({ scheme: "ftp" }),
    [`${P}spec.rules[0].filters[0].requestRedirect.scheme: scheme must be http or https`],
  ],
  [
    "redirect wildcard hostname",
    redirect({ hostname: "*.example.org" }),
    [
      `${P}spec.rules[0].filters[0].requestRedirect.hostname: must be a lowercase DNS hostname without wildcard (e.g. example.org)`,
    ],
  ],
  [
    "ReplacePrefixMatch with an Exact match",
    redirect(
      { path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/x" } },
      { matches: [{ path: { type: "Exact", value: "/a" } }] },
    ),
    [
      `${P}spec.rules[0].matches: When using a RequestRedirect or URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified`,
    ],
  ],
  [
    "ReplacePrefixMatch in a backend filter with two matches",
    rule({
      matches: [{ path: { value: "/a" } }, { path: { value: "/b" } }],
      backendRefs: [
        {
          name: "a",
          port: 80,
          filters: [
            {
              type: "URLRewrite",
              urlRewrite: { path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/" } },
            },
          ],
        },
      ],
    }),
    [
      `${P}spec.rules[0].matches: Within backendRefs, when using a RequestRedirect or URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified (backendRefs[0])`,
    ],
  ],
  [
    "path modifier type without its value",
    filter({ type: "URLRewrite", urlRewrite: { path: { type: "ReplaceFullPath" } } }),
    [
      `${P}spec.rules[0].filters[0].urlRewrite.path.replaceFullPath: replaceFullPath must be specified when type is set to 'ReplaceFullPath'`,
    ],
  ],
  [
    "path modifier value of the other type",
    filter({
      type: "URLRewrite",
      urlRewrite: { path: { type: "ReplaceFullPath", replaceFullPath: "/a", replacePrefixMatch: "/b" } },
    }),
    [
      `${P}spec.rules[0].filters[0].urlRewrite.path.type: type must be 'ReplacePrefixMatch' when replacePrefixMatch is set`,
    ],
  ],
  [
    "relative replaceFullPath",
    filter({ type: "URLRewrite", urlRewrite: { path: { type: "ReplaceFullPath", replaceFullPath: "a" } } }),
    [
      `${P}spec.rules[0].filters[0].urlRewrite.path.replaceFullPath: must be an absolute path starting with '/'`,
    ],
  ],
  [
    "two actions on one header (case-insensitive)",
    rhm({ set: [{ name: "X-A", value: "1" }], remove: ["x-a"] }),
    [
      `${P}spec.rules[0].filters[0].requestHeaderModifier.remove[0]: header "x-a" already has an action (set); only one action per header name is permitted`,
    ],
  ],
  [
    "empty header value to set",
    rhm({ add: [{ name: "x", value: "" }] }),
    [`${P}spec.rules[0].filters[0].requestHeaderModifier.add[0].value: value must not be empty`],
  ],
  [
    "mirror with percent and fraction",
    filter({
      type: "RequestMirror",
      requestMirror: { backendRef: { name: "m", port: 80 }, percent: 5, fraction: { numerator: 1 } },
    }),
    [
      `${P}spec.rules[0].filters[0].requestMirror.fraction: Only one of percent or fraction may be specified in HTTPRequestMirrorFilter`,
    ],
  ],
  [
    "mirror fraction above one",
    filter({
      type: "RequestMirror",
      requestMirror: { backendRef: { name: "m", port: 80 }, fraction: { numerator: 3, denominator: 2 } },
    }),
    [
      `${P}spec.rules[0].filters[0].requestMirror.fraction.numerator: numerator must be less than or equal to denominator`,
    ],
  ],
  [
    "mirror percent 101",
    filter({ type: "RequestMirror", requestMirror: { backendRef: { name: "m", port: 80 }, percent: 101 } }),
    [`${P}spec.rules[0].filters[0].requestMirror.percent: percent must be between 0 and 100`],
  ],
  [
    "17 filters",
    rule({
      filters: many(17, () => ({
        type: "RequestMirror",
        requestMirror: { backendRef: { name: "m", port: 80 } },
      })),
    }),
    [`${P}spec.rules[0].filters: at most 16 filters`],
  ],
  [
    "Service backendRef without port",
    rule({ backendRefs: [{ name: "a" }] }),
    [`${P}spec.rules[0].backendRefs[0].port: port is required for a Service reference`],
  ],
  [
    "weight above 1000000",
    rule({ backendRefs: [{ name: "a", port: 80, weight: 1_000_001 }] }),
    [`${P}spec.rules[0].backendRefs[0].weight: weight must be between 0 and 1000000`],
  ],
  [
    "negative weight",
    rule({ backendRefs: [{ name: "a", port: 80, weight: -1 }] }),
    [`${P}spec.rules[0].backendRefs[0].weight: weight must be between 0 and 1000000`],
  ],
  [
    "17 backendRefs",
    rule({ backendRefs: many(17, (i) => ({ name: `b${i}`, port: 80 })) }),
    [`${P}spec.rules[0].backendRefs: at most 16 backendRefs`],
  ],
  [
    "bad backendRef name",
    rule({ backendRefs: [{ name: "Echo", port: 80 }] }),
    [
      `${P}spec.rules[0].backendRefs[0].name: must be a lowercase DNS name ([a-z0-9-.], starting and ending alphanumeric)`,
    ],
  ],
  [
    "fractional duration",
    rule({ timeouts: { request: "1.5s" } }),
    [
      `${P}spec.rules[0].timeouts.request: must be a Gateway API duration such as "500ms", "10s" or "1h30m" (GEP-2257: whole numbers, h/m/s/ms)`,
    ],
  ],
  [
    "backendRequest longer than request",
    rule({ timeouts: { request: "1s", backendRequest: "2s" } }),
    [
      `${P}spec.rules[0].timeouts.backendRequest: backendRequest timeout cannot be longer than request timeout`,
    ],
  ],
  [
    "retry code 302",
    rule({ retry: { codes: [302] } }),
    [`${P}spec.rules[0].retry.codes[0]: retry codes must be HTTP status codes between 400 and 599`],
  ],
  [
    "retry attempts 0",
    rule({ retry: { attempts: 0 } }),
    [`${P}spec.rules[0].retry.attempts: attempts must be at least 1`],
  ],
  [
    "bad creationTimestamp",
    { ...http({}), metadata: { name: "r", namespace: "mesh", creationTimestamp: "yesterday" } },
    [`${P}metadata.creationTimestamp: must be an RFC 3339 time such as "2024-05-01T12:00:00Z"`],
  ],
  [
    "GRPCRoute method match with neither field",
    grpc({ rules: [{ matches: [{ method: {} }] }] }),
    [`${PG}spec.rules[0].matches[0].method: One or both of 'service' or 'method' must be specified`],
  ],
  [
    "GRPCRoute exact service with a slash",
    grpc({ rules: [{ matches: [{ method: { service: "a/b" } }] }] }),
    [
      `${PG}spec.rules[0].matches[0].method.service: service must only contain valid characters (matching ^(?i)\\.?[a-z_][a-z_0-9]*(\\.[a-z_][a-z_0-9]*)*$)`,
    ],
  ],
  [
    "GRPCRoute exact method with a dot",
    grpc({ rules: [{ matches: [{ method: { service: "a.B", method: "do.it" } }] }] }),
    [
      `${PG}spec.rules[0].matches[0].method.method: method must only contain valid characters (matching ^[A-Za-z_][A-Za-z_0-9]*$)`,
    ],
  ],
  [
    "GRPCRoute regex method that does not compile",
    grpc({ rules: [{ matches: [{ method: { type: "RegularExpression", method: "(" } }] }] }),
    [
      `${PG}spec.rules[0].matches[0].method.method: must be a valid regular expression: Invalid regular expression: /(/: Unterminated group`,
    ],
  ],
  [
    "GRPCRoute redirect filter",
    grpc({ rules: [{ filters: [{ type: "RequestRedirect", requestRedirect: {} }] }] }),
    [
      `${PG}spec.rules[0].filters[0].type: type must be one of RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, ExtensionRef ("RequestRedirect" is not supported by nodemesh)`,
      `${PG}spec.rules[0].filters[0]: Unrecognized key: "requestRedirect"`,
    ],
  ],
  [
    "GRPCRoute timeouts",
    grpc({ rules: [{ timeouts: { request: "1s" } }] }),
    [`${PG}spec.rules[0]: Unrecognized key: "timeouts"`],
  ],
];

describe("each rejection names the field and the CRD rule", () => {
  test.each(cases)("%s", (_name, doc, want) => {
    expect(errors(doc)).toEqual(want);
  });
});

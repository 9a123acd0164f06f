// Fuzzing the agent's parsing of what clients and peers put in HTTP requests: headers (hop-by-hop
// stripping, internal headers), grpc-timeout, W3C traceparent/tracestate and B3, cookies and query
// parameters for hashing, path rewrites and redirects, local replies, rate-limit headers, and the
// HBONE CONNECT authority and `forwarded` header. Every function must answer for any input, never
// throw, and what it accepts must be well-formed.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { grpcStatusOf, localReply } from "../../agent/http/exchange.ts";
import { redirectLocation, replacePrefix } from "../../agent/http/filters.ts";
import { cookieValue, normalizeIp, queryParameter } from "../../agent/http/hash-policy.ts";
import { endToEnd, headerValue } from "../../agent/http/headers.ts";
import { rateLimitHeaders } from "../../agent/http/local-ratelimit.ts";
import { grpcTimeoutMs } from "../../agent/http/timeout.ts";
import {
  extractTrace,
  injectTrace,
  parseB3Single,
  parseTraceparent,
  parseTracestate,
} from "../../agent/telemetry/tracing/propagation.ts";
import { classifyHead } from "../../agent/proxy/detect.ts";
import { FUZZ_TIMEOUT_MS, fuzz } from "./params.ts";

const hex = (n: number) =>
  fc.string({ unit: fc.constantFrom(..."0123456789abcdefABCDEF-x"), minLength: n, maxLength: n });
const headerName = fc.oneof(
  fc.constantFrom(
    "connection",
    "keep-alive",
    "te",
    "upgrade",
    "transfer-encoding",
    "nodemesh-target",
    ":path",
    "x-a",
  ),
  fc.string({ unit: fc.constantFrom(..."abcdefxyz-:_"), minLength: 1, maxLength: 12 }),
);
const headerVal = fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 }));
const headers = fc.dictionary(headerName, headerVal, { maxKeys: 8 });

/** Any UTF-16, lone surrogates included: a reason may quote a header or a path. */
const reasonText = fc.string({
  unit: fc.oneof(
    fc.constantFrom("\uD800", "\uDFFF", "%", "\n"),
    fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
  ),
});

describe("fuzz: HTTP headers", () => {
  test(
    "endToEnd never forwards hop-by-hop, pseudo or internal headers, nor ones Connection lists",
    () => {
      fc.assert(
        fc.property(headers, (h) => {
          const out = endToEnd(h);
          const listed = new Set(
            headerValue(h, "connection")
              .split(",")
              .map((t) => t.trim().toLowerCase()),
          );
          for (const name of Object.keys(out)) {
            expect(name.startsWith(":")).toBe(false);
            expect(name.startsWith("nodemesh-")).toBe(false);
            expect(["connection", "keep-alive", "transfer-encoding", "upgrade"]).not.toContain(name);
            if (
              name !== "te" &&
              !["keep-alive", "close"].includes(headerValue(h, "connection").toLowerCase())
            ) {
              expect(listed.has(name)).toBe(false);
            }
          }
          if (out["te"] !== undefined) expect(out["te"]).toBe("trailers");
        }),
        fuzz(1000),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "grpc-timeout is 1-8 digits and a unit, or undefined; never 0 or NaN",
    () => {
      const value = fc.oneof(
        fc.string(),
        fc
          .tuple(
            fc.string({ unit: fc.constantFrom(..."0123456789"), maxLength: 10 }),
            fc.constantFrom(..."HMSmunhx "),
          )
          .map(([d, u]) => d + u),
      );
      fc.assert(
        fc.property(value, (v) => {
          const ms = grpcTimeoutMs(v);
          if (ms === undefined) return;
          expect(Number.isFinite(ms) && ms >= 1).toBe(true);
          expect(v.trim()).toMatch(/^\d{1,8}[HMSmun]$/);
        }),
        fuzz(1000),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "a local reply is well-formed for any reason text (gRPC carries it percent-encoded)",
    () => {
      fc.assert(
        fc.property(reasonText, fc.integer({ min: 100, max: 599 }), fc.boolean(), (reason, status, grpc) => {
          const r = localReply(status, "Flag", reason, grpc);
          if (grpc) {
            expect(r.status).toBe(200);
            expect(r.headers["grpc-status"]).toBe(String(grpcStatusOf(status)));
            expect(String(r.headers["grpc-message"])).toMatch(/^[\x20-\x7e]*$/);
          } else expect(r.status).toBe(status);
        }),
        fuzz(500),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "rate-limit headers are non-negative integers and a draft policy for any bucket state",
    () => {
      const bucket = fc.record({
        maxTokens: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        tokensPerFill: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        fillIntervalMs: fc.integer({ min: 1, max: 30 * 86_400_000 }),
      });
      fc.assert(
        fc.property(
          bucket,
          fc.double({ min: -1, max: 2 ** 31, noNaN: true }),
          fc.double({ min: 0, max: 1e10, noNaN: true }),
          (b, remaining, reset) => {
            const h = rateLimitHeaders(b, remaining, reset);
            for (const k of ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"])
              expect(String(h[k])).toMatch(/^\d+$/);
            expect(String(h["ratelimit-policy"])).toMatch(/^\d+;w=\d+(;burst=\d+)?$/);
          },
        ),
        fuzz(500),
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});

describe("fuzz: trace context", () => {
  test(
    "traceparent and B3 give a valid non-zero context or none; injecting it writes what parses back",
    () => {
      const traceparent = fc.oneof(
        fc.string(),
        fc
          .tuple(hex(2), hex(32), hex(16), hex(2), fc.string({ maxLength: 4 }))
          .map((p) => `${p[0]}-${p[1]}-${p[2]}-${p[3]}${p[4]}`),
      );
      const b3 = fc.oneof(
        fc.string(),
        fc
          .tuple(hex(32), hex(16), fc.constantFrom("", "-0", "-1", "-d", "-x"))
          .map((p) => `${p[0]}-${p[1]}${p[2]}`),
      );
      fc.assert(
        fc.property(traceparent, b3, fc.option(fc.string()), (tp, b, ts) => {
          const bag = { traceparent: tp, b3: b, ...(ts !== null && { tracestate: ts }) };
          const got = extractTrace(bag);
          const parent = got.parent;
          if (!parent) return;
          expect(parent.traceId).toMatch(/^[0-9a-f]{32}$/);
          expect(parent.spanId).toMatch(/^[0-9a-f]{16}$/);
          expect(parent.traceId).not.toBe("0".repeat(32));
          const out: Record<string, string | string[] | number | undefined> = {};
          injectTrace(
            out,
            { ...parent, sampled: parent.sampled ?? false, debug: parent.debug ?? false },
            { b3Single: true, b3Multi: true },
          );
          expect(parseTraceparent(String(out["traceparent"]))?.traceId).toBe(parent.traceId);
          expect(parseB3Single(String(out["b3"]))?.parent?.spanId).toBe(parent.spanId);
        }),
        fuzz(1000),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "tracestate keeps at most 32 members, each in the specification's grammar",
    () => {
      const member = fc.oneof(
        fc.string(),
        fc
          .tuple(
            fc.string({ unit: fc.constantFrom(..."abz09_-*/@"), maxLength: 20 }),
            fc.string({ maxLength: 20 }),
          )
          .map(([k, v]) => `${k}=${v}`),
      );
      fc.assert(
        fc.property(fc.array(member, { maxLength: 40 }), (members) => {
          const out = parseTracestate(members.join(","));
          if (out === undefined) return;
          const kept = out.split(",");
          expect(kept.length).toBeLessThanOrEqual(32);
          for (const m of kept) expect(m).toMatch(/^[a-z0-9][^=,]*=[\x20-\x7e]*[\x21-\x7e]$/);
          expect(parseTracestate(out)).toBe(out);
        }),
        fuzz(500),
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});

describe("fuzz: request parts the agent reads for routing and hashing", () => {
  test(
    "cookie, query parameter and client address parsing answer for any input",
    () => {
      fc.assert(
        fc.property(
          fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 })),
          fc.string({ maxLength: 8 }),
          fc.string(),
          (cookie, name, query) => {
            const c = cookieValue(cookie, name);
            if (c !== undefined) expect(headerValue({ cookie }, "cookie")).toContain(c);
            const q = queryParameter(query, name);
            if (q !== undefined) expect(typeof q).toBe("string");
            expect(normalizeIp(query)).toBe(normalizeIp(normalizeIp(query)));
          },
        ),
        fuzz(1000),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "ReplacePrefixMatch keeps the path's remainder and gives an absolute path",
    () => {
      const seg = fc.string({ unit: fc.constantFrom(..."ab/%?."), maxLength: 10 });
      fc.assert(
        fc.property(seg, seg, seg, (rest, prefix, replacement) => {
          const p = `/${prefix}`;
          const path = `${p}${rest}`;
          const out = replacePrefix(path, p, `/${replacement}`);
          if (out !== path) expect(out.startsWith("/")).toBe(true);
        }),
        fuzz(1000),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "a redirect's Location is an absolute URL with the request's path and query",
    () => {
      const redirect = fc.record({
        type: fc.constant("RequestRedirect" as const),
        scheme: fc.constantFrom("http" as const, "https" as const, undefined),
        hostname: fc.option(fc.domain(), { nil: undefined }),
        port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
        path: fc.constant(undefined),
        statusCode: fc.constantFrom(301 as const, 302 as const),
      });
      const req = fc.record({
        scheme: fc.constantFrom("http" as const, "https" as const),
        host: fc.domain(),
        port: fc.integer({ min: 1, max: 65535 }),
        path: fc.webPath().map((p) => (p.startsWith("/") ? p : `/${p}`)),
        query: fc.webQueryParameters(),
      });
      fc.assert(
        fc.property(redirect, req, (f, r) => {
          const { location } = redirectLocation(f, r, { type: "PathPrefix", value: "/" });
          const url = new URL(location);
          expect(url.protocol).toBe(`${f.scheme ?? r.scheme}:`);
          expect(location).toContain(r.path);
        }),
        fuzz(500),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "protocol detection classifies any first bytes without throwing, and more bytes never undo a verdict",
    () => {
      const head = fc.oneof(
        fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
        fc
          .tuple(
            fc.constantFrom("GET", "POST", "PRI", "M-SEARCH", "\x16"),
            fc.string({ maxLength: 20 }),
            fc.constantFrom(" HTTP/1.1\r\n", " HTTP/2.0\r\n", "\r\n", ""),
          )
          .map((p) => Buffer.from(`${p[0]} /${p[1]}${p[2]}`, "latin1")),
      );
      fc.assert(
        fc.property(head, fc.uint8Array({ maxLength: 16 }), (h, more) => {
          const first = classifyHead(h);
          if (first === undefined || first === "http2") return;
          expect(classifyHead(Buffer.concat([h, more]))).toBe(first);
        }),
        fuzz(1000),
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});

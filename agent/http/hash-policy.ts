// The request-aware half of consistent hashing: which part of a request a TrafficPolicy's
// `loadBalancer.consistentHash` hashes (Istio's ConsistentHashLB, Envoy's hash policies), turned into
// the 32-bit hash that RING_HASH / MAGLEV take as `PickContext.hash`. Pure: no I/O, no clock.
//
// `hash: undefined` means "nothing to hash" (the header, cookie or parameter is absent): the balancer
// then picks at random, as Envoy does when a hash policy yields no hash.
import type { ConsistentHashLB } from "../../controller/api/index.ts";
import { durationMs } from "../../controller/api/index.ts";
import { hash32 } from "../balance/hash.ts";

export interface HashRequest {
  /** Lower-case header names, as node:http and node:http2 deliver them. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The query string, with or without its leading "?". */
  readonly query: string;
  /** The client's IP address (no port). */
  readonly sourceAddress: string;
  /** The client's port: with it a generated cookie differs per client connection, as in Envoy. */
  readonly sourcePort?: number;
}

export interface HashResult {
  readonly hash: number | undefined;
  /** A Set-Cookie header value for the response, when a missing affinity cookie was generated. */
  readonly setCookie?: string;
}

const NO_HASH: HashResult = Object.freeze({ hash: undefined });
/** Seeds of the two halves of a generated 64-bit cookie value. */
const COOKIE_SEED_HIGH = 0x5bd1e995;
const COOKIE_SEED_LOW = 0x1b873593;

/** The request hash a consistent-hash policy asks for. */
export function hashKey(policy: ConsistentHashLB, req: HashRequest): HashResult {
  if (policy.httpHeaderName !== undefined)
    return headerHash(req.headers[policy.httpHeaderName.toLowerCase()]);
  if (policy.httpCookie !== undefined) return cookieHash(policy.httpCookie, req);
  if (policy.httpQueryParameterName !== undefined) {
    const value = queryParameter(req.query, policy.httpQueryParameterName);
    return value === undefined ? NO_HASH : { hash: hash32(value) };
  }
  if (policy.useSourceIp === true) {
    const ip = normalizeIp(req.sourceAddress);
    return ip === "" ? NO_HASH : { hash: hash32(ip) };
  }
  return NO_HASH;
}

/** Several values of one header are hashed in sorted order, so their order does not matter (as Envoy). */
function headerHash(value: string | string[] | undefined): HashResult {
  if (value === undefined) return NO_HASH;
  if (typeof value === "string") return { hash: hash32(value) };
  if (value.length === 0) return NO_HASH;
  let hash = 0;
  for (const v of [...value].sort()) hash = hash32(v, hash);
  return { hash };
}

function cookieHash(cookie: NonNullable<ConsistentHashLB["httpCookie"]>, req: HashRequest): HashResult {
  const value = cookieValue(req.headers["cookie"], cookie.name);
  if (value !== undefined) return { hash: hash32(value) };
  // Envoy generates a cookie only when a ttl is configured; without one the request has no hash.
  if (cookie.ttl === undefined) return NO_HASH;
  const generated = cookieFor(req);
  return { hash: hash32(generated), setCookie: setCookie(cookie.name, generated, cookie.path, cookie.ttl) };
}

/**
 * A generated value is derived from the client's address (and port), as Envoy derives it from the
 * downstream connection: requests racing on one connection get the same cookie, hence one endpoint.
 */
function cookieFor(req: HashRequest): string {
  const seed = req.sourcePort === undefined ? req.sourceAddress : `${req.sourceAddress}:${req.sourcePort}`;
  const hex = (n: number) => n.toString(16).padStart(8, "0");
  return hex(hash32(seed, COOKIE_SEED_HIGH)) + hex(hash32(seed, COOKIE_SEED_LOW));
}

/** `ttl: 0s` makes a session cookie (no Max-Age); a positive ttl below a second rounds up to 1 s. */
function setCookie(name: string, value: string, path: string | undefined, ttl: string): string {
  const ms = durationMs(ttl);
  let header = `${name}=${value}`;
  if (ms > 0) header += `; Max-Age=${Math.ceil(ms / 1000)}`;
  if (path !== undefined) header += `; Path=${path}`;
  return `${header}; HttpOnly`;
}

/** RFC 6265 §5.4 cookie-string parsing; the first cookie of that name wins; DQUOTEs are stripped. */
export function cookieValue(header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  // HTTP/2 may split the cookie header into one field per cookie (RFC 9113 §8.2.3).
  for (const line of typeof header === "string" ? [header] : header) {
    for (const pair of line.split(";")) {
      const eq = pair.indexOf("=");
      if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
      const value = pair.slice(eq + 1).trim();
      return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
    }
  }
  return undefined;
}

/** The first value of a query parameter, percent- and "+"-decoded (WHATWG URLSearchParams rules). */
export function queryParameter(query: string, name: string): string | undefined {
  return new URLSearchParams(query.startsWith("?") ? query.slice(1) : query).get(name) ?? undefined;
}

/** "::ffff:10.0.0.1" and "10.0.0.1" are the same client; IPv6 letters are case-insensitive. */
export function normalizeIp(address: string): string {
  const a = address.trim().toLowerCase();
  return a.startsWith("::ffff:") && a.includes(".") ? a.slice(7) : a;
}

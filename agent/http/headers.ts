// Header hygiene between hops (RFC 9110 §7.6.1): connection-specific fields never travel past a proxy,
// HTTP/2 forbids them outright, and the agents' own headers never reach an application.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { randomUUID } from "node:crypto";

/** Always hop-by-hop, plus whatever `Connection` lists. `te: trailers` survives (gRPC needs it). */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "proxy-authenticate",
  "proxy-authorization",
  "http2-settings",
  "host",
]);

/** Between the agents only: the target workload and how to speak to the application. */
export const TARGET_HEADER = "nodemesh-target";
export const APP_PROTOCOL_HEADER = "nodemesh-app-protocol";
/**
 * From a Gateway only: the original client behind the proxies it trusts (`remoteIpBlocks`). Believed by
 * the destination only from a Gateway's identity; a client's own nodemesh-* fields never get this far.
 */
export const REMOTE_IP_HEADER = "nodemesh-remote-ip";
const INTERNAL_PREFIX = "nodemesh-";

/** Copies end-to-end headers: drops hop-by-hop ones, pseudo-headers and the agents' own. */
export function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const listed = connectionTokens(headers["connection"]);
  for (const name in headers) {
    if (name.charCodeAt(0) === 58 /* ':' */) continue;
    if (HOP_BY_HOP.has(name) || name.startsWith(INTERNAL_PREFIX) || listed?.has(name)) continue;
    const v = headers[name];
    if (v !== undefined) out[name] = v;
  }
  const te = headers["te"];
  if (typeof te === "string" && /(^|,)\s*trailers\s*(,|$)/i.test(te)) out["te"] = "trailers";
  return out;
}

function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const s = Array.isArray(value) ? value.join(",") : value;
  if (s === "" || s.toLowerCase() === "keep-alive" || s.toLowerCase() === "close") return undefined;
  return new Set(s.split(",").map((t) => t.trim().toLowerCase()));
}

/** The request id every hop logs: kept when the client sent one, generated otherwise (Envoy does so). */
export function ensureRequestId(headers: OutgoingHttpHeaders): string {
  const have = headers["x-request-id"];
  if (typeof have === "string" && have !== "") return have;
  const id = randomUUID();
  headers["x-request-id"] = id;
  return id;
}

export function headerValue(headers: IncomingHttpHeaders | OutgoingHttpHeaders, name: string): string {
  const v = headers[name];
  if (v === undefined) return "";
  return Array.isArray(v) ? v.join(", ") : String(v);
}

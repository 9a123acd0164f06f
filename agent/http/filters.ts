// Gateway API filters as functions of data (agent/state/routes.ts compiled them): header modifiers,
// RequestRedirect → status + Location, URLRewrite → path + authority, which RequestMirrors fire for
// a request, and the weighted backend pick. Everything but applyRequestFilters() is pure and
// table-tested; applyRequestFilters() is the thin adapter the route layer calls on an Exchange.
import type { OutgoingHttpHeaders } from "node:http";
import type {
  HeaderModifier,
  HttpFilter,
  PathModifier,
  RedirectStatus,
  RouteMatchResult,
} from "../state/routes.ts";
import type { Exchange, ResponseHead } from "./exchange.ts";

type Headers = Record<string, string | string[] | number | undefined>;
type Mirror = Extract<HttpFilter, { type: "RequestMirror" }>;
type Redirect = Extract<HttpFilter, { type: "RequestRedirect" }>;
type Rewrite = Extract<HttpFilter, { type: "URLRewrite" }>;

/** Every key of `headers` equal to `lc` ignoring case (usually just `lc` itself). */
function keysOf(headers: Headers, lc: string): string[] {
  const out: string[] = [];
  for (const k of Object.keys(headers)) if (k === lc || k.toLowerCase() === lc) out.push(k);
  return out;
}

/**
 * Applies set, add and remove to `headers` in place (names compared case-insensitively; the result
 * uses lowercase names) and returns it. `add` appends to an existing value with "," as the spec's
 * example shows; set-cookie, which cannot be comma-joined, gets another line instead.
 */
export function modifyHeaders<H extends Headers>(headers: H, mod: HeaderModifier): H {
  const h = headers as Headers;
  for (const { name, value } of mod.set) {
    for (const k of keysOf(h, name)) delete h[k];
    h[name] = value;
  }
  for (const { name, value } of mod.add) {
    const keys = keysOf(h, name);
    const existing = keys.flatMap((k) => {
      const v = h[k];
      return v === undefined ? [] : Array.isArray(v) ? v : [String(v)];
    });
    for (const k of keys) delete h[k];
    if (existing.length === 0) h[name] = value;
    else if (name === "set-cookie") h[name] = [...existing, value];
    else h[name] = `${existing.join(",")},${value}`;
  }
  for (const name of mod.remove) for (const k of keysOf(h, name)) delete h[k];
  return headers;
}

/**
 * The spec's ReplacePrefixMatch: `prefix` (the matched PathPrefix value) is replaced by
 * `replacement` segment-wise; trailing slashes of both are ignored, and an empty result is "/".
 * "/foo/bar" with "/foo" → "/xyz": "/xyz/bar"; → "/" or "": "/bar"; "/foo/" → "/xyz/".
 */
export function replacePrefix(path: string, prefix: string, replacement: string): string {
  const p = prefix.replace(/\/+$/, "");
  if (p !== "" && path !== p && !path.startsWith(`${p}/`)) return path;
  const rest = path.slice(p.length);
  const out = replacement.replace(/\/+$/, "") + rest;
  return out === "" ? "/" : out;
}

/** The request path after a path modifier; a prefix modifier needs the PathPrefix that matched. */
export function modifyPath(
  path: string,
  mod: PathModifier,
  pathMatch: RouteMatchResult["pathMatch"],
): string {
  if (mod.type === "ReplaceFullPath") return mod.value;
  // The schema allows ReplacePrefixMatch only with a single PathPrefix match; fail safe otherwise.
  if (pathMatch.type !== "PathPrefix") return path;
  return replacePrefix(path, pathMatch.value, mod.value);
}

export interface RedirectInput {
  readonly scheme: "http" | "https";
  /** Host without port (from the Host header / :authority). */
  readonly host: string;
  /** The port the client addressed (the service port: our "listener port"). */
  readonly port: number;
  readonly path: string;
  /** Raw query without "?", "" when none; kept on the Location as Envoy does. */
  readonly query: string;
}

const DEFAULT_PORT: Readonly<Record<string, number>> = { http: 80, https: 443 };

/** RequestRedirect → the status and Location header (the spec's port rules; 80/443 omitted). */
export function redirectLocation(
  f: Redirect,
  req: RedirectInput,
  pathMatch: RouteMatchResult["pathMatch"],
): { status: RedirectStatus; location: string } {
  const scheme = f.scheme ?? req.scheme;
  const host = f.hostname ?? req.host;
  const port = f.port ?? (f.scheme !== undefined ? (DEFAULT_PORT[f.scheme] ?? req.port) : req.port);
  const path = f.path ? modifyPath(req.path, f.path, pathMatch) : req.path;
  const authority = port === DEFAULT_PORT[scheme] ? host : `${host}:${port}`;
  const query = req.query === "" ? "" : `?${req.query}`;
  return { status: f.statusCode, location: `${scheme}://${authority}${path}${query}` };
}

/** URLRewrite → the new path (query untouched) and authority (hostname replaces the whole Host). */
export function rewriteUrl(
  f: Rewrite,
  req: { readonly path: string; readonly authority: string },
  pathMatch: RouteMatchResult["pathMatch"],
): { path: string; authority: string } {
  return {
    path: f.path ? modifyPath(req.path, f.path, pathMatch) : req.path,
    authority: f.hostname ?? req.authority,
  };
}

/** The mirrors that fire for one request (each drawn independently against its fraction). */
export function mirrorsFor(filters: readonly HttpFilter[], random: () => number = Math.random): Mirror[] {
  const out: Mirror[] = [];
  for (const f of filters) {
    if (f.type !== "RequestMirror" || f.numerator <= 0) continue;
    if (f.numerator >= f.denominator || random() * f.denominator < f.numerator) out.push(f);
  }
  return out;
}

/** Weighted random pick; weight 0 is never picked; no positive weight → undefined (the spec's 500). */
export function pickWeighted<B extends { readonly weight: number }>(
  backends: readonly B[],
  random: () => number = Math.random,
): B | undefined {
  let total = 0;
  for (const b of backends) total += b.weight > 0 ? b.weight : 0;
  if (total === 0) return undefined;
  let x = random() * total;
  let last: B | undefined;
  for (const b of backends) {
    if (b.weight <= 0) continue;
    last = b;
    if (x < b.weight) return b;
    x -= b.weight;
  }
  return last; // random() * total rounded up to total: the last positive backend
}

function splitPath(pathAndQuery: string): [string, string] {
  const q = pathAndQuery.indexOf("?");
  return q < 0 ? [pathAndQuery, ""] : [pathAndQuery.slice(0, q), pathAndQuery.slice(q + 1)];
}

/**
 * Applies `filters` (the rule's, or a backend's) to the exchange in order: request headers and URL
 * rewritten in place, response header modifiers queued on ex.responseFilters. A RequestRedirect
 * answers instead: the returned response carries the Location and the rule's response modifiers.
 * Mirrors are left to the caller (mirrorsFor), which owns the upstream.
 */
export function applyRequestFilters(
  ex: Exchange,
  match: RouteMatchResult,
  filters: readonly HttpFilter[] = match.rule.filters,
): ResponseHead | undefined {
  let redirect: Redirect | undefined;
  const responseMods: HeaderModifier[] = [];
  for (const f of filters) {
    if (f.type === "RequestHeaderModifier") modifyHeaders(ex.request.headers as Headers, f.headers);
    else if (f.type === "ResponseHeaderModifier") responseMods.push(f.headers);
    else if (f.type === "RequestRedirect") redirect ??= f;
    else if (f.type === "URLRewrite") {
      const [path, query] = splitPath(ex.request.path);
      const next = rewriteUrl(f, { path, authority: ex.request.authority }, match.pathMatch);
      ex.request.path = query === "" ? next.path : `${next.path}?${query}`;
      ex.request.authority = next.authority;
    }
  }
  if (redirect) {
    const [path, query] = splitPath(ex.request.path);
    const host = ex.request.authority.replace(/:\d+$/, "") || ex.servicePort.service.host;
    const { status, location } = redirectLocation(
      redirect,
      { scheme: "http", host, port: ex.servicePort.port, path, query },
      match.pathMatch,
    );
    const headers: OutgoingHttpHeaders = { location, "content-length": 0 };
    for (const m of responseMods) modifyHeaders(headers as Headers, m);
    return { status, headers, reason: `redirected by route ${match.rule.route}` };
  }
  if (responseMods.length > 0)
    (ex.responseFilters ??= []).push((h) => {
      for (const m of responseMods) modifyHeaders(h as Headers, m);
    });
  return undefined;
}

// HTTP attribute matching for L7 AuthorizationPolicy: paths, hosts and request headers, with Istio's
// semantics (pilot/pkg/security/authz/matcher). Pure functions; patterns are compiled once per policy
// (authz-compile.ts), the request side is normalised once per evaluation.
import { stringMatches } from "../../controller/api/selectors.ts";

/** A compiled `paths`/`notPaths` entry: true when the (normalised) request path matches. */
export type PathMatcher = (path: string) => boolean;

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/**
 * The path policy sees: query and fragment dropped (Envoy matches `paths` without the query),
 * percent-encoded unreserved characters decoded and other escapes upper-cased, and dot segments
 * removed (RFC 3986 §6.2.2, §5.2.4; Istio's default BASE normalisation). Without it `/./admin`,
 * `/public/../admin` or `/%61dmin` would slip past `DENY paths: ["/admin*"]`. `%2F` and `%5C` stay
 * encoded, as in BASE: a backend that decodes them must not be protected by path rules alone. The
 * data path should forward this same path so that what was checked is what the application serves.
 */
export function normalizePath(raw: string): string {
  let end = raw.length;
  const q = raw.indexOf("?");
  const h = raw.indexOf("#");
  if (q >= 0) end = q;
  if (h >= 0 && h < end) end = h;
  let path = raw.slice(0, end);
  if (!path.startsWith("/")) return path; // "*" (OPTIONS) or absolute-form: nothing to resolve
  if (path.includes("%")) path = path.replace(/%[0-9A-Fa-f]{2}/g, decodeUnreserved);
  return path.includes("/.") ? removeDotSegments(path) : path;
}

function decodeUnreserved(escape: string): string {
  const c = String.fromCharCode(parseInt(escape.slice(1), 16));
  return UNRESERVED.test(c) ? c : escape.toUpperCase();
}

/** RFC 3986 §5.2.4 on an absolute path; keeps a trailing slash where a segment was removed. */
function removeDotSegments(path: string): string {
  const out: string[] = [];
  const segments = path.split("/");
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i] ?? "";
    const last = i === segments.length - 1;
    if (s === ".") {
      if (last) out.push("");
    } else if (s === "..") {
      out.pop();
      if (last) out.push("");
    } else {
      out.push(s);
    }
  }
  return "/" + out.join("/");
}

const ONE = "{*}";
const MANY = "{**}";

/**
 * Compiles one `paths` entry. With `{*}` (exactly one non-empty segment) or `{**}` (one or more
 * segments) it is an Istio path template, matched segment by segment; otherwise an Istio string
 * match: exact, `/api/*` (prefix), `*.txt` (suffix) or `*` (any path).
 */
export function compilePath(raw: string): PathMatcher {
  // Escapes in the pattern get the request's treatment, so `/%61dmin` means `/admin` on both sides.
  const pattern = raw.includes("%") ? raw.replace(/%[0-9A-Fa-f]{2}/g, decodeUnreserved) : raw;
  if (!pattern.includes(ONE) && !pattern.includes(MANY)) return (path) => stringMatches(pattern, path);
  const template = pattern.split("/");
  return (path) => templateMatches(template, 0, path.split("/"), 0);
}

function templateMatches(t: readonly string[], ti: number, p: readonly string[], pi: number): boolean {
  if (ti === t.length) return pi === p.length;
  const seg = t[ti] ?? "";
  if (seg === MANY) {
    // Backtracking is bounded by segment counts (a policy has few `{**}`, a path few segments).
    for (let end = pi + 1; end <= p.length; end++) {
      if (p.slice(pi, end).join("/") !== "" && templateMatches(t, ti + 1, p, end)) return true;
    }
    return false;
  }
  if (pi === p.length) return false;
  const value = p[pi] ?? "";
  if (seg === ONE ? value === "" : seg !== value) return false;
  return templateMatches(t, ti + 1, p, pi + 1);
}

/** "host" of "host:port", "[v6]" of "[v6]:port"; a bare IPv6 literal or a portless host unchanged. */
export function stripPort(authority: string): string {
  if (authority.startsWith("[")) {
    const close = authority.indexOf("]");
    return close < 0 ? authority : authority.slice(0, close + 1);
  }
  const colon = authority.indexOf(":");
  return colon < 0 || authority.indexOf(":", colon + 1) >= 0 ? authority : authority.slice(0, colon);
}

/**
 * `hosts` entry (already lower-cased) against the request authority (lower-cased), case-insensitive
 * as Istio's HostMatcher. A pattern without a port also matches the authority with its port removed:
 * Istio matches the raw :authority and its docs tell users to list both `h` and `h:*`; a forgotten
 * `h:*` lets `Host: h:80` past a DENY, so here the port never decides unless the pattern names one.
 */
export function hostMatches(pattern: string, host: string, patternHasPort: boolean): boolean {
  if (stringMatches(pattern, host)) return true;
  return !patternHasPort && stringMatches(pattern, stripPort(host));
}

/**
 * One request header by name (lower-case), repeated values joined with "," as Envoy's header matcher
 * sees them; undefined when absent. Node delivers lower-case names; any other casing is found too.
 */
export function headerValue(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  name: string,
): string | undefined {
  let v = headers[name];
  if (v === undefined) {
    for (const k in headers) {
      if (k.toLowerCase() === name) {
        v = headers[k];
        break;
      }
    }
  }
  return Array.isArray(v) ? v.join(",") : v;
}

/** Istio's HeaderMatcher: `*` is presence (an empty value counts), anything else a string match. */
export function headerMatches(pattern: string, value: string | undefined): boolean {
  if (pattern === "*") return value !== undefined;
  return stringMatches(pattern, value);
}

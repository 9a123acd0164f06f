// AuthorizationPolicy evaluation, L4 and L7, with Istio semantics, as one pure function driven by
// table tests. The caller passes the policies that apply to the destination workload (selection is
// the state view's job) and what it knows: the connection always, the HTTP request when it has one.
//
// Order: DENY policies first (any matching rule denies), then ALLOW (no ALLOW policy = allow;
// otherwise one rule must match). The decision names the policy and rule that decided it.
//
// Without `http` (an opaque TCP connection) rules that need HTTP attributes are handled as ztunnel
// and istiod's ambient translation do: an ALLOW rule that needs them never matches; a DENY rule that
// needs them matches when its L4 parts match (we cannot see the request, so we fail closed).
// With `deferHttp` (an L7 port, checked once at connection time) such rules are instead skipped and
// the decision says `deferred`: the data path must evaluate every request with `http`.
import { peerIdentityOf, type PeerIdentity } from "../../controller/api/identity.ts";
import type { AuthorizationPolicy } from "../../controller/api/resources.ts";
import { compilePolicy, type CompiledPolicy, type CompiledRule } from "./authz-compile.ts";
import { ruleMatches, type Facts } from "./authz-match.ts";
import { normalizePath } from "./http-match.ts";

export { inBlock } from "./ip-block.ts";
export { normalizePath } from "./http-match.ts";

/** The HTTP request, as the data path sees it after parsing (HTTP/1.1 and HTTP/2 alike). */
export interface AuthzHttp {
  readonly method: string;
  /** Request target as received (origin-form); query and fragment are ignored, the path normalised. */
  readonly path: string;
  /** :authority or Host, with or without a port. */
  readonly host: string;
  /** Lower-case names, as Node delivers them; repeated headers as arrays. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** What is known about one inbound connection, and for L7 the request on it. */
export interface AuthzRequest {
  /** Peer SPIFFE ID, "spiffe://td/ns/<ns>/sa/<sa>"; undefined for plaintext (never on 15008). */
  readonly principal: string | undefined;
  readonly sourceIp: string;
  /**
   * The original client, for `remoteIpBlocks` / `remote.ip`; default sourceIp. Differs only behind a
   * Gateway with trusted proxies (its `nodemesh.io/num-trusted-proxies`: the X-Forwarded-For entry they wrote).
   */
  readonly remoteIp?: string;
  readonly destinationPort: number;
  /** The workload address the connection is for; `destination.ip` conditions need it. */
  readonly destinationIp?: string;
  readonly http?: AuthzHttp;
}

export interface AuthzOptions {
  /** Connection-level check of an L7 port: skip HTTP-only rules, report them as `deferred`. */
  readonly deferHttp?: boolean;
}

export interface AuthzDecision {
  readonly allowed: boolean;
  /** "namespace/name" of the deciding policy (the matching DENY, or the matching ALLOW). */
  readonly policy?: string;
  /** Index in that policy's `spec.rules` of the rule that decided. */
  readonly rule?: number;
  readonly reason: string;
  /**
   * Only with `deferHttp`: rules that need the request could still change the outcome, so the data
   * path must evaluate each request. `allowed` is then provisional (the connection may proceed).
   */
  readonly deferred: boolean;
}

/** Istio principal form and namespace of a peer SPIFFE ID. Kept for callers in agent/proxy. */
export function parsePrincipal(spiffeId: string | undefined): PeerIdentity {
  return peerIdentityOf(spiffeId);
}

const NO_POLICY: AuthzDecision = Object.freeze({
  allowed: true,
  reason: "no ALLOW policy applies",
  deferred: false,
});

type Outcome = "match" | "miss" | "defer";

export function evaluateAuthz(
  policies: readonly AuthorizationPolicy[],
  req: AuthzRequest,
  opts: AuthzOptions = {},
): AuthzDecision {
  if (policies.length === 0) return NO_POLICY;
  const facts = factsOf(req);
  const defer = opts.deferHttp === true && facts.http === undefined;
  const compiled = policies.map(compilePolicy);
  let deferred = false;
  for (const p of compiled) {
    if (p.action !== "DENY") continue;
    for (const r of p.rules) {
      const o = outcome(p.action, r, facts, defer);
      if (o === "match")
        return decide(false, p, r.index, `denied by DENY policy ${p.name} (rule ${r.index})`);
      if (o === "defer") deferred = true;
    }
  }
  let anyAllow = false;
  let allowDeferred = false;
  for (const p of compiled) {
    if (p.action !== "ALLOW") continue;
    anyAllow = true;
    for (const r of p.rules) {
      const o = outcome(p.action, r, facts, defer);
      if (o === "match")
        return decide(true, p, r.index, `allowed by ALLOW policy ${p.name} (rule ${r.index})`, deferred);
      if (o === "defer") allowDeferred = true;
    }
  }
  if (!anyAllow) return deferred ? { ...NO_POLICY, deferred } : NO_POLICY;
  if (allowDeferred) {
    return {
      allowed: true,
      reason: "ALLOW rules that need the HTTP request decide per request",
      deferred: true,
    };
  }
  return { allowed: false, reason: "no ALLOW policy matched", deferred: false };
}

function outcome(action: CompiledPolicy["action"], rule: CompiledRule, f: Facts, defer: boolean): Outcome {
  const deny = action === "DENY";
  if (rule.needsHttp && f.http === undefined) {
    // L4 parts only: HTTP fields count as met, then the rule is deferred, fails closed, or never allows.
    if (!defer && !deny) return "miss";
    if (!ruleMatches(rule, f, true)) return "miss";
    return defer ? "defer" : "match";
  }
  return ruleMatches(rule, f, deny) ? "match" : "miss";
}

function decide(
  allowed: boolean,
  p: CompiledPolicy,
  rule: number,
  reason: string,
  deferred = false,
): AuthzDecision {
  return { allowed, policy: p.name, rule, reason, deferred };
}

// Every request of a connection carries the same peer; parsing its SPIFFE ID once per peer keeps the
// per-request path to map lookups. Bounded: cleared when it reaches the cap (peers are few per node).
const PEER_CACHE_MAX = 4096;
const peers = new Map<string, PeerIdentity>();

function peerOf(spiffeId: string | undefined): PeerIdentity {
  if (spiffeId === undefined) return peerIdentityOf(undefined);
  let p = peers.get(spiffeId);
  if (!p) {
    if (peers.size >= PEER_CACHE_MAX) peers.clear();
    p = peerIdentityOf(spiffeId);
    peers.set(spiffeId, p);
  }
  return p;
}

function factsOf(req: AuthzRequest): Facts {
  const h = req.http;
  return {
    peer: peerOf(req.principal),
    sourceIp: req.sourceIp,
    remoteIp: req.remoteIp ?? req.sourceIp,
    destinationPort: req.destinationPort,
    destinationIp: req.destinationIp,
    http: h && {
      method: h.method,
      path: normalizePath(h.path),
      host: h.host.toLowerCase(),
      headers: h.headers,
    },
  };
}

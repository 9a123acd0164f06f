// L4 authorization, Istio semantics, as pure functions driven by table tests. The caller passes the
// AuthorizationPolicies that apply to the destination workload (selection is the state view's job).
//
// Order: DENY policies first (any match denies), then ALLOW (no ALLOW policy = allow; otherwise one
// must match). Within a rule: one `from` source AND one `to` operation AND every `when` condition; fields
// inside one source or operation are ANDed. Strings match exactly, by prefix `abc*`, suffix `*abc` or `*`.
// HTTP-only attributes (hosts, methods, paths, unknown `when` keys) cannot be checked on an L4
// connection: in an ALLOW rule they make the rule not match, in a DENY rule they are treated as matching
// (Istio's "always scope DENY policies to ports" caveat) — so L4 errs on the side of denying.
import type { AuthorizationPolicy, Operation, Rule, Source } from "../../controller/api/resources.ts";

/** What is known about one inbound connection. */
export interface AuthzRequest {
  /** Peer SPIFFE ID, "spiffe://td/ns/<ns>/sa/<sa>"; undefined for plaintext (never on 15008). */
  readonly principal: string | undefined;
  readonly sourceIp: string;
  readonly destinationPort: number;
}

export interface AuthzDecision {
  readonly allowed: boolean;
  /** "namespace/name" of the deciding policy (the matching DENY, or the matching ALLOW). */
  readonly policy?: string;
  readonly reason: string;
}

const ALLOW_ALL: AuthzDecision = Object.freeze({ allowed: true, reason: "no ALLOW policy applies" });

export function evaluateAuthz(policies: readonly AuthorizationPolicy[], req: AuthzRequest): AuthzDecision {
  const who = parsePrincipal(req.principal);
  let anyAllow = false;
  for (const p of policies) {
    if (p.spec.action !== "DENY") continue;
    if (p.spec.rules.some((r) => ruleMatches(r, req, who, "DENY"))) {
      const name = `${p.metadata.namespace}/${p.metadata.name}`;
      return { allowed: false, policy: name, reason: `denied by DENY policy ${name}` };
    }
  }
  for (const p of policies) {
    if (p.spec.action !== "ALLOW") continue;
    anyAllow = true;
    if (p.spec.rules.some((r) => ruleMatches(r, req, who, "ALLOW"))) {
      const name = `${p.metadata.namespace}/${p.metadata.name}`;
      return { allowed: true, policy: name, reason: `allowed by ALLOW policy ${name}` };
    }
  }
  if (!anyAllow) return ALLOW_ALL;
  return { allowed: false, reason: "no ALLOW policy matched" };
}

interface Peer {
  /** "td/ns/x/sa/y" (Istio principal form), "" when unknown. */
  readonly principal: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

export function parsePrincipal(spiffeId: string | undefined): Peer {
  if (!spiffeId) return { principal: "", namespace: "", serviceAccount: "" };
  const principal = stripScheme(spiffeId);
  const m = /^[^/]+\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(principal);
  return { principal, namespace: m?.[1] ?? "", serviceAccount: m?.[2] ?? "" };
}

function stripScheme(s: string): string {
  return s.startsWith("spiffe://") ? s.slice("spiffe://".length) : s;
}

type Action = "ALLOW" | "DENY";

function ruleMatches(rule: Rule, req: AuthzRequest, who: Peer, action: Action): boolean {
  if (rule.from && rule.from.length > 0 && !rule.from.some((f) => sourceMatches(f.source, req, who))) {
    return false;
  }
  if (rule.to && rule.to.length > 0 && !rule.to.some((t) => operationMatches(t.operation, req, action))) {
    return false;
  }
  for (const c of rule.when ?? []) {
    const value = conditionValue(c.key, req, who);
    if (value === undefined) {
      if (action === "ALLOW") return false;
      continue; // unknown at L4: a DENY condition counts as met
    }
    if (c.values && !anyMatch(c.values, value)) return false;
    if (c.notValues && anyMatch(c.notValues, value)) return false;
  }
  return true;
}

function sourceMatches(s: Source, req: AuthzRequest, who: Peer): boolean {
  const principals = s.principals?.map(stripScheme);
  const notPrincipals = s.notPrincipals?.map(stripScheme);
  const sa = who.namespace ? `${who.namespace}/${who.serviceAccount}` : "";
  return (
    field(principals, notPrincipals, who.principal) &&
    field(s.namespaces, s.notNamespaces, who.namespace) &&
    field(s.serviceAccounts, s.notServiceAccounts, sa) &&
    (!s.ipBlocks || s.ipBlocks.some((b) => inBlock(req.sourceIp, b))) &&
    !(s.notIpBlocks && s.notIpBlocks.some((b) => inBlock(req.sourceIp, b)))
  );
}

function operationMatches(o: Operation, req: AuthzRequest, action: Action): boolean {
  const l7 = o.hosts || o.notHosts || o.methods || o.notMethods || o.paths || o.notPaths;
  if (l7 && action === "ALLOW") return false;
  if (o.ports && !o.ports.includes(req.destinationPort)) return false;
  if (o.notPorts && o.notPorts.includes(req.destinationPort)) return false;
  return true;
}

/** Positive list (if present) must match; negative list (if present) must not. An unknown value ("") only
 * matches "*"-free negatives by failing positives, as Istio does for unauthenticated peers. */
function field(values: readonly string[] | undefined, notValues: readonly string[] | undefined, v: string) {
  if (values && !anyMatch(values, v)) return false;
  if (notValues && anyMatch(notValues, v)) return false;
  return true;
}

function conditionValue(key: string, req: AuthzRequest, who: Peer): string | undefined {
  switch (key) {
    case "source.ip":
      return req.sourceIp;
    case "source.principal":
      return who.principal;
    case "source.namespace":
      return who.namespace;
    case "destination.port":
      return String(req.destinationPort);
    default:
      return undefined;
  }
}

export function stringMatch(pattern: string, value: string): boolean {
  if (pattern === "*") return value !== "";
  if (pattern.endsWith("*")) return value.startsWith(pattern.slice(0, -1));
  if (pattern.startsWith("*")) return value.endsWith(pattern.slice(1));
  return pattern === value;
}

function anyMatch(patterns: readonly string[], value: string): boolean {
  return patterns.some((p) => stringMatch(p, value));
}

/** IPv4 CIDR or single address. */
export function inBlock(ip: string, block: string): boolean {
  const [base, bitsText] = block.split("/");
  const bits = bitsText === undefined ? 32 : Number(bitsText);
  const a = ipv4ToInt(ip);
  const b = ipv4ToInt(base ?? "");
  if (a === undefined || b === undefined || !(bits >= 0 && bits <= 32)) return false;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (a & mask) >>> 0 === (b & mask) >>> 0;
}

function ipv4ToInt(ip: string): number | undefined {
  const parts = ip.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    const v = Number(p);
    if (!/^\d{1,3}$/.test(p) || v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

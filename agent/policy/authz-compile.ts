// AuthorizationPolicy → the form the evaluator walks per connection and per request: principals
// without "spiffe://", hosts lower-cased, paths compiled, `serviceAccounts` completed with the
// policy's namespace, condition keys classified, and for every rule whether it needs HTTP attributes.
// Compiled once per policy object (a WeakMap: the state view hands out the same frozen objects until
// the next config snapshot), so the per-request path does no string preparation.
import { principalOf } from "../../controller/api/identity.ts";
import { CONDITION_KEYS, HEADER_CONDITION_KEY } from "../../controller/api/resources.ts";
import type { AuthorizationPolicy, Operation, Rule, Source } from "../../controller/api/resources.ts";
import { compilePath, stripPort, type PathMatcher } from "./http-match.ts";

type List = readonly string[] | undefined;

export interface CompiledSource {
  readonly principals: List;
  readonly notPrincipals: List;
  readonly namespaces: List;
  readonly notNamespaces: List;
  /** "<ns>/<sa>" each. */
  readonly serviceAccounts: List;
  readonly notServiceAccounts: List;
  readonly ipBlocks: List;
  readonly notIpBlocks: List;
  readonly remoteIpBlocks: List;
  readonly notRemoteIpBlocks: List;
}

export interface HostPattern {
  readonly pattern: string;
  readonly hasPort: boolean;
}

export interface CompiledOperation {
  readonly ports: readonly number[] | undefined;
  readonly notPorts: readonly number[] | undefined;
  readonly hosts: readonly HostPattern[] | undefined;
  readonly notHosts: readonly HostPattern[] | undefined;
  readonly methods: List;
  readonly notMethods: List;
  readonly paths: readonly PathMatcher[] | undefined;
  readonly notPaths: readonly PathMatcher[] | undefined;
}

export type ConditionKind = (typeof CONDITION_KEYS)[number] | "header" | "unsupported";

export interface CompiledCondition {
  readonly kind: ConditionKind;
  /** Lower-case header name, for kind "header". */
  readonly header: string;
  readonly values: List;
  readonly notValues: List;
}

export interface CompiledRule {
  /** Index in `spec.rules`, for the access log and the 403 body. */
  readonly index: number;
  /** Some field can only be checked on an HTTP request (hosts, methods, paths, headers, unknown keys). */
  readonly needsHttp: boolean;
  readonly from: readonly CompiledSource[] | undefined;
  readonly to: readonly CompiledOperation[] | undefined;
  readonly when: readonly CompiledCondition[];
}

export interface CompiledPolicy {
  /** "namespace/name". */
  readonly name: string;
  readonly action: "ALLOW" | "DENY";
  readonly rules: readonly CompiledRule[];
}

const cache = new WeakMap<AuthorizationPolicy, CompiledPolicy>();

export function compilePolicy(p: AuthorizationPolicy): CompiledPolicy {
  let c = cache.get(p);
  if (c) return c;
  const ns = p.metadata.namespace;
  c = {
    name: `${ns}/${p.metadata.name}`,
    action: p.spec.action,
    rules: p.spec.rules.map((r, i) => compileRule(r, i, ns)),
  };
  cache.set(p, c);
  return c;
}

function compileRule(r: Rule, index: number, ns: string): CompiledRule {
  // An empty `from`/`to` list is absent (Istio: no clause, matches all), as the L4 code always did.
  const from = r.from?.length ? r.from.map((f) => compileSource(f.source, ns)) : undefined;
  const to = r.to?.length ? r.to.map((t) => compileOperation(t.operation)) : undefined;
  const when = (r.when ?? []).map(compileCondition);
  const needsHttp =
    (to ?? []).some(isHttpOperation) || when.some((c) => c.kind === "header" || c.kind === "unsupported");
  return { index, needsHttp, from, to, when };
}

function compileSource(s: Source, ns: string): CompiledSource {
  // Istio (ambient and sidecar alike): a service account without "<ns>/" is in the policy's namespace.
  const sa = (v: string) => (v.includes("/") ? v : `${ns}/${v}`);
  return {
    principals: s.principals?.map(principalOf),
    notPrincipals: s.notPrincipals?.map(principalOf),
    namespaces: s.namespaces,
    notNamespaces: s.notNamespaces,
    serviceAccounts: s.serviceAccounts?.map(sa),
    notServiceAccounts: s.notServiceAccounts?.map(sa),
    ipBlocks: s.ipBlocks,
    notIpBlocks: s.notIpBlocks,
    remoteIpBlocks: s.remoteIpBlocks,
    notRemoteIpBlocks: s.notRemoteIpBlocks,
  };
}

function compileOperation(o: Operation): CompiledOperation {
  const hosts = (l: List) =>
    l?.map((h) => {
      const pattern = h.toLowerCase();
      return { pattern, hasPort: stripPort(pattern) !== pattern };
    });
  return {
    ports: o.ports,
    notPorts: o.notPorts,
    hosts: hosts(o.hosts),
    notHosts: hosts(o.notHosts),
    methods: o.methods,
    notMethods: o.notMethods,
    paths: o.paths?.map(compilePath),
    notPaths: o.notPaths?.map(compilePath),
  };
}

function isHttpOperation(o: CompiledOperation): boolean {
  return !!(o.hosts || o.notHosts || o.methods || o.notMethods || o.paths || o.notPaths);
}

function compileCondition(c: NonNullable<Rule["when"]>[number]): CompiledCondition {
  const header = HEADER_CONDITION_KEY.exec(c.key)?.[1]?.toLowerCase();
  const known = (CONDITION_KEYS as readonly string[]).includes(c.key);
  // The schema rejects unknown keys; one that still arrives (an older agent, a newer controller)
  // is evaluated fail-closed as an attribute we cannot see: never allows, always denies.
  const kind = header ? "header" : known ? (c.key as ConditionKind) : "unsupported";
  const principals = kind === "source.principal";
  return {
    kind,
    header: header ?? "",
    values: principals ? c.values?.map(principalOf) : c.values,
    notValues: principals ? c.notValues?.map(principalOf) : c.notValues,
  };
}

// Does one compiled rule match what is known of a connection or request? Istio's logic: one `from`
// source AND one `to` operation AND every `when` condition; inside a source or an operation every
// field present must hold; a positive list needs one match, a negative list none.
//
// An attribute the caller cannot see (HTTP fields on an opaque connection, destination.ip when the
// caller did not pass it, a key this agent does not know) evaluates to `unknownAs`: false when the
// answer would allow, true when it would deny, so ignorance always errs towards denying.
import type { PeerIdentity } from "../../controller/api/identity.ts";
import { stringMatches } from "../../controller/api/selectors.ts";
import type {
  CompiledCondition,
  CompiledOperation,
  CompiledRule,
  CompiledSource,
  HostPattern,
} from "./authz-compile.ts";
import { headerMatches, headerValue, hostMatches, type PathMatcher } from "./http-match.ts";
import { inBlock } from "./ip-block.ts";

/** The request side, prepared once per evaluation (lower-cased host, normalised path). */
export interface HttpFacts {
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export interface Facts {
  readonly peer: PeerIdentity;
  readonly sourceIp: string;
  /** The original client (`remoteIpBlocks`, `remote.ip`): sourceIp unless the request says otherwise. */
  readonly remoteIp: string;
  readonly destinationPort: number;
  readonly destinationIp: string | undefined;
  readonly http: HttpFacts | undefined;
}

export function ruleMatches(rule: CompiledRule, f: Facts, unknownAs: boolean): boolean {
  if (rule.from && !rule.from.some((s) => sourceMatches(s, f))) return false;
  if (rule.to && !rule.to.some((o) => operationMatches(o, f, unknownAs))) return false;
  for (const c of rule.when) if (!conditionMatches(c, f, unknownAs)) return false;
  return true;
}

function sourceMatches(s: CompiledSource, f: Facts): boolean {
  const { peer } = f;
  const sa = peer.namespace ? `${peer.namespace}/${peer.serviceAccount}` : "";
  return (
    strings(s.principals, s.notPrincipals, peer.principal) &&
    strings(s.namespaces, s.notNamespaces, peer.namespace) &&
    strings(s.serviceAccounts, s.notServiceAccounts, sa) &&
    blocks(s.ipBlocks, s.notIpBlocks, f.sourceIp) &&
    blocks(s.remoteIpBlocks, s.notRemoteIpBlocks, f.remoteIp)
  );
}

function operationMatches(o: CompiledOperation, f: Facts, unknownAs: boolean): boolean {
  if (o.ports && !o.ports.includes(f.destinationPort)) return false;
  if (o.notPorts && o.notPorts.includes(f.destinationPort)) return false;
  const http = f.http;
  if (!http)
    return unknownAs || !(o.hosts || o.notHosts || o.methods || o.notMethods || o.paths || o.notPaths);
  return (
    strings(o.methods, o.notMethods, http.method) &&
    hosts(o.hosts, o.notHosts, http.host) &&
    paths(o.paths, o.notPaths, http.path)
  );
}

function conditionMatches(c: CompiledCondition, f: Facts, unknownAs: boolean): boolean {
  switch (c.kind) {
    case "source.ip":
      return blocks(c.values, c.notValues, f.sourceIp);
    case "remote.ip":
      return blocks(c.values, c.notValues, f.remoteIp);
    case "destination.ip":
      return f.destinationIp === undefined ? unknownAs : blocks(c.values, c.notValues, f.destinationIp);
    case "destination.port": {
      const port = String(f.destinationPort);
      return (!c.values || c.values.includes(port)) && !c.notValues?.includes(port);
    }
    case "source.principal":
      return strings(c.values, c.notValues, f.peer.principal);
    case "source.namespace":
      return strings(c.values, c.notValues, f.peer.namespace);
    case "header": {
      if (!f.http) return unknownAs;
      const v = headerValue(f.http.headers, c.header);
      return (
        (!c.values || c.values.some((p) => headerMatches(p, v))) &&
        !c.notValues?.some((p) => headerMatches(p, v))
      );
    }
    case "unsupported":
      return unknownAs;
  }
}

type List = readonly string[] | undefined;

function strings(values: List, notValues: List, v: string): boolean {
  if (values && !values.some((p) => stringMatches(p, v))) return false;
  return !notValues?.some((p) => stringMatches(p, v));
}

function blocks(values: List, notValues: List, ip: string): boolean {
  if (values && !values.some((b) => inBlock(ip, b))) return false;
  return !notValues?.some((b) => inBlock(ip, b));
}

function hosts(
  values: readonly HostPattern[] | undefined,
  notValues: readonly HostPattern[] | undefined,
  host: string,
) {
  const m = (h: HostPattern) => hostMatches(h.pattern, host, h.hasPort);
  if (values && !values.some(m)) return false;
  return !notValues?.some(m);
}

function paths(
  values: readonly PathMatcher[] | undefined,
  notValues: readonly PathMatcher[] | undefined,
  path: string,
) {
  if (values && !values.some((m) => m(path))) return false;
  return !notValues?.some((m) => m(path));
}

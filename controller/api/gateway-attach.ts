// Which listeners of a Gateway a route attaches to, and for which hostnames: the Gateway API rules
// (gateway-api apis/v1 gateway_types.go Listener.hostname / AllowedRoutes, httproute_types.go
// Hostnames), as pure functions shared by the controller (warnings for routes that attach to nothing)
// and the agent (the gateway's route tables). A wildcard `*.example.com` matches any number of labels in
// front of `example.com`, never `example.com` itself.
import { isGatewayParent } from "./route-parts.ts";
import type { ParentRef } from "./route-parts.ts";
import type { Gateway, Listener } from "./gateway.ts";

/** Does `pattern` (exact or `*.suffix`) cover `host` (a hostname, or itself a wildcard)? */
export function hostnameMatches(pattern: string, host: string): boolean {
  if (!pattern.startsWith("*.")) return pattern === host;
  return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
}

/**
 * The hostnames a route serves on a listener: [] = every hostname (neither sets one); undefined = none
 * in common (the route does not attach to that listener: the spec's NoMatchingListenerHostname).
 */
export function intersectHostnames(
  listener: string | undefined,
  route: readonly string[] | undefined,
): string[] | undefined {
  const hosts = route ?? [];
  if (listener === undefined) return [...new Set(hosts)];
  if (hosts.length === 0) return [listener];
  const out = new Set<string>();
  for (const r of hosts) {
    if (r === listener || hostnameMatches(listener, r)) out.add(r);
    else if (hostnameMatches(r, listener)) out.add(listener);
  }
  return out.size === 0 ? undefined : [...out];
}

export interface AttachableRoute {
  readonly kind: "HTTPRoute" | "GRPCRoute";
  readonly metadata: { readonly namespace: string; readonly name: string };
  readonly spec: {
    readonly parentRefs: readonly ParentRef[];
    readonly hostnames?: readonly string[] | undefined;
  };
}

export type Attachment =
  | { readonly listener: Listener; readonly hostnames: readonly string[] }
  | { readonly listener: Listener; readonly refused: string };

/** Does parentRef `p` of `route` name Gateway `g`? */
export function namesGateway(p: ParentRef, route: AttachableRoute, g: Gateway): boolean {
  return (
    isGatewayParent(p) &&
    p.name === g.metadata.name &&
    (p.namespace ?? route.metadata.namespace) === g.metadata.namespace
  );
}

/** Each listener `p` selects (by sectionName and port), attached with its hostnames or refused with why. */
export function attachToGateway(route: AttachableRoute, p: ParentRef, g: Gateway): Attachment[] {
  const out: Attachment[] = [];
  for (const l of g.spec.listeners) {
    if (p.sectionName !== undefined && p.sectionName !== l.name) continue;
    if (p.port !== undefined && p.port !== l.port) continue;
    const why = refusal(route, g, l);
    if (why !== undefined) {
      out.push({ listener: l, refused: why });
      continue;
    }
    const hostnames = intersectHostnames(l.hostname, route.spec.hostnames);
    if (hostnames === undefined)
      out.push({
        listener: l,
        refused: `no route hostname is within listener ${l.name}'s hostname ${l.hostname ?? ""}`,
      });
    else out.push({ listener: l, hostnames });
  }
  return out;
}

function refusal(route: AttachableRoute, g: Gateway, l: Listener): string | undefined {
  const from = l.allowedRoutes.namespaces.from;
  if (from === "Same" && route.metadata.namespace !== g.metadata.namespace)
    return `listener ${l.name} allows routes from namespace ${g.metadata.namespace} only (allowedRoutes.namespaces.from: Same)`;
  const kinds = l.allowedRoutes.kinds;
  if (kinds && kinds.length > 0 && !kinds.some((k) => k.kind === route.kind))
    return `listener ${l.name} does not allow ${route.kind} (allowedRoutes.kinds)`;
  return undefined;
}

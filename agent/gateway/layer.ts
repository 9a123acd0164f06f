// The gateway's route layer, first in its chain (then mirror → fault → timeout → retry → breaker →
// upstream, the mesh's own layers): the request's Host picks the listener's rules (agent/gateway/
// routes.ts), the matched rule is applied as on a Service (agent/http/route.ts backendForMatch) except
// a rule-level RequestRedirect, whose Location takes the listener's scheme and port (an HTTPS listener's
// redirect without a scheme stays https). The edge's forwarding headers are set here: the external
// client's address is appended to x-forwarded-for, x-forwarded-proto is the listener's scheme, and the
// original client behind the Gateway's trusted proxies goes to the destination agent (REMOTE_IP_HEADER).
import { isIPv4 } from "node:net";
import type { Layer } from "../stack/compose.ts";
import type { RouteMatchResult } from "../state/routes.ts";
import type { ServicePortInfo } from "../state/view.ts";
import { localReply, type Exchange, type ResponseHead } from "../http/exchange.ts";
import { modifyHeaders, redirectLocation } from "../http/filters.ts";
import { REMOTE_IP_HEADER } from "../http/headers.ts";
import { backendForMatch } from "../http/route.ts";
import { isGrpc } from "../http/server.ts";
import { normalizeHost, type GatewayPlan, type GatewayPortPlan } from "./routes.ts";

export interface ListenerRef {
  readonly gateway: GatewayPlan;
  readonly port: GatewayPortPlan;
}

/** `lookup` answers from the current snapshot, so a keep-alive connection follows route changes. */
export function gatewayRouteLayer(
  lookup: (key: string) => ListenerRef | undefined,
): Layer<Exchange, ResponseHead> {
  return (next) => async (ex) => {
    const chosen = gatewayBackend(ex, lookup(ex.servicePort.key));
    if ("status" in chosen) return chosen;
    ex.backend = chosen;
    return next(ex);
  };
}

export function gatewayBackend(ex: Exchange, ref: ListenerRef | undefined): ServicePortInfo | ResponseHead {
  const grpc = isGrpc(ex);
  if (!ref)
    return localReply(503, "NoRoute", `gateway listener ${ex.servicePort.key} is no longer configured`, grpc);
  const scheme = ref.port.protocol === "HTTPS" ? "https" : "http";
  forwardingHeaders(ex, scheme, ref.gateway.trustedProxies);
  const [path, query] = split(ex.request.path);
  const match = ref.port.routes.match(
    ex.request.authority,
    {
      method: ex.request.method,
      path,
      query,
      headers: ex.request.headers as Record<string, string | string[] | undefined>,
    },
    grpc,
  );
  if (match === "unknown-host")
    return localReply(
      404,
      "NoRoute",
      `no route of gateway ${ref.gateway.key} port ${ref.port.port} serves host ${normalizeHost(ex.request.authority)}`,
      grpc,
    );
  if (!match)
    return localReply(
      404,
      "NoRoute",
      `no rule of gateway ${ref.gateway.key} port ${ref.port.port} matches ${ex.request.method} ${path}`,
      grpc,
    );
  const redirected = redirect(ex, match, scheme, ref.port.port);
  if (redirected) {
    ex.rule = match.rule;
    return redirected;
  }
  return backendForMatch(ex, match, grpc);
}

function redirect(
  ex: Exchange,
  match: RouteMatchResult,
  scheme: "http" | "https",
  port: number,
): ResponseHead | undefined {
  const f = match.rule.filters.find((x) => x.type === "RequestRedirect");
  if (!f || f.type !== "RequestRedirect") return undefined;
  const [path, query] = split(ex.request.path);
  const { status, location } = redirectLocation(
    f,
    { scheme, host: normalizeHost(ex.request.authority) || ex.servicePort.service.host, port, path, query },
    match.pathMatch,
  );
  const headers = { location, "content-length": 0 };
  for (const m of match.rule.filters)
    if (m.type === "ResponseHeaderModifier") modifyHeaders(headers, m.headers);
  return { status, headers, reason: `redirected by route ${match.rule.route}` };
}

function forwardingHeaders(ex: Exchange, scheme: "http" | "https", trustedProxies: number): void {
  const h = ex.request.headers;
  const xff = h["x-forwarded-for"];
  const have = Array.isArray(xff) ? xff.join(", ") : xff === undefined ? "" : String(xff);
  if (trustedProxies > 0) h[REMOTE_IP_HEADER] = originalClient(have, trustedProxies, ex.source.address);
  h["x-forwarded-for"] = have === "" ? ex.source.address : `${have}, ${ex.source.address}`;
  h["x-forwarded-proto"] = scheme;
}

/**
 * The original client: the entry `hops` from the right of the X-Forwarded-For the Gateway received, the
 * last one its outermost trusted proxy wrote (Envoy's xff_num_trusted_hops). The peer itself when the
 * header has fewer entries (the request did not come through that many proxies) or that entry is not an
 * IPv4 address (policy matches IPv4 only).
 */
export function originalClient(xff: string, hops: number, peer: string): string {
  if (hops <= 0 || xff === "") return peer;
  const entries = xff.split(",");
  if (entries.length < hops) return peer;
  const candidate = entries[entries.length - hops]!.trim();
  return isIPv4(candidate) ? candidate : peer;
}

function split(pathAndQuery: string): [string, string] {
  const q = pathAndQuery.indexOf("?");
  return q < 0 ? [pathAndQuery, ""] : [pathAndQuery.slice(0, q), pathAndQuery.slice(q + 1)];
}

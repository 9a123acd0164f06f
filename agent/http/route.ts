// The route layer: a request to a service port with HTTPRoutes/GRPCRoutes attached is matched against
// them (agent/state/routes.ts compiled the precedence); no match → 404, as the Gateway API says. The
// matched rule's filters rewrite the request or answer it (redirect), then one backend is picked by
// weight and the request continues to it. A service port without routes goes to its own endpoints.
// The rule's (or backendRef's) FaultInjection is handed to the fault layer on `ex.fault`; one that
// does not exist answers 500, as the spec says for an unresolvable ExtensionRef.
import type { Layer } from "../stack/compose.ts";
import type { CompiledRule, RouteMatchResult, RuleFault } from "../state/routes.ts";
import type { ServicePortInfo } from "../state/view.ts";
import { localReply, type Exchange, type ResponseHead } from "./exchange.ts";
import { applyRequestFilters, mirrorsFor, pickWeighted } from "./filters.ts";
import { isGrpc } from "./server.ts";

export function routeLayer(): Layer<Exchange, ResponseHead> {
  return (next) => async (ex) => {
    const chosen = selectBackend(ex);
    if ("status" in chosen) return chosen;
    ex.backend = chosen;
    return next(ex);
  };
}

/** The backend service port for a request, or the mesh's own answer (404, 500, a redirect). */
export function selectBackend(ex: Exchange): ServicePortInfo | ResponseHead {
  const table = ex.view.routesFor(ex.servicePort);
  if (!table) return ex.servicePort;
  const grpc = isGrpc(ex);
  const q = ex.request.path.indexOf("?");
  const match: RouteMatchResult | undefined = table.match(
    {
      method: ex.request.method,
      path: q < 0 ? ex.request.path : ex.request.path.slice(0, q),
      query: q < 0 ? "" : ex.request.path.slice(q + 1),
      headers: ex.request.headers as Record<string, string | string[] | undefined>,
    },
    ex.source.namespace,
  );
  const host = `${ex.servicePort.service.host}:${ex.servicePort.port}`;
  if (!match) {
    return localReply(
      404,
      "NoRoute",
      `no route rule of ${host} matches ${ex.request.method} ${ex.request.path}`,
      grpc,
    );
  }
  return backendForMatch(ex, match, grpc);
}

/**
 * The matched rule applied: its filters (a redirect answers), a weighted backend, that backend's fault,
 * filters and mirrors. Shared with the gateway's route layer (agent/gateway/), which matches by hostname.
 */
export function backendForMatch(
  ex: Exchange,
  match: RouteMatchResult,
  grpc: boolean,
): ServicePortInfo | ResponseHead {
  ex.rule = match.rule;
  ex.pathMatch = match.pathMatch;
  const dangling = danglingFault(match.rule.fault, match.rule, grpc);
  if (dangling) return dangling;
  const answered = applyRequestFilters(ex, match);
  if (answered) return answered;
  const backend = pickWeighted(match.rule.backends);
  if (!backend) {
    return localReply(
      500,
      "NoRoute",
      `route ${match.rule.route} rule ${match.rule.index} has no backend with weight`,
      grpc,
    );
  }
  const sp =
    backend.service === undefined ? undefined : ex.view.servicePort(`${backend.service}:${backend.port}`);
  if (!sp) {
    return localReply(
      500,
      "NoRoute",
      `route ${match.rule.route} names a backend that does not exist (${backend.service ?? "?"}:${backend.port})`,
      grpc,
    );
  }
  const fault = backend.fault ?? match.rule.fault;
  const danglingBackend = danglingFault(backend.fault, match.rule, grpc);
  if (danglingBackend) return danglingBackend;
  if (fault) ex.fault = fault;
  const byBackend = backend.filters.length > 0 ? applyRequestFilters(ex, match, backend.filters) : undefined;
  if (byBackend) return byBackend;
  const mirrors = mirrorsFor([...match.rule.filters, ...backend.filters]);
  for (const m of mirrors) {
    const target = ex.view.servicePort(`${m.service}:${m.port}`);
    if (target) (ex.mirrors ??= []).push(target);
  }
  return sp;
}

/** The spec's answer for a filter whose ExtensionRef resolves to nothing: 500, never a skipped filter. */
function danglingFault(
  fault: RuleFault | undefined,
  rule: CompiledRule,
  grpc: boolean,
): ResponseHead | undefined {
  if (!fault || fault.settings) return undefined;
  return localReply(
    500,
    "NoRoute",
    `route ${rule.route} rule ${rule.index} references FaultInjection ${fault.ref}, which does not exist`,
    grpc,
  );
}

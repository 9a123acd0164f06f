// `nodemesh explain <pod> <destination[:port]>`: why a connection from a pod would or would not be captured,
// and what the mesh would do with it, decided by the same functions the data path runs (planOutbound, the
// route table, evaluateAuthz, PeerAuthentication) on a hypothetical connection, plus the live state that
// changes the answer (kernel enrollment, ejected endpoints, open breakers). Pure: the caller passes the
// state; `explainPage` (the admin page) gathers it. Nothing here opens a connection.
import { policyAppliesTo } from "../../controller/api/index.ts";
import type { AgentSettings } from "../config.ts";
import { evaluateAuthz, type AuthzDecision, type AuthzHttp } from "../policy/authz.ts";
import type { EndpointInfo, MeshView, ServicePortInfo, WorkloadInfo } from "../state/view.ts";
import { planOutbound } from "./plan.ts";

export interface ExplainRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
}

export interface ExplainState {
  readonly node: string;
  readonly settings: Pick<AgentSettings, "connectTimeoutMs">;
  /** Enrolled by this agent (listeners open), and what the kernel map says (undefined = cannot read it). */
  readonly enrollment: (uid: string) => { agent: boolean; kernel?: { enrolled: boolean; strict: boolean } };
  readonly ejected: (destination: string, endpoint: string) => boolean;
  readonly breaker: (destination: string, endpoint: string) => string | undefined;
}

export type Verdict = "allowed" | "denied" | "not-captured" | "fails" | "elsewhere";

export interface EndpointExplanation {
  readonly endpoint: string;
  readonly workload: string;
  readonly node: string;
  readonly identity: string;
  readonly mtls: "STRICT" | "PERMISSIVE";
  readonly ejected: boolean;
  readonly breaker: string;
  readonly authz: AuthzDecision;
}

export interface Explanation {
  readonly node: string;
  readonly verdict: Verdict;
  /** Why, in the order the data path decides, one sentence each. */
  readonly reasons: string[];
  readonly source?: { uid: string; address: string; identity: string; node: string; local: boolean };
  readonly destination: { address: string; port: number; kind: string; service?: string; protocol?: string };
  readonly capture?: { enrolled: boolean; kernel: string; meshed: boolean };
  readonly plan?: { kind: string; flag?: string; reason?: string };
  readonly route?: RouteSummary | { noMatch: true };
  readonly endpoints: EndpointExplanation[];
}

/** Explains a connection from `pod` (WorkloadEntry name, "namespace/name", address or `pod` label) to `to`. */
export function explainConnection(
  view: MeshView | undefined,
  pod: string,
  to: string,
  state: ExplainState,
  request?: ExplainRequest,
): Explanation {
  const node = state.node;
  if (!view) {
    const destination = { address: to, port: 0, kind: "unknown" };
    const reasons = [`the agent on ${node} has no config from the controller yet: nothing is captured`];
    return { node, verdict: "not-captured", reasons, destination, endpoints: [] };
  }
  const src = findWorkload(view, pod);
  const dst = resolveDestination(view, to, src?.namespace ?? "default");
  const reasons: string[] = [];
  const base = { node, destination: dst.summary, endpoints: [] as EndpointExplanation[] };
  if (!src) {
    reasons.push(`no WorkloadEntry matches "${pod}": its connects are not redirected to any agent`);
    reasons.push(...strictNotes(view, dst.endpoints, "its plaintext connections"));
    return { ...base, verdict: "not-captured", reasons };
  }
  const source = {
    uid: src.uid,
    address: src.address,
    identity: src.spiffeId,
    node: src.node,
    local: src.node === node,
  };
  if (!source.local) {
    reasons.push(`${src.uid} runs on node ${src.node}; ask that node's agent`);
    return { ...base, source, verdict: "elsewhere", reasons };
  }
  const e = state.enrollment(src.uid);
  const kernel = e.kernel === undefined ? "unknown" : e.kernel.enrolled ? "enrolled" : "missing";
  const capture = { enrolled: e.agent, kernel, meshed: dst.meshed };
  if (!e.agent || e.kernel?.enrolled === false) {
    reasons.push(
      !e.agent
        ? `${src.uid} is in the config but not enrolled by this agent (see the agent log for the enrolment error)`
        : `${src.uid} is not in the kernel's workload map: its connects bypass the agent (restart the agent)`,
    );
    reasons.push(...strictNotes(view, dst.endpoints, "its plaintext connections"));
    return { ...base, source, capture, verdict: "not-captured", reasons };
  }
  if (!dst.meshed) {
    reasons.push(`${to} is not a meshed destination (no service VIP or workload address): not redirected`);
    return { ...base, source, capture, verdict: "not-captured", reasons };
  }
  reasons.push(
    `${src.uid} is enrolled (kernel: ${kernel}) and ${dst.summary.address}:${dst.summary.port} is meshed: captured`,
  );
  const plan = planOutbound(
    view,
    src.uid,
    { address: dst.summary.address, port: dst.summary.port },
    state.settings,
  );
  if (plan.kind === "fail") {
    reasons.push(`the agent fails it: ${plan.reason} (${plan.flag})`);
    return { ...base, source, capture, plan, verdict: "fails", reasons };
  }
  if (plan.kind !== "forward") {
    reasons.push(`carried out of the mesh directly by this agent (${plan.kind})`);
    return { ...base, source, capture, plan: { kind: plan.kind }, verdict: "allowed", reasons };
  }
  const l7 = plan.protocol === "http" || plan.protocol === "grpc";
  const routed = plan.servicePort && l7 ? routeOf(view, plan.servicePort, src, request) : undefined;
  if (routed && "noMatch" in routed) {
    reasons.push(
      `no rule of the service's routes matches ${request?.method ?? "GET"} ${request?.path ?? "/"}: 404`,
    );
    return { ...base, source, capture, plan: { kind: plan.kind }, route: routed, verdict: "fails", reasons };
  }
  const ports = routed ? routed.ports : plan.servicePort ? [plan.servicePort] : [];
  const candidates =
    ports.length > 0
      ? ports.flatMap((p) => p.endpoints.map((ep) => ({ p: p.key, ep })))
      : plan.endpoints.map((ep) => ({ p: plan.destination, ep }));
  const http = l7 ? authzHttp(request, dst.summary.address) : undefined;
  const endpoints = candidates.map(({ p, ep }) => explainEndpoint(view, src, p, ep, state, http, l7));
  const verdict = verdictOf(endpoints, reasons, plan.protocol);
  const route = routed && !("noMatch" in routed) ? routed.summary : undefined;
  return { ...base, source, capture, plan: { kind: plan.kind }, route, endpoints, verdict, reasons };
}

function verdictOf(endpoints: EndpointExplanation[], reasons: string[], protocol: string): Verdict {
  if (endpoints.length === 0) {
    reasons.push("no endpoint to send it to");
    return "fails";
  }
  const allowed = endpoints.filter((e) => e.authz.allowed);
  for (const e of endpoints) reasons.push(`${e.endpoint} (${e.workload}): ${e.authz.reason}`);
  if (allowed.length === 0) return "denied";
  const usable = allowed.filter((e) => !e.ejected && e.breaker !== "open");
  if (usable.length === 0) reasons.push("every allowed endpoint is ejected or its breaker is open right now");
  reasons.push(`carried as ${protocol} over mTLS (HBONE) to ${usable.length || allowed.length} endpoint(s)`);
  return "allowed";
}

function explainEndpoint(
  view: MeshView,
  src: WorkloadInfo,
  destination: string,
  ep: EndpointInfo,
  state: ExplainState,
  http: AuthzHttp | undefined,
  l7: boolean,
): EndpointExplanation {
  const { config } = view;
  const policies = config.authorizationPolicies.filter((p) =>
    policyAppliesTo(p, ep.workload.entry, config.services, config.rootNamespace),
  );
  const authz = evaluateAuthz(
    policies,
    {
      principal: src.spiffeId,
      sourceIp: src.address,
      destinationPort: ep.port,
      destinationIp: ep.address,
      http,
    },
    { deferHttp: l7 && http === undefined },
  );
  return {
    endpoint: ep.key,
    workload: ep.workload.uid,
    node: ep.workload.node,
    identity: ep.workload.spiffeId,
    mtls: view.refusesPlaintext(ep.workload) ? "STRICT" : "PERMISSIVE",
    ejected: state.ejected(destination, ep.key),
    breaker: state.breaker(destination, ep.key) ?? "closed",
    authz,
  };
}

/** What a client outside the mesh meets at STRICT destinations. */
function strictNotes(view: MeshView, endpoints: readonly EndpointInfo[], what: string): string[] {
  const strict = endpoints.filter((ep) => view.refusesPlaintext(ep.workload)).map((ep) => ep.workload.uid);
  if (strict.length === 0)
    return endpoints.length ? [`${what} reach the destination in plaintext (PERMISSIVE)`] : [];
  return [
    `${what} to ${[...new Set(strict)].join(", ")} are dropped by the kernel: PeerAuthentication STRICT`,
  ];
}

type RouteSummary = { route: string; rule: number; name?: string; backends: string[] };
type Routed = { noMatch: true } | { summary: RouteSummary; ports: readonly ServicePortInfo[] };

function routeOf(
  view: MeshView,
  sp: ServicePortInfo,
  src: WorkloadInfo,
  request: ExplainRequest | undefined,
): Routed | undefined {
  const table = view.routesFor(sp);
  if (!table) return undefined;
  const full = request?.path ?? "/";
  const q = full.indexOf("?");
  const match = table.match(
    {
      method: request?.method ?? "GET",
      path: q < 0 ? full : full.slice(0, q),
      query: q < 0 ? "" : full.slice(q + 1),
      headers: request?.headers ?? {},
    },
    src.namespace,
  );
  if (!match) return { noMatch: true as const };
  const r = match.rule;
  const backends = r.backends.map((b) => `${b.service ?? "?"}:${b.port} weight ${b.weight}`);
  const ports = r.backends.flatMap((b) => {
    const p = b.service && b.weight > 0 ? view.servicePort(`${b.service}:${b.port}`) : undefined;
    return p ? [p] : [];
  });
  // The pass-through rule (no route for this client) sends the request to the service port itself.
  const route = r.route || "(none: the service's own endpoints)";
  const summary: RouteSummary = { route, rule: r.index, backends, ...(r.name ? { name: r.name } : {}) };
  return { summary, ports: r.route === "" ? [sp] : ports };
}

function authzHttp(request: ExplainRequest | undefined, host: string): AuthzHttp | undefined {
  if (!request) return undefined;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(request.headers)) headers[k.toLowerCase()] = v;
  return { method: request.method, path: request.path, host: headers["host"] ?? host, headers };
}

function findWorkload(view: MeshView, pod: string): WorkloadInfo | undefined {
  for (const entry of view.config.workloads) {
    const w = view.workloadByAddress(entry.spec.address);
    if (!w) continue;
    if (w.uid === pod || w.name === pod || w.address === pod || w.labels["pod"] === pod) return w;
  }
  return undefined;
}

interface ResolvedDestination {
  readonly summary: Explanation["destination"];
  readonly meshed: boolean;
  readonly endpoints: readonly EndpointInfo[];
}

/** `to` is an address or a service host ("name", "name.namespace"), with an optional ":port". */
function resolveDestination(view: MeshView, to: string, sourceNs: string): ResolvedDestination {
  const colon = to.lastIndexOf(":");
  const host = colon < 0 ? to : to.slice(0, colon);
  let port = colon < 0 ? 0 : Number(to.slice(colon + 1));
  let address = host;
  const svc = /^\d+\.\d+\.\d+\.\d+$/.test(host) ? undefined : findService(view, host, sourceNs);
  if (svc) {
    address = svc.spec.addresses?.[0] ?? host;
    if (port === 0) port = svc.spec.ports[0]?.port ?? 0;
  }
  const target = view.resolve(address, port);
  if (!target) {
    const w = view.workloadByAddress(address);
    return { summary: { address, port, kind: w ? "workload" : "unmeshed" }, meshed: false, endpoints: [] };
  }
  if (target.kind === "workload") {
    const summary = { address, port, kind: "workload", service: target.endpoint.workload.uid };
    return { summary, meshed: true, endpoints: [target.endpoint] };
  }
  const sp = target.servicePort;
  const summary = { address, port, kind: "service", service: sp.service.host, protocol: sp.protocol };
  return { summary, meshed: true, endpoints: sp.endpoints };
}

function findService(view: MeshView, host: string, sourceNs: string) {
  const [name, ns = sourceNs] = host.split(".");
  return view.config.services.find((s) => s.metadata.name === name && s.metadata.namespace === ns);
}

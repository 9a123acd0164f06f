// The mesh model: one immutable, indexed view of every resource, built from validated documents.
// Indexes: services by VIP:port, workloads by address, by node, by identity; policies by namespace
// (root-namespace policies apply everywhere); per-node policy sets, cached on first use.
// `buildModel` also runs the cross-document checks (duplicate names, address conflicts) that
// reject a configuration, and the ones that only warn (selectors matching nothing, dangling refs).
//
// Invariants: a MeshModel never changes after construction (its caches fill lazily but never change
// an answer); every Resource object in it is frozen by convention (shared with older models and
// with the distribution's cached JSON). A model built from a previous one inherits the per-node
// policy sets of the nodes that no change can affect (copied, so no model keeps an older one alive).
import {
  DEFAULT_OUTBOUND_TRAFFIC_POLICY,
  DEFAULT_ROOT_NAMESPACE,
  DEFAULT_TRUST_DOMAIN,
  attachToGateway,
  endpointsOf,
  entryOfPending,
  gatewayIdentity,
  gatewayNodes,
  isCoreService,
  isGatewayParent,
  isOurGateway,
  keyOf,
  keyString,
  policyAppliesTo,
  resolveTargetPort,
  selectorMatches,
  serviceSelects,
  spiffeIdOf,
} from "../api/index.ts";
import { externalServiceConflicts, externalServiceReferences } from "./external.ts";
import type {
  AuthorizationPolicy,
  ExternalService,
  OutboundTrafficPolicy,
  BackendObjectRef,
  ConfigIssue,
  Endpoint,
  FaultInjection,
  Gateway,
  GRPCRoute,
  GrpcRouteFilter,
  HTTPRoute,
  HttpRouteFilter,
  PeerAuthentication,
  PendingWorkload,
  RateLimitPolicy,
  Resource,
  Service,
  TLSCertificate,
  TrafficPolicy,
  UnmeshedPod,
  WorkloadEntry,
} from "../api/index.ts";
import { rateLimitReferences } from "./rate-limit-refs.ts";
import {
  addressesStayUnique,
  entryDelta,
  touchedWorkloads,
  warningsDependOnWorkloads,
  workloadsOnly,
} from "./incremental.ts";
import type { EntryDelta } from "./incremental.ts";

/** A validated resource with where it came from and its JSON (computed once, reused on the wire). */
export interface SourcedResource {
  readonly resource: Resource;
  readonly file: string;
  readonly document: number;
  readonly json: string;
  /** keyString(keyOf(resource)), computed once where the entry is made. */
  readonly key: string;
}

export interface ModelOptions {
  trustDomain?: string;
  rootNamespace?: string;
  /** Mesh-wide (controller flag), sent to every agent with the snapshot; default ALLOW_ANY. */
  outboundTrafficPolicy?: OutboundTrafficPolicy;
}

export function sourced(resource: Resource, file = "<memory>", document = 1): SourcedResource {
  return { resource, file, document, json: JSON.stringify(resource), key: keyString(keyOf(resource)) };
}

type ScopedPolicy = AuthorizationPolicy | PeerAuthentication;

/** Entries already keyed and checked by buildModel(): the constructor takes the map as it is. */
class KeyedEntries implements Iterable<SourcedResource> {
  readonly map: Map<string, SourcedResource>;
  constructor(map: Map<string, SourcedResource>) {
    this.map = map;
  }
  [Symbol.iterator](): Iterator<SourcedResource> {
    return this.map.values();
  }
}

/** What a model may take over from the previous one (see buildModel). */
interface Inheritance {
  from: MeshModel;
  /** Nodes whose policy set may differ from the previous model's. */
  changedNodes: ReadonlySet<string>;
}

export class MeshModel {
  readonly trustDomain: string;
  readonly rootNamespace: string;
  readonly outboundTrafficPolicy: OutboundTrafficPolicy;
  /** keyString(kind/ns/name) → entry. */
  readonly entries: ReadonlyMap<string, SourcedResource>;
  readonly services: readonly Service[] = [];
  readonly workloads: readonly WorkloadEntry[] = [];
  readonly authorizationPolicies: readonly AuthorizationPolicy[] = [];
  readonly peerAuthentications: readonly PeerAuthentication[] = [];
  readonly trafficPolicies: readonly TrafficPolicy[] = [];
  readonly httpRoutes: readonly HTTPRoute[] = [];
  readonly grpcRoutes: readonly GRPCRoute[] = [];
  readonly faultInjections: readonly FaultInjection[] = [];
  readonly rateLimitPolicies: readonly RateLimitPolicy[] = [];
  readonly externalServices: readonly ExternalService[] = [];
  readonly gateways: readonly Gateway[] = [];
  readonly tlsCertificates: readonly TLSCertificate[] = [];
  /** Pods scheduled without an IP yet (Kubernetes source): identities of their node, no endpoints. */
  readonly pendingWorkloads: readonly PendingWorkload[] = [];
  /** Pods that are not meshed (Kubernetes source), by UID for their node's CNI plugin only. */
  readonly unmeshedPods: readonly UnmeshedPod[] = [];
  readonly #byVipPort = new Map<string, Service>();
  readonly #byAddress = new Map<string, WorkloadEntry>();
  readonly #byNode = new Map<string, WorkloadEntry[]>();
  /** PendingWorkloads as the entries they become (address unknown), by node: identity and policy scope. */
  readonly #pendingByNode = new Map<string, { key: string; entry: WorkloadEntry }[]>();
  /** UnmeshedPod keys by node: scoped like PendingWorkloads, no policy depends on them. */
  readonly #unmeshedByNode = new Map<string, string[]>();
  /** Built on first use (the CSR path): 10,000 SPIFFE ID strings are not free for every version. */
  #byIdentity: Map<string, WorkloadEntry[]> | undefined;
  /** Gateway SPIFFE ID → the nodes that run it (ours only), built on first use like #byIdentity. */
  #gatewayNodes: Map<string, Set<string>> | undefined;
  readonly #workloadsByNs = new Map<string, WorkloadEntry[]>();
  readonly #policiesByNs = new Map<string, ScopedPolicy[]>();
  readonly #nodePolicyKeys = new Map<string, ReadonlySet<string>>();
  readonly #endpoints = new Map<Service, Endpoint[]>();

  /** Builds indexes without checks; use buildModel() for untrusted input. */
  constructor(entries: Iterable<SourcedResource>, opts: ModelOptions = {}, inherit?: Inheritance) {
    this.trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    this.rootNamespace = opts.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
    this.outboundTrafficPolicy = opts.outboundTrafficPolicy ?? DEFAULT_OUTBOUND_TRAFFIC_POLICY;
    let map: Map<string, SourcedResource>;
    if (entries instanceof KeyedEntries) map = entries.map;
    else {
      map = new Map<string, SourcedResource>();
      for (const e of entries) map.set(e.key, e);
    }
    this.entries = map;
    const lists = {
      Service: this.services as Service[],
      WorkloadEntry: this.workloads as WorkloadEntry[],
      AuthorizationPolicy: this.authorizationPolicies as AuthorizationPolicy[],
      PeerAuthentication: this.peerAuthentications as PeerAuthentication[],
      TrafficPolicy: this.trafficPolicies as TrafficPolicy[],
      HTTPRoute: this.httpRoutes as HTTPRoute[],
      GRPCRoute: this.grpcRoutes as GRPCRoute[],
      FaultInjection: this.faultInjections as FaultInjection[],
      RateLimitPolicy: this.rateLimitPolicies as RateLimitPolicy[],
      Gateway: this.gateways as Gateway[],
      TLSCertificate: this.tlsCertificates as TLSCertificate[],
      ExternalService: this.externalServices as ExternalService[],
      PendingWorkload: this.pendingWorkloads as PendingWorkload[],
      UnmeshedPod: this.unmeshedPods as UnmeshedPod[],
    };
    for (const { resource: r } of map.values()) (lists[r.kind] as Resource[]).push(r);
    for (const s of this.services)
      for (const vip of s.spec.addresses)
        for (const p of s.spec.ports) this.#byVipPort.set(`${vip}:${p.port}`, s);
    for (const w of this.workloads) {
      this.#byAddress.set(w.spec.address, w);
      push(this.#byNode, w.spec.node, w);
      push(this.#workloadsByNs, w.metadata.namespace, w);
    }
    for (const p of this.pendingWorkloads)
      push(this.#pendingByNode, p.spec.node, {
        key: keyString(keyOf(p)),
        // No address yet; policies and identities do not depend on it.
        entry: entryOfPending(p, "0.0.0.0"),
      });
    for (const u of this.unmeshedPods) push(this.#unmeshedByNode, u.spec.node, keyString(keyOf(u)));
    for (const p of [...this.authorizationPolicies, ...this.peerAuthentications])
      push(this.#policiesByNs, p.metadata.namespace, p);
    if (inherit)
      for (const [node, keys] of inherit.from.#nodePolicyKeys)
        if (!inherit.changedNodes.has(node)) this.#nodePolicyKeys.set(node, keys);
  }

  serviceAt(vip: string, port: number): Service | undefined {
    return this.#byVipPort.get(`${vip}:${port}`);
  }
  workloadAt(address: string): WorkloadEntry | undefined {
    return this.#byAddress.get(address);
  }
  workloadsOnNode(node: string): readonly WorkloadEntry[] {
    return this.#byNode.get(node) ?? [];
  }
  workloadsWithIdentity(spiffeId: string): readonly WorkloadEntry[] {
    if (!this.#byIdentity) {
      this.#byIdentity = new Map();
      for (const w of this.workloads) push(this.#byIdentity, spiffeIdOf(w, this.trustDomain), w);
    }
    return this.#byIdentity.get(spiffeId) ?? [];
  }
  /** The node-authorization check: does a workload with this identity run on `node`? */
  identityOnNode(spiffeId: string, node: string): boolean {
    return (
      this.workloadsWithIdentity(spiffeId).some((w) => w.spec.node === node) ||
      this.gatewayIdentityOnNode(spiffeId, node) ||
      // A pod enrolled at CNI ADD asks before its IP is published (docs/kubernetes.md).
      (this.#pendingByNode.get(node) ?? []).some((p) => spiffeIdOf(p.entry, this.trustDomain) === spiffeId)
    );
  }
  /** A Gateway's identity is issued only to the nodes its annotation names (docs/ingress.md). */
  gatewayIdentityOnNode(spiffeId: string, node: string): boolean {
    if (!this.#gatewayNodes) {
      this.#gatewayNodes = new Map();
      for (const g of this.gateways) {
        if (!isOurGateway(g)) continue;
        const id = gatewayIdentity(g, this.trustDomain);
        const set = this.#gatewayNodes.get(id) ?? new Set<string>();
        for (const n of gatewayNodes(g)) set.add(n);
        this.#gatewayNodes.set(id, set);
      }
    }
    return this.#gatewayNodes.get(spiffeId)?.has(node) === true;
  }
  workloadsInNamespace(ns: string): readonly WorkloadEntry[] {
    return this.#workloadsByNs.get(ns) ?? [];
  }
  nodes(): string[] {
    return [...this.#byNode.keys()];
  }
  endpoints(service: Service): readonly Endpoint[] {
    let eps = this.#endpoints.get(service);
    if (!eps) {
      eps = endpointsOf(service, this.#workloadsByNs.get(service.metadata.namespace) ?? []);
      this.#endpoints.set(service, eps);
    }
    return eps;
  }

  /** AuthorizationPolicies and PeerAuthentications that apply to workload `w`. */
  policiesFor(w: WorkloadEntry): {
    authorization: AuthorizationPolicy[];
    peerAuthentication: PeerAuthentication[];
  } {
    const authorization: AuthorizationPolicy[] = [];
    const peerAuthentication: PeerAuthentication[] = [];
    const candidates = [
      ...(this.#policiesByNs.get(w.metadata.namespace) ?? []),
      ...(w.metadata.namespace === this.rootNamespace
        ? []
        : (this.#policiesByNs.get(this.rootNamespace) ?? [])),
    ];
    for (const p of candidates) {
      if (!policyAppliesTo(p, w, this.services, this.rootNamespace)) continue;
      if (p.kind === "AuthorizationPolicy") authorization.push(p);
      else peerAuthentication.push(p);
    }
    return { authorization, peerAuthentication };
  }

  /**
   * Keys of the workload-scoped policies that apply to some workload of `node`, pending ones included,
   * and of the node's PendingWorkloads themselves, and of the TLSCertificates the node's Gateways name
   * (private keys go only where they serve): the node-scoped resources the hub sends it (cached).
   */
  policyKeysForNode(node: string): ReadonlySet<string> {
    let keys = this.#nodePolicyKeys.get(node);
    if (!keys) {
      const set = new Set<string>();
      const pending = this.#pendingByNode.get(node) ?? [];
      for (const p of pending) set.add(p.key);
      for (const k of this.#unmeshedByNode.get(node) ?? []) set.add(k);
      // Root-namespace policies without selector apply to every workload, so every node has them.
      for (const w of [...this.workloadsOnNode(node), ...pending.map((p) => p.entry)]) {
        const { authorization, peerAuthentication } = this.policiesFor(w);
        for (const p of authorization) set.add(keyString(keyOf(p)));
        for (const p of peerAuthentication) set.add(keyString(keyOf(p)));
      }
      for (const p of this.#policiesByNs.get(this.rootNamespace) ?? [])
        if (!p.spec.selector && !("targetRefs" in p.spec && p.spec.targetRefs)) set.add(keyString(keyOf(p)));
      for (const g of this.gateways)
        if (isOurGateway(g) && gatewayNodes(g).includes(node))
          for (const l of g.spec.listeners)
            for (const c of l.tls?.certificateRefs ?? []) {
              const ns = c.namespace ?? g.metadata.namespace;
              const key = keyString({ kind: "TLSCertificate", namespace: ns, name: c.name });
              if (this.entries.has(key)) set.add(key);
            }
      keys = set;
      this.#nodePolicyKeys.set(node, keys);
    }
    return keys;
  }
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

function describe(r: Resource): string {
  return `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`;
}

function issue(e: SourcedResource, path: string, message: string): ConfigIssue {
  return { file: e.file, document: e.document, resource: describe(e.resource), path, message };
}

export interface BuildResult {
  /** Undefined when `errors` is not empty: the configuration is rejected as a whole. */
  model: MeshModel | undefined;
  errors: ConfigIssue[];
  warnings: ConfigIssue[];
}

/**
 * Cross-document checks, then the model. Errors reject; warnings are reported and accepted.
 * With `previous` (the model being served), the new model keeps the per-node policy sets of the
 * nodes that the difference cannot affect: a change of workloads only touches their nodes (old and
 * new), while a changed Service or scoped policy can change every node's set. When only
 * WorkloadEntries changed, the checks that cannot change are skipped (incremental.ts): same result
 * as the full build (test/unit/controller/model-incremental.test.ts compares both), in a fraction
 * of the time at 10,000 workloads.
 */
export function buildModel(
  entries: readonly SourcedResource[],
  opts: ModelOptions = {},
  previous?: MeshModel,
): BuildResult {
  return (previous && buildIncrementally(entries, opts, previous)) ?? buildFully(entries, opts, previous);
}

/** Warnings of each model by entry key (only entries that have some), for the next incremental build. */
const warningsByKey = new WeakMap<MeshModel, ReadonlyMap<string, readonly ConfigIssue[]>>();
/** Each model's difference from the model it was built from (see modelDelta). */
const deltas = new WeakMap<MeshModel, { from: WeakRef<MeshModel>; delta: EntryDelta }>();

/**
 * What changed from `from` to `model`, when `model` was built from `from` (buildModel's `previous`);
 * undefined otherwise. The distribution diffs versions with it instead of comparing every entry.
 */
export function modelDelta(model: MeshModel, from: MeshModel): EntryDelta | undefined {
  const d = deltas.get(model);
  return d && d.from.deref() === from ? d.delta : undefined;
}

/** danglingReferences over every entry, in order, remembering each entry's warnings. */
function checkReferences(
  model: MeshModel,
  entries: ReadonlyMap<string, SourcedResource>,
  warnings: ConfigIssue[],
  reuse?: (e: SourcedResource) => readonly ConfigIssue[] | undefined,
): void {
  const byKey = new Map<string, readonly ConfigIssue[]>();
  for (const e of entries.values()) {
    if (e.resource.kind === "WorkloadEntry") continue; // no reference to check
    const start = warnings.length;
    const reused = reuse?.(e);
    if (reused) warnings.push(...reused);
    else danglingReferences(model, e, warnings);
    if (warnings.length > start) byKey.set(e.key, warnings.slice(start));
  }
  warningsByKey.set(model, byKey);
}

/**
 * The build when only WorkloadEntries changed since `previous` (see incremental.ts); undefined
 * when the full build must decide: another kind changed, a name is duplicated, an address is
 * claimed twice, or an ExternalService might now shadow a workload.
 */
function buildIncrementally(
  entries: readonly SourcedResource[],
  opts: ModelOptions,
  previous: MeshModel,
): BuildResult | undefined {
  const root = opts.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  if (previous.trustDomain !== (opts.trustDomain ?? DEFAULT_TRUST_DOMAIN) || previous.rootNamespace !== root)
    return undefined;
  const previousWarnings = warningsByKey.get(previous);
  if (!previousWarnings || previous.externalServices.length > 0) return undefined;
  const seen = new Map<string, SourcedResource>();
  for (const e of entries) {
    if (seen.has(e.key)) return undefined;
    seen.set(e.key, e);
  }
  const delta = entryDelta(seen, previous.entries);
  if (!workloadsOnly(delta) || !addressesStayUnique(delta, seen, previous)) return undefined;
  const changedNodes = new Set<string>();
  const touched = new Set<string>();
  for (const w of touchedWorkloads(delta, seen, previous.entries)) {
    changedNodes.add(w.spec.node);
    touched.add(w.metadata.namespace);
  }
  const model = new MeshModel(new KeyedEntries(seen), opts, { from: previous, changedNodes });
  deltas.set(model, { from: new WeakRef(previous), delta });
  const warnings: ConfigIssue[] = [];
  checkReferences(model, seen, warnings, (e) =>
    previous.entries.get(e.key) === e && !warningsDependOnWorkloads(e.resource, touched, root)
      ? (previousWarnings.get(e.key) ?? [])
      : undefined,
  );
  return { model, errors: [], warnings };
}

/** Every check over every entry: the first model, and any change the incremental build gives up on. */
function buildFully(
  entries: readonly SourcedResource[],
  opts: ModelOptions,
  previous: MeshModel | undefined,
): BuildResult {
  const errors: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const seen = new Map<string, SourcedResource>();
  const addresses = new Map<string, SourcedResource>();
  const vips = new Map<string, SourcedResource>();
  for (const e of entries) {
    const r = e.resource;
    const prev = seen.get(e.key);
    if (prev) {
      errors.push(
        issue(e, "metadata.name", `duplicate name: also defined in ${prev.file} document ${prev.document}`),
      );
      continue;
    }
    seen.set(e.key, e);
    if (r.kind === "WorkloadEntry") {
      const other = addresses.get(r.spec.address);
      if (other)
        errors.push(
          issue(
            e,
            "spec.address",
            `address ${r.spec.address} is already claimed by ${describe(other.resource)} (${other.file} document ${other.document})`,
          ),
        );
      else addresses.set(r.spec.address, e);
    } else if (r.kind === "Service") {
      for (const vip of r.spec.addresses)
        for (const p of r.spec.ports) {
          const other = vips.get(`${vip}:${p.port}`);
          if (other && other !== e)
            errors.push(
              issue(e, "spec.addresses", `${vip}:${p.port} is already served by ${describe(other.resource)}`),
            );
          else vips.set(`${vip}:${p.port}`, e);
        }
    }
  }
  gatewayPortConflicts(seen, errors);
  externalServiceConflicts(seen, (x, path, message) => errors.push(issue(x, path, message)));
  if (errors.length > 0) return { model: undefined, errors, warnings };
  const model = new MeshModel(new KeyedEntries(seen), opts, inheritance(seen, opts, previous));
  if (previous) deltas.set(model, { from: new WeakRef(previous), delta: entryDelta(seen, previous.entries) });
  checkReferences(model, seen, warnings);
  return { model, errors, warnings };
}

function inheritance(
  next: ReadonlyMap<string, SourcedResource>,
  opts: ModelOptions,
  previous: MeshModel | undefined,
): Inheritance | undefined {
  if (
    !previous ||
    previous.trustDomain !== (opts.trustDomain ?? DEFAULT_TRUST_DOMAIN) ||
    previous.rootNamespace !== (opts.rootNamespace ?? DEFAULT_ROOT_NAMESPACE)
  )
    return undefined;
  const changedNodes = new Set<string>();
  // Returns false when the change can affect every node.
  const local = (r: Resource, appearsOrGoes: boolean): boolean => {
    if (r.kind === "WorkloadEntry" || r.kind === "PendingWorkload" || r.kind === "UnmeshedPod")
      changedNodes.add(r.spec.node);
    // A Gateway's nodes get the TLSCertificates it names (old and new versions both pass here); one
    // that appears or goes changes the set of whichever node names it.
    if (r.kind === "Gateway") for (const n of gatewayNodes(r)) changedNodes.add(n);
    if (r.kind === "TLSCertificate" && appearsOrGoes) return false;
    // Routes, the FaultInjections they reference and RateLimitPolicies, like TrafficPolicies, go to every node and
    // change no node's policy set.
    return (
      r.kind === "WorkloadEntry" ||
      r.kind === "PendingWorkload" ||
      r.kind === "UnmeshedPod" ||
      r.kind === "TrafficPolicy" ||
      r.kind === "HTTPRoute" ||
      r.kind === "GRPCRoute" ||
      r.kind === "FaultInjection" ||
      r.kind === "RateLimitPolicy" ||
      r.kind === "Gateway" ||
      r.kind === "TLSCertificate" ||
      r.kind === "ExternalService"
    );
  };
  for (const [k, e] of next) {
    const old = previous.entries.get(k);
    if (old === e || (old && old.json === e.json)) continue;
    if (!local(e.resource, !old) || (old && !local(old.resource, false))) return undefined;
  }
  for (const [k, old] of previous.entries) if (!next.has(k) && !local(old.resource, true)) return undefined;
  return { from: previous, changedNodes };
}

/** Warnings for references that resolve to nothing; uses the model's indexes (no full scans). */
function danglingReferences(model: MeshModel, e: SourcedResource, out: ConfigIssue[]): void {
  const r = e.resource;
  if (r.kind === "WorkloadEntry") return;
  const inNs = (ns: string) =>
    ns === model.rootNamespace ? model.workloads : model.workloadsInNamespace(ns);
  if (r.kind === "Service" && r.spec.selector) {
    // Same answer as model.endpoints(r).length === 0, without building the endpoint list.
    const hasEndpoint = model
      .workloadsInNamespace(r.metadata.namespace)
      .some((w) => serviceSelects(r, w) && r.spec.ports.some((p) => resolveTargetPort(p, w) !== undefined));
    if (!hasEndpoint)
      out.push(
        issue(
          e,
          "spec.selector",
          "selector matches no workload in this namespace (the service has no endpoints)",
        ),
      );
  }
  if ((r.kind === "AuthorizationPolicy" || r.kind === "PeerAuthentication") && r.spec.selector) {
    const sel = r.spec.selector.matchLabels;
    if (!inNs(r.metadata.namespace).some((w) => selectorMatches(sel, w.spec.labels)))
      out.push(issue(e, "spec.selector", "selector matches no workload (the policy applies to nothing yet)"));
  }
  if (r.kind === "HTTPRoute" || r.kind === "GRPCRoute") routeReferences(model, e, r, out);
  if (r.kind === "RateLimitPolicy")
    for (const w of rateLimitReferences(r, (k) => model.entries.get(k)?.resource))
      out.push(issue(e, w.path, w.message));
  if (r.kind === "Gateway") gatewayReferences(model, e, r, out);
  if (r.kind === "ExternalService")
    externalServiceReferences(model, r, (path, message) => out.push(issue(e, path, message)));
  if (r.kind === "AuthorizationPolicy" || r.kind === "TrafficPolicy") {
    (r.spec.targetRefs ?? []).forEach((t, i) => {
      if (!model.entries.has(keyString({ kind: "Service", namespace: r.metadata.namespace, name: t.name })))
        out.push(
          issue(e, `spec.targetRefs[${i}]`, `service ${r.metadata.namespace}/${t.name} does not exist`),
        );
    });
  }
}

/**
 * Warnings for a route's dangling Service references. Both are accepted, as Kubernetes does: a
 * parentRef to a missing Service attaches to nothing yet, and a backendRef to a missing Service (or
 * to a kind the mesh cannot resolve) makes its share of the traffic answer 500 in the agent.
 */
function routeReferences(
  model: MeshModel,
  e: SourcedResource,
  r: HTTPRoute | GRPCRoute,
  out: ConfigIssue[],
): void {
  const ns = r.metadata.namespace;
  const service = (name: string, namespace: string | undefined) =>
    model.entries.get(keyString({ kind: "Service", namespace: namespace ?? ns, name }))?.resource as
      Service | undefined;
  r.spec.parentRefs.forEach((p, i) => {
    if (isGatewayParent(p)) return gatewayParent(model, e, r, i, out);
    const s = service(p.name, p.namespace);
    if (!s)
      out.push(
        issue(
          e,
          `spec.parentRefs[${i}]`,
          `service ${p.namespace ?? ns}/${p.name} does not exist (the route attaches to nothing yet)`,
        ),
      );
    else if (p.port !== undefined && !s.spec.ports.some((sp) => sp.port === p.port))
      out.push(
        issue(
          e,
          `spec.parentRefs[${i}].port`,
          `service ${p.namespace ?? ns}/${p.name} has no port ${p.port}`,
        ),
      );
    else if (p.sectionName !== undefined && !s.spec.ports.some((sp) => sp.name === p.sectionName))
      out.push(
        issue(
          e,
          `spec.parentRefs[${i}].sectionName`,
          `service ${p.namespace ?? ns}/${p.name} has no port named ${p.sectionName}`,
        ),
      );
  });
  faultReferences(model, e, r, out);
  (r.spec.rules as readonly { backendRefs?: readonly BackendObjectRef[] | undefined }[]).forEach((rule, i) =>
    (rule.backendRefs ?? []).forEach((b, j) => {
      const path = `spec.rules[${i}].backendRefs[${j}]`;
      if (!isCoreService(b))
        out.push(
          issue(
            e,
            path,
            `${b.kind}${b.group ? `.${b.group}` : ""} is not a Service; requests routed to it get 500`,
          ),
        );
      else if (!service(b.name, b.namespace))
        out.push(
          issue(
            e,
            path,
            `service ${b.namespace ?? ns}/${b.name} does not exist; requests routed to it get 500`,
          ),
        );
    }),
  );
}

type AnyFilter = HttpRouteFilter | GrpcRouteFilter;
interface FilteredRule {
  filters?: readonly AnyFilter[] | undefined;
  backendRefs?: readonly { filters?: readonly AnyFilter[] | undefined }[] | undefined;
}

/** Warnings for ExtensionRefs to a FaultInjection that does not exist (the agent answers 500 for them). */
function faultReferences(
  model: MeshModel,
  e: SourcedResource,
  r: HTTPRoute | GRPCRoute,
  out: ConfigIssue[],
): void {
  const ns = r.metadata.namespace;
  const check = (filters: readonly AnyFilter[] | undefined, path: string) =>
    (filters ?? []).forEach((f, k) => {
      const ref = f.type === "ExtensionRef" ? f.extensionRef : undefined;
      if (ref && !model.entries.has(keyString({ kind: "FaultInjection", namespace: ns, name: ref.name })))
        out.push(
          issue(
            e,
            `${path}.filters[${k}].extensionRef`,
            `FaultInjection ${ns}/${ref.name} does not exist; requests this filter applies to get 500`,
          ),
        );
    });
  (r.spec.rules as readonly FilteredRule[]).forEach((rule, i) => {
    check(rule.filters, `spec.rules[${i}]`);
    (rule.backendRefs ?? []).forEach((b, j) => check(b.filters, `spec.rules[${i}].backendRefs[${j}]`));
  });
}

/** Two of our Gateways on one node cannot both listen on one port (the second bind would fail). */
function gatewayPortConflicts(entries: ReadonlyMap<string, SourcedResource>, errors: ConfigIssue[]): void {
  const taken = new Map<string, SourcedResource>();
  for (const e of entries.values()) {
    const g = e.resource;
    if (g.kind !== "Gateway" || !isOurGateway(g)) continue;
    const ports = new Set(g.spec.listeners.map((l) => l.port));
    for (const node of gatewayNodes(g))
      for (const port of ports) {
        const other = taken.get(`${node}:${port}`);
        if (other)
          errors.push(
            issue(
              e,
              "spec.listeners",
              `port ${port} on node ${node} is already used by ${describe(other.resource)} (${other.file} document ${other.document})`,
            ),
          );
        else taken.set(`${node}:${port}`, e);
      }
  }
}

/** Warnings for a Gateway another implementation owns, and for certificateRefs that resolve to nothing. */
function gatewayReferences(model: MeshModel, e: SourcedResource, g: Gateway, out: ConfigIssue[]): void {
  const ns = g.metadata.namespace;
  if (!isOurGateway(g))
    out.push(
      issue(
        e,
        "spec.gatewayClassName",
        `gatewayClassName ${g.spec.gatewayClassName} is not "nodemesh": no agent runs this Gateway`,
      ),
    );
  g.spec.listeners.forEach((l, i) =>
    (l.tls?.certificateRefs ?? []).forEach((c, j) => {
      const cns = c.namespace ?? ns;
      if (!model.entries.has(keyString({ kind: "TLSCertificate", namespace: cns, name: c.name })))
        out.push(
          issue(
            e,
            `spec.listeners[${i}].tls.certificateRefs[${j}]`,
            `TLSCertificate ${cns}/${c.name} does not exist (the listener has no certificate until it does)`,
          ),
        );
    }),
  );
}

/** Warnings for a route's Gateway parent that is missing or that no listener of it accepts. */
function gatewayParent(
  model: MeshModel,
  e: SourcedResource,
  r: HTTPRoute | GRPCRoute,
  i: number,
  out: ConfigIssue[],
): void {
  const p = r.spec.parentRefs[i];
  if (!p) return;
  const ns = p.namespace ?? r.metadata.namespace;
  const g = model.entries.get(keyString({ kind: "Gateway", namespace: ns, name: p.name }))?.resource as
    Gateway | undefined;
  const path = `spec.parentRefs[${i}]`;
  if (!g) {
    out.push(issue(e, path, `gateway ${ns}/${p.name} does not exist (the route attaches to nothing yet)`));
    return;
  }
  const attached = attachToGateway(r, p, g);
  if (attached.length === 0)
    out.push(issue(e, path, `gateway ${ns}/${p.name} has no listener of that sectionName/port`));
  else if (attached.every((a) => "refused" in a))
    out.push(issue(e, path, attached.map((a) => ("refused" in a ? a.refused : "")).join("; ")));
}

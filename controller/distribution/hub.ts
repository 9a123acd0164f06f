// Versions of the mesh configuration and the messages that carry them to one node.
// Every accepted model becomes a Version `<epoch>-<seq>`; the epoch is random per controller start,
// so a version from before a restart is unknown and the agent gets a full snapshot. The hub keeps
// the last `historySize` versions for resume, and builds per-node NDJSON messages:
// - services, workloads, TrafficPolicies, RateLimitPolicies (callers mark the route rules they
//   target), HTTPRoutes, GRPCRoutes, FaultInjections, Gateways and ExternalServices go to every node
//   (agents route to anything, and a route applies wherever its clients run);
// - AuthorizationPolicies and PeerAuthentications only to nodes with a workload they apply to;
//   TLSCertificates (which may carry a private key) only to the nodes that run a Gateway naming them;
//   PendingWorkloads (pods without an IP yet) and UnmeshedPods (pods not in the mesh, for the CNI
//   plugin) only to their own node, like a policy view; UnmeshedPods only to sessions whose agent
//   announced the kind (controller/api/features.ts): an older agent's strict schema would refuse them.
// Resource JSON is computed once per resource (by the file source) and spliced, never re-serialised.
//
// Work is shared by "view": the set of scoped policies a node needs. A snapshot is assembled once
// per (version, view, encoding) and a delta once per (from, to, old view, new view, encoding); the
// big pieces (services, workloads, TrafficPolicies) once per (version, encoding). With 100 nodes in
// 50 views, a change costs 50 delta lines instead of 100, and a full sync of 100 agents one
// compression of the workloads instead of 100 (see deflate.ts for the `deflate` encoding).
//
// Invariants: a Version is immutable; `current` only moves forward; everything cached per version
// lives in a WeakMap keyed by the Version (dropped with it), diffs in a bounded map.
import { EventEmitter } from "node:events";
import { randomBytes } from "node:crypto";
import type { Kind, ResourceKey } from "../api/index.ts";
import { modelDelta } from "../model/model.ts";
import type { MeshModel } from "../model/model.ts";
import { entryDelta } from "../model/incremental.ts";
import { workloadRow } from "../api/workload-rows.ts";
import { deflatedSegment, encodePiece, storedBlocks } from "./deflate.ts";

/** How a session's response body is encoded: plain NDJSON, or one zlib stream (deflate.ts). */
export type StreamEncoding = "identity" | "deflate";

export interface Version {
  readonly id: string;
  readonly model: MeshModel;
  readonly trustBundle: readonly string[];
  /** performance.now() when published: push latency is measured from here to the agent's ACK. */
  readonly createdAt: number;
}

/** Scoped kinds are filtered per node; the others go everywhere. */
const SCOPED: ReadonlySet<Kind> = new Set([
  "AuthorizationPolicy",
  "PeerAuthentication",
  "PendingWorkload",
  "TLSCertificate",
  "UnmeshedPod",
]);
type ScopedKind =
  "AuthorizationPolicy" | "PeerAuthentication" | "PendingWorkload" | "TLSCertificate" | "UnmeshedPod";

interface GlobalDiff {
  /** Changed or new keys of every kind. */
  changed: ReadonlySet<string>;
  /** Removed keys of non-scoped kinds (scoped removals are decided per node). */
  removed: ResourceKey[];
  bundleChanged: boolean;
  /** `${old view}|${new view}` → the delta line (without newline), and its encoded form. */
  lines: Map<string, { text: string; deflate?: Buffer }>;
}

/** The pieces every node gets, as JSON arrays, per encoding. */
interface SharedPieces {
  services: Buffer;
  workloads: Buffer;
  trafficPolicies: Buffer;
  httpRoutes: Buffer;
  grpcRoutes: Buffer;
  faultInjections: Buffer;
  rateLimitPolicies: Buffer;
  gateways: Buffer;
  externalServices: Buffer;
}

interface VersionCache {
  pieces: Partial<Record<StreamEncoding, SharedPieces>>;
  /** The workloads as `workloadRows` (controller/api/workload-rows.ts), per encoding, once asked for. */
  rows: Partial<Record<StreamEncoding, Buffer>>;
  /** view → the whole snapshot line, per encoding (`<encoding>+rows` with workload rows). */
  snapshots: Map<string, Partial<Record<string, (string | Buffer)[]>>>;
}

/** A view's cache key: the node's scoped policy keys (the Set objects are shared between nodes
 * and inherited between models, so the string is built once per Set). */
const viewKeys = new WeakMap<ReadonlySet<string>, string>();
const filteredViews = new WeakMap<ReadonlySet<string>, ReadonlySet<string>>();

/** `set` without UnmeshedPod keys unless `keep` (cached per set, so viewKey's cache still applies). */
function withoutUnmeshed(set: ReadonlySet<string>, keep: boolean): ReadonlySet<string> {
  if (keep) return set;
  let out = filteredViews.get(set);
  if (!out) {
    out = new Set([...set].filter((k) => kindOf(k) !== "UnmeshedPod"));
    filteredViews.set(set, out);
  }
  return out;
}

function viewKey(set: ReadonlySet<string>): string {
  let k = viewKeys.get(set);
  if (k === undefined) {
    k = [...set].join("\n");
    viewKeys.set(set, k);
  }
  return k;
}

function kindOf(key: string): Kind {
  return key.slice(0, key.indexOf("/")) as Kind;
}

function parseKey(key: string): ResourceKey {
  const [kind, namespace, name] = key.split("/") as [Kind, string, string];
  return { kind, namespace, name };
}

export interface HubEvents {
  publish: [version: Version];
}

export class ConfigHub extends EventEmitter<HubEvents> {
  readonly epoch: string;
  readonly #historySize: number;
  readonly #history = new Map<string, Version>();
  readonly #diffs = new Map<string, GlobalDiff>();
  readonly #cache = new WeakMap<Version, VersionCache>();
  #seq = 0;
  #current: Version | undefined;

  constructor(opts: { historySize?: number; epoch?: string } = {}) {
    super();
    this.setMaxListeners(0);
    this.#historySize = opts.historySize ?? 16;
    this.epoch = opts.epoch ?? randomBytes(4).toString("hex");
  }

  get current(): Version | undefined {
    return this.#current;
  }

  find(id: string): Version | undefined {
    return this.#history.get(id);
  }

  publish(model: MeshModel, trustBundle: readonly string[]): Version {
    this.#seq += 1;
    const v: Version = { id: `${this.epoch}-${this.#seq}`, model, trustBundle, createdAt: performance.now() };
    this.#history.set(v.id, v);
    for (const old of this.#history.keys()) {
      if (this.#history.size <= this.#historySize) break;
      this.#history.delete(old);
    }
    const first = this.#current === undefined;
    this.#current = v;
    // The first version is published before the agent endpoint listens (app.ts), and every agent
    // then needs a snapshot at once (a controller restart): compress the shared pieces now rather
    // than on the first agent's request. Later versions go out as deltas; their pieces stay lazy.
    if (first) this.#pieces(v, this.#versionCache(v), "deflate");
    this.emit("publish", v);
    return v;
  }

  /**
   * The full configuration as `node` sees it, as the pieces of one NDJSON line (newline included),
   * encoded for the session. The pieces are shared by every session of this version and view (the
   * HTTP/2 stream keeps a reference to a written Buffer instead of copying it), so 100 agents
   * syncing at once hold one copy, not 100. With `rows` (the agent sent the workload-rows feature),
   * the workloads go as `workloadRows`. Without `unmeshedPods` (an agent that predates the kind) the
   * snapshot has no `unmeshedPods` field: its strict schema would refuse the whole config.
   */
  snapshotParts(
    v: Version,
    node: string,
    encoding: StreamEncoding = "identity",
    rows = false,
    unmeshedPods = true,
  ): (string | Buffer)[] {
    const cache = this.#versionCache(v);
    const scoped = v.model.policyKeysForNode(node);
    const view = viewKey(scoped);
    let byEnc = cache.snapshots.get(view);
    if (!byEnc) {
      byEnc = {};
      cache.snapshots.set(view, byEnc);
    }
    const slot = `${encoding}${rows ? "+rows" : ""}${unmeshedPods ? "" : "-unmeshed"}`;
    const cached = byEnc[slot];
    if (cached) return cached;
    const shared = this.#pieces(v, cache, encoding);
    const workloadsKey = rows ? `,"workloadRows":` : `,"workloads":`;
    const workloads = rows ? this.#rows(v, cache, encoding) : shared.workloads;
    const pick = (kind: Kind) => {
      const out: string[] = [];
      for (const k of scoped) if (kindOf(k) === kind) out.push(v.model.entries.get(k)?.json ?? "null");
      return `[${out.join(",")}]`;
    };
    const head =
      `{"type":"snapshot","config":{"version":${JSON.stringify(v.id)}` +
      `,"trustDomain":${JSON.stringify(v.model.trustDomain)},"rootNamespace":${JSON.stringify(v.model.rootNamespace)}` +
      `,"outboundTrafficPolicy":${JSON.stringify(v.model.outboundTrafficPolicy)}` +
      `,"trustBundle":${JSON.stringify(v.trustBundle)},"services":`;
    const policies =
      `,"authorizationPolicies":${pick("AuthorizationPolicy")},"peerAuthentications":${pick("PeerAuthentication")}` +
      `,"pendingWorkloads":${pick("PendingWorkload")},"tlsCertificates":${pick("TLSCertificate")}` +
      (unmeshedPods ? `,"unmeshedPods":${pick("UnmeshedPod")}` : "") +
      `,"trafficPolicies":`;
    const parts =
      encoding === "identity"
        ? [
            head,
            shared.services,
            workloadsKey,
            workloads,
            policies,
            shared.trafficPolicies,
            `,"httpRoutes":`,
            shared.httpRoutes,
            `,"grpcRoutes":`,
            shared.grpcRoutes,
            `,"faultInjections":`,
            shared.faultInjections,
            `,"rateLimitPolicies":`,
            shared.rateLimitPolicies,
            `,"gateways":`,
            shared.gateways,
            `,"externalServices":`,
            shared.externalServices,
            "}}\n",
          ]
        : [
            storedBlocks(head),
            shared.services,
            storedBlocks(workloadsKey),
            workloads,
            encodePiece(policies),
            shared.trafficPolicies,
            storedBlocks(`,"httpRoutes":`),
            shared.httpRoutes,
            storedBlocks(`,"grpcRoutes":`),
            shared.grpcRoutes,
            storedBlocks(`,"faultInjections":`),
            shared.faultInjections,
            storedBlocks(`,"rateLimitPolicies":`),
            shared.rateLimitPolicies,
            storedBlocks(`,"gateways":`),
            shared.gateways,
            storedBlocks(`,"externalServices":`),
            shared.externalServices,
            storedBlocks("}}\n"),
          ];
    byEnc[slot] = parts;
    return parts;
  }

  /** The version's workloads as one `workloadRows` array, encoded (built on first use). */
  #rows(v: Version, cache: VersionCache, encoding: StreamEncoding): Buffer {
    const have = cache.rows[encoding];
    if (have) return have;
    const out: string[] = [];
    for (const w of v.model.workloads) out.push(JSON.stringify(workloadRow(w)));
    const json = `[${out.join(",")}]`;
    const bytes = encoding === "identity" ? Buffer.from(json) : deflatedSegment(json);
    cache.rows[encoding] = bytes;
    return bytes;
  }

  /** snapshotParts() as one string without the newline (tests, debugging). */
  snapshotMessage(v: Version, node: string): string {
    return this.snapshotParts(v, node)
      .map((p) => p.toString())
      .join("")
      .trimEnd();
  }

  /** One NDJSON line: what `node` needs to go from `from` to `to` (possibly no resource at all). */
  deltaMessage(from: Version, to: Version, node: string, unmeshedPods = true): string {
    return this.#deltaLine(from, to, node, unmeshedPods).text;
  }

  /** deltaMessage() with its newline, encoded for the session (shared by the nodes of a view). */
  deltaBytes(
    from: Version,
    to: Version,
    node: string,
    encoding: StreamEncoding,
    unmeshedPods = true,
  ): string | Buffer {
    const line = this.#deltaLine(from, to, node, unmeshedPods);
    if (encoding === "identity") return `${line.text}\n`;
    line.deflate ??= encodePiece(`${line.text}\n`);
    return line.deflate;
  }

  /** `unmeshedPods` false: no UnmeshedPod upsert or removal (an agent that predates the kind). */
  #deltaLine(
    from: Version,
    to: Version,
    node: string,
    unmeshedPods: boolean,
  ): { text: string; deflate?: Buffer } {
    const d = this.#diff(from, to);
    const oldScoped = withoutUnmeshed(from.model.policyKeysForNode(node), unmeshedPods);
    const newScoped = withoutUnmeshed(to.model.policyKeysForNode(node), unmeshedPods);
    const key = `${viewKey(oldScoped)}|${viewKey(newScoped)}${unmeshedPods ? "" : "|-unmeshed"}`;
    let line = d.lines.get(key);
    if (line) return line;
    const upserts: string[] = [];
    const removals: ResourceKey[] = [...d.removed];
    for (const k of d.changed) {
      if (SCOPED.has(kindOf(k)) && !newScoped.has(k)) continue;
      upserts.push(to.model.entries.get(k)?.json ?? "null");
    }
    for (const k of newScoped)
      if (!oldScoped.has(k) && !d.changed.has(k)) upserts.push(to.model.entries.get(k)?.json ?? "null");
    for (const k of oldScoped) if (!newScoped.has(k)) removals.push(parseKey(k));
    const bundle = d.bundleChanged ? `,"trustBundle":${JSON.stringify(to.trustBundle)}` : "";
    line = {
      text:
        `{"type":"delta","delta":{"fromVersion":${JSON.stringify(from.id)},"toVersion":${JSON.stringify(to.id)}` +
        `,"upserts":[${upserts.join(",")}],"removals":${JSON.stringify(removals)}${bundle}}}`,
    };
    d.lines.set(key, line);
    return line;
  }

  #versionCache(v: Version): VersionCache {
    let c = this.#cache.get(v);
    if (!c) {
      c = { pieces: {}, rows: {}, snapshots: new Map() };
      this.#cache.set(v, c);
    }
    return c;
  }

  #pieces(v: Version, cache: VersionCache, encoding: StreamEncoding): SharedPieces {
    const have = cache.pieces[encoding];
    if (have) return have;
    const lists: Record<Exclude<Kind, ScopedKind>, string[]> = {
      Service: [],
      WorkloadEntry: [],
      TrafficPolicy: [],
      HTTPRoute: [],
      GRPCRoute: [],
      FaultInjection: [],
      RateLimitPolicy: [],
      Gateway: [],
      ExternalService: [],
    };
    for (const e of v.model.entries.values()) {
      const k = e.resource.kind;
      if (!SCOPED.has(k)) lists[k as Exclude<Kind, ScopedKind>].push(e.json);
    }
    const encode = (list: string[]) => {
      const json = `[${list.join(",")}]`;
      return encoding === "identity" ? Buffer.from(json) : deflatedSegment(json);
    };
    const pieces = {
      services: encode(lists.Service),
      workloads: encode(lists.WorkloadEntry),
      trafficPolicies: encode(lists.TrafficPolicy),
      httpRoutes: encode(lists.HTTPRoute),
      grpcRoutes: encode(lists.GRPCRoute),
      faultInjections: encode(lists.FaultInjection),
      rateLimitPolicies: encode(lists.RateLimitPolicy),
      gateways: encode(lists.Gateway),
      externalServices: encode(lists.ExternalService),
    };
    cache.pieces[encoding] = pieces;
    return pieces;
  }

  #diff(from: Version, to: Version): GlobalDiff {
    const id = `${from.id}>${to.id}`;
    let d = this.#diffs.get(id);
    if (d) return d;
    // A model built from the other one knows its delta: no pass over 10,000 entries per change.
    const known = modelDelta(to.model, from.model) ?? entryDelta(to.model.entries, from.model.entries);
    const changed = known.changed;
    const removed: ResourceKey[] = [];
    for (const k of known.removed) if (!SCOPED.has(kindOf(k))) removed.push(parseKey(k));
    const bundleChanged =
      from.trustBundle.length !== to.trustBundle.length ||
      from.trustBundle.some((p, i) => p !== to.trustBundle[i]);
    d = { changed, removed, bundleChanged, lines: new Map() };
    this.#diffs.set(id, d);
    if (this.#diffs.size > 64) {
      const first = this.#diffs.keys().next().value;
      if (first !== undefined) this.#diffs.delete(first);
    }
    return d;
  }
}

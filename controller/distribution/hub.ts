// Versions of the mesh configuration and the messages that carry them to one node.
// Every accepted model becomes a Version `<epoch>-<seq>`; the epoch is random per controller start,
// so a version from before a restart is unknown and the agent gets a full snapshot. The hub keeps
// the last `historySize` versions for resume, and builds per-node NDJSON messages:
// - services, workloads and TrafficPolicies go to every node (agents route to anything);
// - AuthorizationPolicies and PeerAuthentications only to nodes with a workload they apply to.
// Resource JSON is computed once per resource (by the file source) and spliced, never re-serialised.
//
// Invariants: a Version is immutable; `current` only moves forward; diffs between two versions are
// computed once and cached (every session that lags by the same versions shares the work).
import { EventEmitter } from "node:events";
import { randomBytes } from "node:crypto";
import type { Kind, ResourceKey } from "../api/index.ts";
import type { MeshModel } from "../model/model.ts";

export interface Version {
  readonly id: string;
  readonly model: MeshModel;
  readonly trustBundle: readonly string[];
  /** performance.now() when published: push latency is measured from here to the agent's ACK. */
  readonly createdAt: number;
}

/** Scoped kinds are filtered per node; the others go everywhere. */
const SCOPED: ReadonlySet<Kind> = new Set(["AuthorizationPolicy", "PeerAuthentication"]);

interface GlobalDiff {
  /** Changed or new keys of every kind. */
  changed: Set<string>;
  /** Removed keys of non-scoped kinds (scoped removals are decided per node). */
  removed: ResourceKey[];
  bundleChanged: boolean;
}

interface SharedJson {
  services: Buffer;
  workloads: Buffer;
  trafficPolicies: Buffer;
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
  readonly #shared = new WeakMap<Version, SharedJson>();
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
    this.#current = v;
    this.emit("publish", v);
    return v;
  }

  /**
   * The full configuration as `node` sees it, as the pieces of one NDJSON line (newline included).
   * The big pieces (services, workloads, TrafficPolicies) are Buffers shared by every session of
   * this version, so 100 agents syncing at once hold one copy, not 100 (the HTTP/2 stream keeps a
   * reference to a written Buffer instead of copying it).
   */
  snapshotParts(v: Version, node: string): (string | Buffer)[] {
    const shared = this.#sharedJson(v);
    const scoped = v.model.policyKeysForNode(node);
    const pick = (kind: Kind) => {
      const out: string[] = [];
      for (const k of scoped) if (kindOf(k) === kind) out.push(v.model.entries.get(k)?.json ?? "null");
      return `[${out.join(",")}]`;
    };
    return [
      `{"type":"snapshot","config":{"version":${JSON.stringify(v.id)}` +
        `,"trustDomain":${JSON.stringify(v.model.trustDomain)},"rootNamespace":${JSON.stringify(v.model.rootNamespace)}` +
        `,"trustBundle":${JSON.stringify(v.trustBundle)},"services":`,
      shared.services,
      `,"workloads":`,
      shared.workloads,
      `,"authorizationPolicies":${pick("AuthorizationPolicy")},"peerAuthentications":${pick("PeerAuthentication")}` +
        `,"trafficPolicies":`,
      shared.trafficPolicies,
      "}}\n",
    ];
  }

  /** snapshotParts() as one string without the newline (tests, debugging). */
  snapshotMessage(v: Version, node: string): string {
    return this.snapshotParts(v, node)
      .map((p) => p.toString())
      .join("")
      .trimEnd();
  }

  /** One NDJSON line: what `node` needs to go from `from` to `to` (possibly no resource at all). */
  deltaMessage(from: Version, to: Version, node: string): string {
    const d = this.#diff(from, to);
    const upserts: string[] = [];
    const removals: ResourceKey[] = [...d.removed];
    const oldScoped = from.model.policyKeysForNode(node);
    const newScoped = to.model.policyKeysForNode(node);
    for (const k of d.changed) {
      if (SCOPED.has(kindOf(k)) && !newScoped.has(k)) continue;
      upserts.push(to.model.entries.get(k)?.json ?? "null");
    }
    for (const k of newScoped)
      if (!oldScoped.has(k) && !d.changed.has(k)) upserts.push(to.model.entries.get(k)?.json ?? "null");
    for (const k of oldScoped) if (!newScoped.has(k)) removals.push(parseKey(k));
    const bundle = d.bundleChanged ? `,"trustBundle":${JSON.stringify(to.trustBundle)}` : "";
    return (
      `{"type":"delta","delta":{"fromVersion":${JSON.stringify(from.id)},"toVersion":${JSON.stringify(to.id)}` +
      `,"upserts":[${upserts.join(",")}],"removals":${JSON.stringify(removals)}${bundle}}}`
    );
  }

  #sharedJson(v: Version): SharedJson {
    let s = this.#shared.get(v);
    if (!s) {
      const lists: Record<"Service" | "WorkloadEntry" | "TrafficPolicy", string[]> = {
        Service: [],
        WorkloadEntry: [],
        TrafficPolicy: [],
      };
      for (const e of v.model.entries.values()) {
        const k = e.resource.kind;
        if (k === "Service" || k === "WorkloadEntry" || k === "TrafficPolicy") lists[k].push(e.json);
      }
      s = {
        services: Buffer.from(`[${lists.Service.join(",")}]`),
        workloads: Buffer.from(`[${lists.WorkloadEntry.join(",")}]`),
        trafficPolicies: Buffer.from(`[${lists.TrafficPolicy.join(",")}]`),
      };
      this.#shared.set(v, s);
    }
    return s;
  }

  #diff(from: Version, to: Version): GlobalDiff {
    const id = `${from.id}>${to.id}`;
    let d = this.#diffs.get(id);
    if (d) return d;
    const changed = new Set<string>();
    const removed: ResourceKey[] = [];
    for (const [k, e] of to.model.entries) {
      const old = from.model.entries.get(k);
      if (!old || (old !== e && old.json !== e.json)) changed.add(k);
    }
    for (const k of from.model.entries.keys()) {
      if (!to.model.entries.has(k) && !SCOPED.has(kindOf(k))) removed.push(parseKey(k));
    }
    const bundleChanged =
      from.trustBundle.length !== to.trustBundle.length ||
      from.trustBundle.some((p, i) => p !== to.trustBundle[i]);
    d = { changed, removed, bundleChanged };
    this.#diffs.set(id, d);
    if (this.#diffs.size > 64) {
      const first = this.#diffs.keys().next().value;
      if (first !== undefined) this.#diffs.delete(first);
    }
    return d;
  }
}

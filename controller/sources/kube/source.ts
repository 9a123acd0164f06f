// The Kubernetes source: informers on Namespaces, Pods, Services, Nodes (declared node addresses,
// nodes.ts), `kubernetes.io/tls` Secrets (tls-secrets.ts) and the custom kinds the server serves
// (kinds.ts), mapped to mesh resources (map.ts, gateway.ts) and validated with controller/api one
// object at a time. Discovery is repeated so CRDs installed after start are picked up. A Secret
// enters the mesh only as the TLSCertificate of a Gateway listener that names it.
//
// Invariants: `read()` returns, per object, its last valid mapping: an object that turns invalid
// keeps its previous version in the mesh (or stays out if it never was valid) and is reported in
// its status and an Event; the snapshot itself never carries issues, so one bad object cannot
// block everyone else's changes. Two pods holding one IP (an address being reused while the old
// pod's status lags) never reach the model together: the newest wins. Status is written only while
// `statusWriter` is enabled (the leader, when replicas elect one).
import { ApisApi, CoreV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import type {
  KubernetesListObject,
  V1Namespace,
  V1Node,
  V1Pod,
  V1Secret,
  V1Service,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import { formatIssue, keyString, validateDocument } from "../../api/index.ts";
import type { Kind } from "../../api/index.ts";
import type { SourcedResource } from "../../model/model.ts";
import type { Source, SourceSnapshot, SourceVerdict } from "../source.ts";
import { Watched, describe } from "./informers.ts";
import type { ChangeKind } from "./informers.ts";
import { discover, kindKey } from "./kinds.ts";
import { mapCustom, mapPod, mapService } from "./map.ts";
import { nodeAddresses } from "./nodes.ts";
import type { KubeObject, Mapped } from "./map.ts";
import { verdictOf } from "./verdict.ts";
import { gatewayVerdict, mapGateway } from "./gateway.ts";
import { TlsSecrets, gatewayNames } from "./tls-secrets.ts";
import { entryOf } from "./tracked.ts";
import type { Tracked } from "./tracked.ts";
import { StatusWriter } from "./status.ts";
import type { CustomKind } from "./status.ts";

export interface KubeSourceOptions {
  kubeConfig: KubeConfig;
  log: Logger;
  /** Pod name or hostname, for Events' reportingInstance. */
  instance: string;
  /** Batches bursts of watch events into one reload; default 50ms. */
  debounceMs?: number;
  /** How often to look for newly installed CRDs; default 30s. */
  rediscoverMs?: number;
  /** Whether this replica writes status and Events (the leader); default true. */
  writeStatus?: () => boolean;
  backoffMs?: { initial: number; max: number };
  /**
   * Namespaces whose TLS Secrets may serve Gateway listeners (the chart's Roles grant exactly these);
   * empty or absent: every namespace (a ClusterRole).
   */
  secretNamespaces?: readonly string[];
}

/** Loads a kubeconfig file, or the default chain (KUBECONFIG, ~/.kube/config, in-cluster). */
export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new Error("kubeconfig has no current cluster; pass --kubeconfig");
  return kc;
}

export class KubeSource implements Source {
  readonly kind = "kube";
  readonly holdsMassRemovals = false;
  readonly #opts: KubeSourceOptions;
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #apis: ApisApi;
  readonly status: StatusWriter;
  readonly #tracked = new Map<string, Tracked>();
  readonly #customWatches = new Map<string, Watched<KubeObject>>();
  #namespaces: Watched<V1Namespace> | undefined;
  #pods: Watched<V1Pod> | undefined;
  #services: Watched<V1Service> | undefined;
  #nodes: Watched<V1Node> | undefined;
  #onNodes: ((nodes: Readonly<Record<string, readonly string[]>>) => void) | undefined;
  #nodesTimer: NodeJS.Timeout | undefined;
  #nodesSent = "";
  readonly #secrets: TlsSecrets;
  #onChange: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #rediscover: NodeJS.Timeout | undefined;
  #started = false;

  constructor(opts: KubeSourceOptions) {
    this.#opts = opts;
    this.#core = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.#custom = opts.kubeConfig.makeApiClient(CustomObjectsApi);
    this.#apis = opts.kubeConfig.makeApiClient(ApisApi);
    this.status = new StatusWriter(this.#custom, this.#core, opts.log, opts.instance);
    this.#secrets = new TlsSecrets({
      kubeConfig: opts.kubeConfig,
      core: this.#core,
      log: opts.log,
      namespaces: opts.secretNamespaces,
      backoffMs: opts.backoffMs,
      onChange: (secret) => this.#secretChanged(secret),
    });
  }

  async start(onChange: () => void): Promise<void> {
    const core = this.#core;
    this.#namespaces = this.#watch(
      "namespaces",
      "/api/v1/namespaces",
      () => core.listNamespace(),
      (k, ns) => this.#namespaceChanged(k, ns),
    );
    this.#pods = this.#watch(
      "pods",
      "/api/v1/pods",
      () => core.listPodForAllNamespaces(),
      (k, p) => this.#map(k, "WorkloadEntry", p, () => mapPod(p, this.#ns(p))),
    );
    this.#services = this.#watch(
      "services",
      "/api/v1/services",
      () => core.listServiceForAllNamespaces(),
      (k, s) => {
        this.#map(k, "Service", s, () => mapService(s, this.#ns(s)));
        // A route's Accepted and ResolvedRefs depend on which Services exist.
        if (k !== "update") this.#reportRoutes();
      },
    );
    // Node addresses are not configuration: start() does not wait for them (agents report theirs too).
    this.#nodes = this.#watch(
      "nodes",
      "/api/v1/nodes",
      () => core.listNode(),
      () => this.#nodesChanged(),
    );
    this.#nodes.start();
    // Namespaces first: pods and services are mapped against their namespace's labels.
    this.#namespaces.start();
    await this.#namespaces.synced;
    this.#pods.start();
    this.#services.start();
    // Secrets before Gateways: a Gateway's certificates are resolved when it is mapped.
    await this.#secrets.start();
    await this.#discoverAndWatch();
    await Promise.all([
      this.#pods.synced,
      this.#services.synced,
      ...[...this.#customWatches.values()].map((w) => w.synced),
    ]);
    this.#onChange = onChange;
    this.#started = true;
    this.#rediscover = setInterval(() => void this.#discoverAndWatch(), this.#opts.rediscoverMs ?? 30_000);
    this.#rediscover.unref();
  }

  watchNodeAddresses(onChange: (nodes: Readonly<Record<string, readonly string[]>>) => void): void {
    this.#onNodes = onChange;
    this.#nodesChanged();
  }

  /** Batched like config changes: the initial list is one "add" per Node. */
  #nodesChanged(): void {
    clearTimeout(this.#nodesTimer);
    this.#nodesTimer = setTimeout(() => {
      const book = nodeAddresses(this.#nodes?.list() ?? []);
      const sig = JSON.stringify(book);
      if (sig === this.#nodesSent || !this.#onNodes) return;
      this.#nodesSent = sig;
      this.#onNodes(book);
    }, this.#opts.debounceMs ?? 50);
  }

  read(): SourceSnapshot {
    const byAddress = new Map<string, Tracked>();
    const entries: SourcedResource[] = [];
    for (const t of this.#tracked.values()) {
      if (!t.entry) continue;
      const r = t.entry.resource;
      if (r.kind === "WorkloadEntry") {
        const prev = byAddress.get(r.spec.address);
        if (prev && created(prev.obj) >= created(t.obj)) continue;
        byAddress.set(r.spec.address, t);
      } else entries.push(t.entry);
    }
    for (const t of byAddress.values()) if (t.entry) entries.push(t.entry);
    return { entries, issues: [] };
  }

  report(verdict: SourceVerdict): void {
    if (verdict.accepted || !this.#writes()) return;
    for (const e of verdict.errors) {
      const t = this.#tracked.get(e.file);
      if (!t) continue;
      const v = { accepted: false, reason: "Conflicted", message: formatIssue(e) };
      if (t.kind) this.status.report(t.kind, t.obj, v);
      else this.status.warn(t.obj, objectKind(t.entry?.resource.kind), v.reason, v.message);
    }
  }

  /** Writes the status of every custom object again: a replica that just became leader catches up. */
  reportAll(): void {
    this.#remapCustom(() => true);
  }

  #reportRoutes(): void {
    // Consumer routes in other namespaces may name the Service too, so every route is judged again.
    if (this.#started) this.#remapCustom((k) => k.route);
  }

  #remapCustom(which: (k: CustomKind) => boolean): void {
    for (const t of [...this.#tracked.values()]) {
      const k = t.kind;
      if (k && which(k)) this.#map("update", k.kind as Kind, t.obj, () => mapKind(t.obj, k), k);
    }
  }

  #syncCertificates(): void {
    if (this.#secrets.sync(this.#tracked)) this.#changed();
  }

  #secretChanged(secret: V1Secret): void {
    if (!this.#started) return; // start() maps the Gateways after the Secrets are listed
    // Gateways not in the mesh yet (never valid) name Secrets too: their status must follow.
    if (!gatewayNames(this.#tracked, secret)) return;
    this.#syncCertificates();
    this.#remapCustom((k) => k.gateway === true); // their Programmed condition
  }

  async close(): Promise<void> {
    clearTimeout(this.#timer);
    clearTimeout(this.#nodesTimer);
    clearInterval(this.#rediscover);
    const all = [this.#namespaces, this.#pods, this.#services, this.#nodes, ...this.#customWatches.values()];
    await Promise.all([...all.map((w) => w?.stop()), this.#secrets.stop()]);
    await this.status.flush();
  }

  #writes(): boolean {
    return this.#opts.writeStatus?.() ?? true;
  }

  #watch<T extends KubeObject>(
    name: string,
    path: string,
    list: () => Promise<KubernetesListObject<T>>,
    onChange: (k: ChangeKind, o: T) => void,
  ): Watched<T> {
    return new Watched<T>(this.#opts.kubeConfig, {
      name,
      path,
      list,
      onChange,
      log: this.#opts.log,
      ...(this.#opts.backoffMs ? { backoffMs: this.#opts.backoffMs } : {}),
    });
  }

  async #discoverAndWatch(): Promise<void> {
    let found;
    try {
      found = await discover(this.#apis);
    } catch (err) {
      this.#opts.log.warn({ err: describe(err) }, "kubernetes API discovery failed; will retry");
      return;
    }
    if (!this.#started && found.missing.length > 0)
      this.#opts.log.warn({ missing: found.missing }, "some mesh kinds are not served by this API server");
    for (const k of found.kinds) {
      const key = kindKey(k);
      if (this.#customWatches.has(key)) continue;
      const w = this.#watch<KubeObject>(
        key,
        `/apis/${k.group}/${k.version}/${k.plural}`,
        () => this.#custom.listClusterCustomObject({ group: k.group, version: k.version, plural: k.plural }),
        (change, o) => this.#map(change, k.kind as Kind, o, () => mapKind(o, k), k),
      );
      this.#customWatches.set(key, w);
      w.start();
      if (this.#started)
        this.#opts.log.info({ kind: k.kind, version: k.version }, "now watching a newly served kind");
    }
  }

  #ns(o: KubeObject): V1Namespace | undefined {
    return this.#namespaces?.get(o.metadata?.namespace ?? "");
  }

  #namespaceChanged(_k: ChangeKind, ns: V1Namespace): void {
    const name = ns.metadata?.name ?? "";
    // Enrolment is applied and removed live: re-map the namespace's pods and services.
    for (const p of this.#pods?.list(name) ?? [])
      this.#map("update", "WorkloadEntry", p, () => mapPod(p, this.#ns(p)));
    for (const s of this.#services?.list(name) ?? [])
      this.#map("update", "Service", s, () => mapService(s, this.#ns(s)));
  }

  #map(change: ChangeKind, kind: Kind, obj: KubeObject, mapped: () => Mapped, custom?: CustomKind): void {
    const md = obj.metadata ?? {};
    const key = keyString({ kind, namespace: md.namespace ?? "default", name: md.name ?? "" });
    const prev = this.#tracked.get(key);
    if (change === "delete") {
      if (this.#tracked.delete(key) && prev?.entry) this.#changed();
      if (custom?.gateway) this.#syncCertificates();
      return;
    }
    const m = mapped();
    if ("skip" in m) {
      if (custom && !custom.gateway) return; // custom kinds never skip; another class's Gateway does
      this.#tracked.delete(key);
      if (prev?.entry) this.#changed();
      if (custom?.gateway) this.#syncCertificates();
      return;
    }
    const r = validateDocument(m.doc, key, 1);
    if (r.ok) {
      const entry = entryOf(r, key, prev?.entry);
      this.#tracked.set(key, { entry, obj, kind: custom });
      if (entry !== prev?.entry) this.#changed();
    } else {
      // Keep the last good version: an edit that breaks a policy must not drop the policy.
      this.#tracked.set(key, { entry: prev?.entry, obj, kind: custom });
    }
    if (custom?.gateway) this.#syncCertificates();
    if (!this.#writes()) return;
    let v = verdictOf(
      r,
      obj,
      custom,
      prev?.entry !== undefined,
      (name, ns) => this.#services?.get(name, ns) !== undefined,
    );
    if (custom?.gateway)
      v = gatewayVerdict(obj, v.accepted ? { ok: true } : { ok: false, message: v.message }, (ns, n) =>
        this.#secrets.problem(ns, n),
      );
    if (custom) this.status.report(custom, obj, v);
    else if (!v.accepted) this.status.warn(obj, kind === "Service" ? "Service" : "Pod", v.reason, v.message);
  }

  #changed(): void {
    if (!this.#onChange) return; // initial sync: start() returns, then the controller reads once
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#onChange?.(), this.#opts.debounceMs ?? 50);
  }
}

function created(o: KubeObject): number {
  const t: unknown = o.metadata?.creationTimestamp;
  return t instanceof Date || typeof t === "string" ? new Date(t).getTime() : 0;
}

/** Gateway API kinds served as v1beta1 are validated as v1: the fields the mesh reads did not change. */
function withApiVersion(o: KubeObject, k: CustomKind): KubeObject {
  return (k.route || k.gateway) && k.version !== "v1" ? { ...o, apiVersion: `${k.group}/v1` } : o;
}

function mapKind(o: KubeObject, k: CustomKind): Mapped {
  const obj = withApiVersion(o, k);
  return k.gateway ? mapGateway(obj) : mapCustom(obj, k.route);
}

/** The Kubernetes kind behind a mesh resource the source maps from a built-in object. */
function objectKind(kind: string | undefined): string {
  if (kind === "Service") return "Service";
  if (kind === "TLSCertificate") return "Secret";
  return "Pod";
}

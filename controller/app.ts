// The controller's composition root: file source → model → hub → agent stream server + CA,
// and the monitoring server (/metrics, /healthz, /readyz). A configuration that fails validation
// or the cross-document checks is rejected as a whole; the last good one keeps being served.
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { formatIssue } from "./api/index.ts";
import { CertificateAuthority } from "./ca/ca.ts";
import { DEFAULT_MAX_REMOVAL_PERCENT, removalHold } from "./config-guard.ts";
import type { SessionLimits } from "./distribution/limits.ts";
import type { ConfigRejectReason } from "./errors.ts";
import { loadRoot } from "./ca/root.ts";
import type { RootSource } from "./ca/root.ts";
import { ConfigHub } from "./distribution/hub.ts";
import type { Version } from "./distribution/hub.ts";
import type { NodeAuthenticator } from "./distribution/node-auth.ts";
import { StreamServer } from "./distribution/server.ts";
import { globalLimitsOf, type GlobalLimit } from "./api/index.ts";
import { GlobalRateLimitBalancer } from "./ratelimit/balancer.ts";
import { FileConfigSource } from "./sources/file.ts";
import type { Source } from "./sources/source.ts";
import { ControllerMetrics } from "./metrics.ts";
import type { OutboundTrafficPolicy } from "./api/index.ts";
import { buildModel } from "./model/model.ts";

export interface ControllerOptions {
  /** YAML file or directory (the file source); ignored when `source` is given. */
  configPath?: string;
  /** Where configuration comes from; default: a FileConfigSource on `configPath`. */
  source?: Source;
  listen: { host: string; port: number };
  monitoring: { host: string; port: number } | undefined;
  ca: RootSource;
  trustDomain: string;
  rootNamespace: string;
  /** Mesh-wide outbound traffic policy sent to every agent (docs/egress.md); default ALLOW_ANY. */
  outboundTrafficPolicy?: OutboundTrafficPolicy;
  svidTtlMs: number;
  /** token → node. */
  nodeTokens: ReadonlyMap<string, string>;
  /** Checks tokens that are not in `nodeTokens` (`--node-auth tokenreview`); else they are refused. */
  nodeAuthenticator?: NodeAuthenticator;
  /** SANs of the controller's serving certificate (agents connect to one of these). */
  serverNames: { dns: string[]; ips: string[] };
  heartbeatMs?: number;
  log: Logger;
  /** A change removing more than this share of the resources waits for SIGHUP (config-guard.ts). */
  maxRemovalPercent?: number;
  /** Quiet time before a changed file is read (file-settle.ts). */
  settleMs?: number;
  /** Limits of the agent endpoint (distribution/limits.ts); defaults for the rest. */
  sessionLimits?: Partial<SessionLimits>;
  /** How often the global rate limits are re-split between their serving nodes (default 2 s). */
  globalRateLimitIntervalMs?: number;
  /** Tests run several controllers in one process; keep default process metrics off there. */
  defaultMetrics?: boolean;
}

/** Lifetime of the controller's own serving certificate; renewed at half-life. */
const SERVING_CERT_TTL_MS = 30 * 24 * 3600_000;

export interface ReloadResult {
  accepted: boolean;
  version: string | undefined;
  errors: string[];
  warnings: string[];
  /** Why it was not applied (accepted: false). */
  reason?: ConfigRejectReason;
}

export class ControllerApp {
  readonly metrics: ControllerMetrics;
  readonly hub = new ConfigHub();
  readonly ca: CertificateAuthority;
  readonly #opts: ControllerOptions;
  readonly #source: Source;
  readonly #server: StreamServer;
  readonly #balancer: GlobalRateLimitBalancer;
  /** The global limits of each served model, computed at its first split. */
  readonly #globalLimits = new WeakMap<object, readonly GlobalLimit[]>();
  #monitoring: http.Server | undefined;
  #renew: NodeJS.Timeout | undefined;
  #listening = false;
  streamAddress: AddressInfo | undefined;
  monitoringAddress: AddressInfo | undefined;

  constructor(opts: ControllerOptions) {
    this.#opts = opts;
    this.metrics = new ControllerMetrics({ defaultMetrics: opts.defaultMetrics ?? true });
    this.ca = new CertificateAuthority(loadRoot(opts.ca, opts.trustDomain), {
      trustDomain: opts.trustDomain,
      svidTtlMs: opts.svidTtlMs,
    });
    this.#source = opts.source ?? this.#fileSource(opts);
    this.#server = new StreamServer({
      hub: this.hub,
      ca: this.ca,
      tokens: opts.nodeTokens,
      authenticate: opts.nodeAuthenticator,
      metrics: this.metrics,
      log: opts.log,
      tls: this.ca.issueServing(opts.serverNames, SERVING_CERT_TTL_MS),
      heartbeatMs: opts.heartbeatMs ?? 10_000,
      limits: opts.sessionLimits,
    });
    this.#balancer = new GlobalRateLimitBalancer({ intervalMs: opts.globalRateLimitIntervalMs });
    this.#server.onDemand = (node, report) => this.#balancer.report(node, report);
    this.#source.watchNodeAddresses?.((nodes) => this.#server.declareNodeAddresses(nodes));
  }

  #fileSource(opts: ControllerOptions): Source {
    if (!opts.configPath) throw new Error("ControllerOptions: configPath or source is required");
    return new FileConfigSource(opts.configPath, {
      settleMs: opts.settleMs,
      onUnstable: (ms) => {
        this.metrics.configRejections.inc({ reason: "unstable" });
        opts.log.warn(
          { file: opts.configPath, reason: "unstable" },
          `still being written after ${ms} ms; waiting`,
        );
      },
    });
  }

  get stream(): StreamServer {
    return this.#server;
  }

  get ready(): boolean {
    return this.#listening && this.hub.current !== undefined;
  }

  async start(): Promise<void> {
    const { log } = this.#opts;
    await this.#source.start(() => this.reload());
    this.reload();
    this.streamAddress = await this.#server.listen(this.#opts.listen.host, this.#opts.listen.port);
    this.#listening = true;
    this.#renew = setInterval(
      () => this.#server.setCertificate(this.ca.issueServing(this.#opts.serverNames, SERVING_CERT_TTL_MS)),
      SERVING_CERT_TTL_MS / 2,
    );
    this.#renew.unref();
    this.#balancer.start({
      limits: () => this.#currentGlobalLimits(),
      send: (node, message) => void this.#server.sendShares(node, message),
      rebalanced: () => this.metrics.globalRateLimitRebalances.inc(),
    });
    if (this.#opts.monitoring) this.monitoringAddress = await this.#startMonitoring(this.#opts.monitoring);
    log.info(
      {
        listen: this.streamAddress,
        monitoring: this.monitoringAddress,
        trustDomain: this.#opts.trustDomain,
        nodes: new Set(this.#opts.nodeTokens.values()).size,
        nodeAuth: this.#opts.nodeAuthenticator ? "tokenreview" : "tokens",
      },
      "controller started",
    );
  }

  /**
   * Re-reads the configuration; publishes a new version only when it is valid and changed, and
   * (unless `force`, the operator's SIGHUP) neither empty nor a mass removal (config-guard.ts).
   */
  reload(opts: { force?: boolean } = {}): ReloadResult {
    const { log } = this.#opts;
    const read = this.#source.read({ force: opts.force });
    const built =
      read.issues.length === 0 ? buildModel(read.entries, this.#opts, this.hub.current?.model) : undefined;
    const issues = [...read.issues, ...(built?.errors ?? [])];
    const errors = issues.map(formatIssue);
    if (errors.length > 0 || !built?.model) {
      this.#source.report?.({ accepted: false, version: this.hub.current?.id, errors: issues, warnings: [] });
      return this.#reject(read.reason ?? "invalid", errors);
    }
    const percent = this.#opts.maxRemovalPercent ?? DEFAULT_MAX_REMOVAL_PERCENT;
    const hold =
      opts.force || !this.#source.holdsMassRemovals
        ? undefined
        : removalHold(this.hub.current?.model.entries, built.model.entries, percent);
    if (hold) return this.#reject("mass_removal", [hold.message]);
    this.metrics.configLastReloadOk.set(1);
    const warnings = built.warnings.map(formatIssue);
    for (const w of warnings) log.warn(w);
    this.metrics.configWarnings.set(warnings.length);
    this.metrics.configReloads.inc({ result: "accepted" });
    const model = built.model;
    for (const [kind, list] of Object.entries({
      Service: model.services,
      WorkloadEntry: model.workloads,
      AuthorizationPolicy: model.authorizationPolicies,
      PeerAuthentication: model.peerAuthentications,
      TrafficPolicy: model.trafficPolicies,
      HTTPRoute: model.httpRoutes,
      GRPCRoute: model.grpcRoutes,
    }))
      this.metrics.configResources.set({ kind }, list.length);
    const cur = this.hub.current;
    if (cur && sameEntries(cur, model.entries))
      return { accepted: true, version: cur.id, errors: [], warnings };
    const v = this.hub.publish(model, this.ca.trustBundle);
    log.info({ version: v.id, resources: model.entries.size }, "configuration accepted");
    return { accepted: true, version: v.id, errors: [], warnings };
  }

  #reject(reason: ConfigRejectReason, errors: string[]): ReloadResult {
    const { log, configPath } = this.#opts;
    this.metrics.configReloads.inc({ result: "rejected" });
    this.metrics.configRejections.inc({ reason });
    this.metrics.configLastReloadOk.set(0);
    if (reason !== "mass_removal") this.metrics.configErrors.inc(errors.length);
    const serving = this.hub.current?.id ?? null;
    // A write in progress is expected and read again once it settles: not an error.
    const level = reason === "unstable" ? "warn" : "error";
    log[level](
      { file: configPath, reason, errors, serving },
      `configuration ${reason === "mass_removal" ? "held back" : "rejected"} (${reason}, ${errors.length} ` +
        `${errors.length === 1 ? "error" : "errors"}); still serving the last good one`,
    );
    return { accepted: false, version: this.hub.current?.id, errors, warnings: [], reason };
  }

  /** Re-reads the CA files (root rotation) and pushes the new trust bundle to agents. */
  reloadCa(): void {
    this.ca.setRoot(loadRoot(this.#opts.ca, this.#opts.trustDomain));
    this.#server.setCertificate(this.ca.issueServing(this.#opts.serverNames, SERVING_CERT_TTL_MS));
    const cur = this.hub.current;
    if (cur) this.hub.publish(cur.model, this.ca.trustBundle);
    this.#opts.log.info({ roots: this.ca.trustBundle.length }, "CA reloaded; trust bundle pushed to agents");
  }

  async stop(): Promise<void> {
    await this.#source.close();
    clearInterval(this.#renew);
    this.#balancer.stop();
    await this.#server.close();
    await new Promise<void>((resolve) =>
      this.#monitoring ? this.#monitoring.close(() => resolve()) : resolve(),
    );
    this.#monitoring?.closeAllConnections();
    this.#listening = false;
  }

  #currentGlobalLimits(): readonly GlobalLimit[] {
    const model = this.hub.current?.model;
    if (!model) return [];
    let limits = this.#globalLimits.get(model);
    if (!limits) {
      limits = globalLimitsOf(model);
      this.#globalLimits.set(model, limits);
    }
    return limits;
  }

  #startMonitoring(at: { host: string; port: number }): Promise<AddressInfo> {
    const server = http.createServer((req, res) => {
      const path = req.url?.split("?")[0];
      if (path === "/metrics" || path === "/stats/prometheus") {
        this.metrics.registry.metrics().then(
          (text) => res.writeHead(200, { "content-type": this.metrics.registry.contentType }).end(text),
          (err: Error) => res.writeHead(500).end(err.message),
        );
      } else if (path === "/healthz") {
        res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      } else if (path === "/readyz") {
        const ok = this.ready;
        res
          .writeHead(ok ? 200 : 503, { "content-type": "text/plain" })
          .end(ok ? `ready ${this.hub.current?.id}\n` : "not ready: no valid configuration loaded yet\n");
      } else {
        res.writeHead(404).end("not found\n");
      }
    });
    this.#monitoring = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(at.port, at.host, () => resolve(server.address() as AddressInfo));
    });
  }
}

function sameEntries(v: Version, entries: ReadonlyMap<string, { json: string }>): boolean {
  const old = v.model.entries;
  if (old.size !== entries.size) return false;
  for (const [k, e] of entries) if (old.get(k)?.json !== e.json) return false;
  return true;
}

// The controller's composition root: file source → model → hub → agent stream server + CA,
// and the monitoring server (/metrics, /healthz, /readyz). A configuration that fails validation
// or the cross-document checks is rejected as a whole; the last good one keeps being served.
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { formatIssue } from "./api/index.ts";
import { CertificateAuthority } from "./ca/ca.ts";
import { loadRoot } from "./ca/root.ts";
import type { RootSource } from "./ca/root.ts";
import { ConfigHub } from "./distribution/hub.ts";
import type { Version } from "./distribution/hub.ts";
import { StreamServer } from "./distribution/server.ts";
import { FileSource } from "./file-source.ts";
import { ControllerMetrics } from "./metrics.ts";
import { buildModel } from "./model/model.ts";

export interface ControllerOptions {
  /** YAML file or directory. */
  configPath: string;
  listen: { host: string; port: number };
  monitoring: { host: string; port: number } | undefined;
  ca: RootSource;
  trustDomain: string;
  rootNamespace: string;
  svidTtlMs: number;
  /** token → node. */
  nodeTokens: ReadonlyMap<string, string>;
  /** SANs of the controller's serving certificate (agents connect to one of these). */
  serverNames: { dns: string[]; ips: string[] };
  heartbeatMs?: number;
  log: Logger;
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
}

export class ControllerApp {
  readonly metrics: ControllerMetrics;
  readonly hub = new ConfigHub();
  readonly ca: CertificateAuthority;
  readonly #opts: ControllerOptions;
  readonly #source: FileSource;
  readonly #server: StreamServer;
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
    this.#source = new FileSource(opts.configPath);
    this.#server = new StreamServer({
      hub: this.hub,
      ca: this.ca,
      tokens: opts.nodeTokens,
      metrics: this.metrics,
      log: opts.log,
      tls: this.ca.issueServing(opts.serverNames, SERVING_CERT_TTL_MS),
      heartbeatMs: opts.heartbeatMs ?? 10_000,
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
    this.reload();
    this.#source.watch(() => this.reload());
    this.streamAddress = await this.#server.listen(this.#opts.listen.host, this.#opts.listen.port);
    this.#listening = true;
    this.#renew = setInterval(
      () => this.#server.setCertificate(this.ca.issueServing(this.#opts.serverNames, SERVING_CERT_TTL_MS)),
      SERVING_CERT_TTL_MS / 2,
    );
    this.#renew.unref();
    if (this.#opts.monitoring) this.monitoringAddress = await this.#startMonitoring(this.#opts.monitoring);
    log.info(
      {
        listen: this.streamAddress,
        monitoring: this.monitoringAddress,
        trustDomain: this.#opts.trustDomain,
        nodes: new Set(this.#opts.nodeTokens.values()).size,
      },
      "controller started",
    );
  }

  /** Re-reads the configuration; publishes a new version only when it is valid and changed. */
  reload(): ReloadResult {
    const { log } = this.#opts;
    const read = this.#source.read();
    const built =
      read.issues.length === 0 ? buildModel(read.entries, this.#opts, this.hub.current?.model) : undefined;
    const errors = [...read.issues, ...(built?.errors ?? [])].map(formatIssue);
    if (errors.length > 0 || !built?.model) {
      this.metrics.configReloads.inc({ result: "rejected" });
      this.metrics.configErrors.inc(errors.length);
      log.error(
        { errors, serving: this.hub.current?.id ?? null },
        `configuration rejected (${errors.length} errors); still serving the last good one`,
      );
      return { accepted: false, version: this.hub.current?.id, errors, warnings: [] };
    }
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
    }))
      this.metrics.configResources.set({ kind }, list.length);
    const cur = this.hub.current;
    if (cur && sameEntries(cur, model.entries))
      return { accepted: true, version: cur.id, errors: [], warnings };
    const v = this.hub.publish(model, this.ca.trustBundle);
    log.info({ version: v.id, resources: model.entries.size }, "configuration accepted");
    return { accepted: true, version: v.id, errors: [], warnings };
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
    this.#source.close();
    clearInterval(this.#renew);
    await this.#server.close();
    await new Promise<void>((resolve) =>
      this.#monitoring ? this.#monitoring.close(() => resolve()) : resolve(),
    );
    this.#monitoring?.closeAllConnections();
    this.#listening = false;
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

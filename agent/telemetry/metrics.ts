// L4 metrics (prom-client, one Registry per agent, never the global one) with Istio's label names, and
// the access log line per closed connection. A connection is described by one ConnRecord, filled as the
// connection proceeds and finished once: opened → (failed | closed), bytes counted at close from the
// sockets' own counters (no per-chunk work).
//
// CPU: prom-client hashes the label object on every `inc` (keys sorted and joined), five times per
// connection and reporter. Connections are instead added up in a Map keyed by the label values (one
// string join per event) and handed to the counters when they are collected (a scrape), so the
// exported series and values are the same and the per-connection cost is a Map lookup.
//
// Byte direction follows Istio: `received` = bytes from the client towards the server (request side),
// `sent` = bytes from the server back to the client (response side), for both reporters.
//
// Memory: prom-client's index (and its default-metrics module) pulls in `@opentelemetry/api` for
// exemplars of one CPU counter, ~7 MiB of RSS on an idle agent (measured with /proc/self/smaps). The
// agent loads prom-client's Registry, Counter and Gauge and each default metric directly, and builds the
// three process CPU counters itself (same names and help), so nothing pulls that in.
import { createRequire } from "node:module";
import type * as PromClient from "prom-client";
import type { Logger } from "../log.ts";
import { SecurityCounters } from "./security.ts";
import { TapHub } from "./tap.ts";

type DefaultMetric = (registry: PromClient.Registry, config: object) => void;
const require = createRequire(import.meta.url);
const { Counter, Gauge, Registry } = {
  Counter: require("prom-client/lib/counter.js") as typeof PromClient.Counter,
  Gauge: require("prom-client/lib/gauge.js") as typeof PromClient.Gauge,
  Registry: require("prom-client/lib/registry.js") as typeof PromClient.Registry,
};
type Counter<T extends string> = PromClient.Counter<T>;
type Gauge<T extends string> = PromClient.Gauge<T>;
/** prom-client's default metrics but `processCpuTotal` (see above), in its order. */
const DEFAULT_METRICS = [
  "processStartTime",
  "osMemoryHeap",
  "processOpenFileDescriptors",
  "processMaxFileDescriptors",
  "eventLoopLag",
  "processResources",
  "processHandles",
  "processRequests",
  "heapSizeAndUsed",
  "heapSpacesSizeAndUsed",
  "version",
  "gc",
] as const;

export const TCP_LABELS = [
  "reporter",
  "source_workload",
  "source_workload_namespace",
  "source_principal",
  "destination_service",
  "destination_workload",
  "destination_workload_namespace",
  "destination_principal",
  "connection_security_policy",
  "response_flags",
] as const;
export type TcpLabelName = (typeof TCP_LABELS)[number];
export type TcpLabels = Record<TcpLabelName, string>;

/** Counts of one label set not yet handed to the prom-client counters. */
interface PendingSeries {
  readonly labels: TcpLabels;
  opened: number;
  closed: number;
  failed: number;
  sent: number;
  received: number;
}

/** One proxied connection, as seen by one reporter. Mutable until `finish`. */
export interface ConnRecord {
  readonly labels: TcpLabels;
  readonly direction: "outbound" | "inbound";
  readonly start: number;
  srcAddr: string;
  dstAddr: string;
  /** Address:port of the HBONE tunnel (outbound) — `dst.hbone_addr` in the log. */
  hboneAddr: string;
  /** Client → server bytes and server → client bytes, set before finish. */
  received: number;
  sent: number;
  /** Why it failed or was closed early; "" for a normal close. */
  reason: string;
  opened: boolean;
}

export class AgentMetrics {
  readonly registry = new Registry();
  /** `nodemesh tap`'s stream of finished connections (and, through app.ts, requests); idle = one check. */
  readonly tap = new TapHub();
  /** What the inbound tunnel refused before policy: TLS handshakes, unauthenticated sources. */
  readonly security = new SecurityCounters(this.registry);
  readonly #opened: Counter<TcpLabelName>;
  readonly #closed: Counter<TcpLabelName>;
  readonly #failed: Counter<TcpLabelName>;
  readonly #sent: Counter<TcpLabelName>;
  readonly #received: Counter<TcpLabelName>;
  readonly #certExpiry: Gauge<"spiffe_id">;
  readonly #access: Logger;
  #pending = new Map<string, PendingSeries>();

  constructor(opts: { version: string; node: string; access: Logger; defaultMetrics?: boolean }) {
    const registers = [this.registry];
    const flush = () => this.#flush();
    const counter = (name: string, help: string) =>
      new Counter({ name, help, labelNames: TCP_LABELS, registers, collect: flush });
    this.#opened = counter(
      "nodemesh_tcp_connections_opened_total",
      "TCP connections opened through the mesh.",
    );
    this.#closed = counter(
      "nodemesh_tcp_connections_closed_total",
      "TCP connections closed through the mesh.",
    );
    this.#failed = counter(
      "nodemesh_tcp_connections_failed_total",
      "TCP connections that failed (no endpoint, tunnel failure, policy denial).",
    );
    this.#sent = counter(
      "nodemesh_tcp_sent_bytes_total",
      "Bytes sent by the server side (response direction).",
    );
    this.#received = counter(
      "nodemesh_tcp_received_bytes_total",
      "Bytes received from the client side (request direction).",
    );
    this.#certExpiry = new Gauge({
      name: "nodemesh_identity_cert_expiration_timestamp_seconds",
      help: "NotAfter of the current workload certificate, as a Unix timestamp.",
      labelNames: ["spiffe_id"],
      registers,
    });
    new Gauge({
      name: "nodemesh_build_info",
      help: "Build information of the running agent (always 1).",
      labelNames: ["version", "component", "node"],
      registers,
    }).set({ version: opts.version, component: "agent", node: opts.node }, 1);
    if (opts.defaultMetrics !== false) {
      processCpuCounters(this.registry);
      const config = { register: this.registry, eventLoopMonitoringPrecision: 10 };
      for (const name of DEFAULT_METRICS) {
        (require(`prom-client/lib/metrics/${name}.js`) as DefaultMetric)(this.registry, config);
      }
      // Gauges named *_total: promtool (and Prometheus naming rules) reject them.
      for (const name of [
        "nodejs_active_handles_total",
        "nodejs_active_requests_total",
        "nodejs_active_resources_total",
      ]) {
        this.registry.removeSingleMetric(name);
      }
    }
    this.#access = opts.access;
  }

  /** A record for a new connection; counts it as opened only once `opened()` is called. */
  record(direction: "outbound" | "inbound", labels: TcpLabels, srcAddr: string, dstAddr: string): ConnRecord {
    return {
      labels,
      direction,
      start: performance.now(),
      srcAddr,
      dstAddr,
      hboneAddr: "",
      received: 0,
      sent: 0,
      reason: "",
      opened: false,
    };
  }

  opened(rec: ConnRecord): void {
    rec.opened = true;
    this.#series(rec.labels).opened++;
  }

  /** Ends a record: closed (if it was opened) or failed, byte counters, one access log line. */
  finish(rec: ConnRecord, failed: boolean): void {
    const s = this.#series(rec.labels);
    if (failed) s.failed++;
    if (rec.opened) s.closed++;
    s.received += rec.received;
    s.sent += rec.sent;
    if (this.tap.active) this.tap.connection(rec, failed);
    if (!this.#access.isLevelEnabled("info")) return;
    const l = rec.labels;
    this.#access.info(
      {
        direction: rec.direction,
        "src.addr": rec.srcAddr,
        "src.workload": l.source_workload,
        "src.namespace": l.source_workload_namespace,
        "src.identity": l.source_principal,
        "dst.addr": rec.dstAddr,
        "dst.hbone_addr": rec.hboneAddr || undefined,
        "dst.service": l.destination_service,
        "dst.workload": l.destination_workload,
        "dst.namespace": l.destination_workload_namespace,
        "dst.identity": l.destination_principal,
        bytes_recv: rec.received,
        bytes_sent: rec.sent,
        duration: Math.round((performance.now() - rec.start) * 1000) / 1000,
        response_flags: l.response_flags || undefined,
        error: rec.reason || undefined,
      },
      failed ? "connection failed" : "connection complete",
    );
  }

  /** The pending counts of `labels` (as they are now: labels may change during a connection). */
  #series(labels: TcpLabels): PendingSeries {
    const key = seriesKey(labels);
    let s = this.#pending.get(key);
    if (!s) {
      s = { labels: { ...labels }, opened: 0, closed: 0, failed: 0, sent: 0, received: 0 };
      this.#pending.set(key, s);
    }
    return s;
  }

  /** Hands the pending counts to the counters (called by each counter's collect, i.e. per scrape). */
  #flush(): void {
    if (this.#pending.size === 0) return;
    const pending = this.#pending;
    this.#pending = new Map();
    for (const s of pending.values()) {
      if (s.opened > 0) this.#opened.inc(s.labels, s.opened);
      if (s.closed > 0) this.#closed.inc(s.labels, s.closed);
      if (s.failed > 0) this.#failed.inc(s.labels, s.failed);
      if (s.received > 0) this.#received.inc(s.labels, s.received);
      if (s.sent > 0) this.#sent.inc(s.labels, s.sent);
    }
  }

  setCertExpiry(spiffeId: string, notAfterMs: number): void {
    this.#certExpiry.set({ spiffe_id: spiffeId }, Math.floor(notAfterMs / 1000));
  }

  /**
   * nodemesh_plaintext_refused_total: plaintext connection attempts the datapath refused for STRICT
   * workloads. The kernel keeps running totals; `read` returns them at scrape time and the counter
   * follows them (a total that went backwards, e.g. after a reinstall, starts the series again).
   */
  plaintextRefused(read: () => { workload: string; namespace: string; count: number }[]): void {
    const seen = new Map<string, number>();
    const counter: Counter<"destination_workload" | "destination_workload_namespace"> = new Counter({
      name: "nodemesh_plaintext_refused_total",
      help: "Plaintext connection attempts to STRICT workloads refused by the datapath (PeerAuthentication).",
      labelNames: ["destination_workload", "destination_workload_namespace"],
      registers: [this.registry],
      collect() {
        for (const r of read()) {
          const labels = { destination_workload: r.workload, destination_workload_namespace: r.namespace };
          const key = `${r.namespace}/${r.workload}`;
          const last = seen.get(key) ?? 0;
          if (r.count < last) counter.remove(labels);
          const delta = r.count < last ? r.count : r.count - last;
          if (delta > 0 || !seen.has(key)) counter.inc(labels, delta);
          seen.set(key, r.count);
        }
      },
    });
  }

  removeCert(spiffeId: string): void {
    this.#certExpiry.remove({ spiffe_id: spiffeId });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** process_cpu_{user,system}_seconds_total and process_cpu_seconds_total, as prom-client defines them. */
function processCpuCounters(registry: PromClient.Registry): void {
  let last = process.cpuUsage();
  const registers = [registry];
  new Counter({
    name: "process_cpu_user_seconds_total",
    help: "Total user CPU time spent in seconds.",
    registers,
    // One collect sets all three, as prom-client does.
    collect() {
      const now = process.cpuUsage();
      const user = (now.user - last.user) / 1e6;
      const sys = (now.system - last.system) / 1e6;
      last = now;
      this.inc(user);
      system.inc(sys);
      total.inc(user + sys);
    },
  });
  const system = new Counter({
    name: "process_cpu_system_seconds_total",
    help: "Total system CPU time spent in seconds.",
    registers,
  });
  const total = new Counter({
    name: "process_cpu_seconds_total",
    help: "Total user and system CPU time spent in seconds.",
    registers,
  });
}

/** The label values in TCP_LABELS order, NUL-separated (a value never holds a NUL). */
function seriesKey(l: TcpLabels): string {
  return `${l.reporter}\0${l.source_workload}\0${l.source_workload_namespace}\0${l.source_principal}\0${l.destination_service}\0${l.destination_workload}\0${l.destination_workload_namespace}\0${l.destination_principal}\0${l.connection_security_policy}\0${l.response_flags}`;
}

export function unknownLabels(reporter: "source" | "destination"): TcpLabels {
  return {
    reporter,
    source_workload: "unknown",
    source_workload_namespace: "unknown",
    source_principal: "unknown",
    destination_service: "unknown",
    destination_workload: "unknown",
    destination_workload_namespace: "unknown",
    destination_principal: "unknown",
    connection_security_policy: "mutual_tls",
    response_flags: "-",
  };
}

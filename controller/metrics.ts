// Controller metrics (prom-client, own registry so tests can run several controllers in-process).
// Names follow Prometheus conventions: nodemesh_controller_ prefix, _total counters, _seconds.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import {
  CONFIG_REJECT_REASONS,
  CSR_REJECT_REASONS,
  SESSION_CLOSE_REASONS,
  SESSION_REFUSE_REASONS,
} from "./errors.ts";

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly connectedAgents: Gauge;
  readonly pushes: Counter<"type">;
  readonly pushLatency: Histogram;
  readonly acks: Counter<"result">;
  readonly csrSigned: Counter;
  readonly csrRejected: Counter<"reason">;
  readonly configReloads: Counter<"result">;
  readonly configErrors: Counter;
  readonly configWarnings: Gauge;
  readonly configResources: Gauge<"kind">;
  readonly configRejections: Counter<"reason">;
  readonly configLastReloadOk: Gauge;
  readonly pendingSessions: Gauge;
  readonly sessionsRefused: Counter<"reason">;
  readonly sessionsClosed: Counter<"reason">;
  readonly globalRateLimitRebalances: Counter;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.connectedAgents = new Gauge({
      name: "nodemesh_controller_connected_agents",
      help: "Agents with an open config stream",
      registers,
    });
    this.pushes = new Counter({
      name: "nodemesh_controller_pushes_total",
      help: "Config messages written to agents, by type (snapshot, delta)",
      labelNames: ["type"],
      registers,
    });
    this.pushLatency = new Histogram({
      name: "nodemesh_controller_push_latency_seconds",
      help: "Time from a configuration version being accepted to an agent acknowledging it",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.acks = new Counter({
      name: "nodemesh_controller_acks_total",
      help: "Version acknowledgements from agents, by result (ack, nack)",
      labelNames: ["result"],
      registers,
    });
    this.csrSigned = new Counter({
      name: "nodemesh_controller_csr_signed_total",
      help: "Workload certificates issued",
      registers,
    });
    this.csrRejected = new Counter({
      name: "nodemesh_controller_csr_rejected_total",
      help: "CSRs refused, by reason",
      labelNames: ["reason"],
      registers,
    });
    for (const reason of CSR_REJECT_REASONS) this.csrRejected.inc({ reason }, 0);
    this.configReloads = new Counter({
      name: "nodemesh_controller_config_reloads_total",
      help: "Configuration loads, by result (accepted, rejected)",
      labelNames: ["result"],
      registers,
    });
    this.configErrors = new Counter({
      name: "nodemesh_controller_config_errors_total",
      help: "Errors found in rejected configurations (each names file, document, field and reason in the log)",
      registers,
    });
    this.configWarnings = new Gauge({
      name: "nodemesh_controller_config_warnings",
      help: "Warnings in the configuration being served (selectors matching nothing, dangling refs)",
      registers,
    });
    this.configResources = new Gauge({
      name: "nodemesh_controller_config_resources",
      help: "Resources in the configuration being served, by kind",
      labelNames: ["kind"],
      registers,
    });
    this.configRejections = new Counter({
      name: "nodemesh_controller_config_rejections_total",
      help: "Configurations not applied (the last good one kept serving), by reason",
      labelNames: ["reason"],
      registers,
    });
    for (const reason of CONFIG_REJECT_REASONS) this.configRejections.inc({ reason }, 0);
    // Named after prometheus_config_last_reload_successful, which alerting rules already know.
    this.configLastReloadOk = new Gauge({
      name: "nodemesh_controller_config_last_reload_successful",
      help: "1 when the last configuration read was applied (or unchanged), 0 when it was rejected or held",
      registers,
    });
    this.pendingSessions = new Gauge({
      name: "nodemesh_controller_pending_sessions",
      help: "Connections to the agent endpoint that have not yet presented a valid node token",
      registers,
    });
    this.sessionsRefused = new Counter({
      name: "nodemesh_controller_sessions_refused_total",
      help: "Connections to the agent endpoint refused before TLS, by reason",
      labelNames: ["reason"],
      registers,
    });
    for (const reason of SESSION_REFUSE_REASONS) this.sessionsRefused.inc({ reason }, 0);
    this.sessionsClosed = new Counter({
      name: "nodemesh_controller_sessions_closed_total",
      help: "Agent endpoint sessions closed by the controller, by reason",
      labelNames: ["reason"],
      registers,
    });
    this.globalRateLimitRebalances = new Counter({
      name: "nodemesh_controller_global_ratelimit_rebalances_total",
      help: "Splits of the global rate limits between their serving nodes (docs/http.md)",
      registers,
    });
    for (const reason of SESSION_CLOSE_REASONS) this.sessionsClosed.inc({ reason }, 0);
  }
}

// The agent's loop for the global rate limits: every `intervalMs` (default 1 s) it brings the limiter up to
// the current snapshot, sends the controller this node's demand on the config stream, and applies the
// shares the controller sends back. Without a channel (a static config, or a controller that predates the
// message) nothing is sent and every node keeps its initial split R / N. The Prometheus series read the
// limiter at scrape time, so the hot path pays for plain counters only.
import { createRequire } from "node:module";
import type * as PromClient from "prom-client";
import {
  DEFAULT_DEMAND_REPORT_MS,
  type DemandReport,
  type RateLimitShares,
} from "../../controller/api/index.ts";
import type { GlobalLimiter } from "./global-limiter.ts";
import type { MeshView } from "../state/view.ts";
import type { LocalRateLimiter } from "./local-ratelimit.ts";

const require = createRequire(import.meta.url);
const Gauge = require("prom-client/lib/gauge.js") as typeof PromClient.Gauge;
const Counter = require("prom-client/lib/counter.js") as typeof PromClient.Counter;

/** What the controller client offers (agent/control/client.ts). */
export interface RateLimitChannel {
  onShares(cb: (message: RateLimitShares) => void): () => void;
  sendDemand(report: DemandReport): boolean;
}

export class GlobalRateLimitReporter {
  readonly #limiter: LocalRateLimiter;
  readonly #channel: RateLimitChannel | undefined;
  readonly #view: () => MeshView | undefined;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(opts: {
    limiter: LocalRateLimiter;
    channel: RateLimitChannel | undefined;
    view: () => MeshView | undefined;
    intervalMs?: number;
  }) {
    this.#limiter = opts.limiter;
    this.#channel = opts.channel;
    this.#view = opts.view;
    this.#intervalMs = opts.intervalMs ?? DEFAULT_DEMAND_REPORT_MS;
    if (!(this.#intervalMs >= 10))
      throw new RangeError(
        `global rate limit report interval must be at least 10 ms, got ${opts.intervalMs}`,
      );
  }

  start(): void {
    if (this.#timer) return;
    this.#unsubscribe = this.#channel?.onShares((m) => {
      this.#refresh();
      this.#limiter.global.applyShares(m);
    });
    this.#timer = setInterval(() => this.tick(), this.#intervalMs);
    this.#timer.unref();
  }

  /** One report (tests call it directly). */
  tick(): void {
    this.#refresh();
    const report = this.#limiter.global.report();
    if (report) this.#channel?.sendDemand(report);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  #refresh(): void {
    const v = this.#view();
    if (v) this.#limiter.observe(v);
  }
}

/**
 * The agent's global rate-limit series, by policy and destination service host:
 * the share this node enforces (gauge), the demand it last reported, and the requests the limit admitted
 * and refused here (a counter from when the limit appeared on this node).
 */
export function registerGlobalRateLimitMetrics(registry: PromClient.Registry, limiter: GlobalLimiter): void {
  const registers = [registry];
  const labelNames = ["policy", "destination_service"] as const;
  const series = (
    name: string,
    help: string,
    value: (d: ReturnType<GlobalLimiter["dump"]>[number]) => number,
  ) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const d of limiter.dump())
          this.set({ policy: d.policy, destination_service: d.service }, value(d));
      },
    });
  series(
    "nodemesh_global_ratelimit_share_requests_per_second",
    "This node's share of a global rate limit (requests per second), as the controller last split it.",
    (d) => d.shareRequestsPerSecond,
  );
  series(
    "nodemesh_global_ratelimit_demand_requests_per_second",
    "Requests per second that reached a global rate limit on this node, as last reported to the controller.",
    (d) => d.reportedPerSecond,
  );
  new Counter({
    name: "nodemesh_global_ratelimit_requests_total",
    help: "Requests that reached a global rate limit on this node, by result (admitted, refused with 429).",
    labelNames: [...labelNames, "result"],
    registers,
    collect() {
      // The limiter holds the counts (plain numbers on the hot path); a scrape copies them in.
      this.reset();
      for (const d of limiter.dump()) {
        const l = { policy: d.policy, destination_service: d.service };
        this.inc({ ...l, result: "admitted" }, d.admitted);
        this.inc({ ...l, result: "refused" }, d.refused);
      }
    },
  });
}

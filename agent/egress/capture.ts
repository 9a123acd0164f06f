// The kernel side of the outbound traffic policy. ALLOW_ANY keeps today's capture (meshed destinations
// and ExternalService addresses only: an unknown destination never reaches the agent, at no cost);
// REGISTRY_ONLY turns on all-TCP capture, so that every connect of an enrolled workload reaches the agent,
// which refuses what the registry does not know (agent/proxy/plan.ts).
//
// Fail closed and loud: when REGISTRY_ONLY cannot be applied (a datapath without all-TCP capture, or the
// kernel map write failing) unknown destinations would silently pass, so the agent logs an error on every
// config, reports not ready (`outbound-traffic-policy`) and shows the problem in /config_dump.
import type { OutboundTrafficMode } from "../../controller/api/index.ts";
import type { Datapath } from "../datapath/datapath.ts";
import type { Logger } from "../log.ts";

export class OutboundCapture {
  readonly #datapath: Datapath;
  readonly #log: Logger;
  /** What the kernel was last set to; undefined = not yet set by this agent (pins may hold either). */
  #captureAll: boolean | undefined;
  #mode: OutboundTrafficMode = "ALLOW_ANY";
  #problem: string | undefined;

  constructor(datapath: Datapath, log: Logger) {
    this.#datapath = datapath;
    this.#log = log;
  }

  /** Applies a snapshot's mode; cheap when nothing changed (one comparison). */
  apply(mode: OutboundTrafficMode): void {
    this.#mode = mode;
    const want = mode === "REGISTRY_ONLY";
    if (this.#captureAll === want && this.#problem === undefined) return;
    if (!this.#datapath.setCaptureAll) {
      this.#problem = want
        ? "REGISTRY_ONLY is not enforced: this datapath cannot capture every connection (use the eBPF datapath)"
        : undefined;
      if (this.#problem) this.#log.error({ mode }, this.#problem);
      return;
    }
    try {
      this.#datapath.setCaptureAll(want);
      this.#captureAll = want;
      this.#problem = undefined;
      this.#log.info({ mode, captureAll: want }, "outbound traffic policy applied");
    } catch (err) {
      // Failing to turn capture *off* leaves unknown destinations refused: closed, but still an error.
      this.#problem = `outbound traffic policy ${mode} not applied in the kernel: ${(err as Error).message}`;
      this.#log.error({ err, mode }, this.#problem);
    }
  }

  /** Undefined when the kernel does what the mode says. */
  get problem(): string | undefined {
    return this.#problem;
  }

  dump(): object {
    return { mode: this.#mode, captureAll: this.#captureAll ?? "unset", problem: this.#problem };
  }
}

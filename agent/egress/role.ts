// Egress, as app.ts wires it: one object per agent that owns the DNS answers of ExternalService hosts,
// the kernel capture mode of the outbound traffic policy, the direct-egress carrier, and the egress
// gateways of this node's workloads. app.ts calls it at a few points of a snapshot's life (view built,
// view applied, workload enrolled) and asks it for readiness and its config-dump section.
import type { Server } from "node:net";
import type { AgentSettings } from "../config.ts";
import type { Datapath } from "../datapath/datapath.ts";
import type { Logger } from "../log.ts";
import type { ConnectionManager } from "../proxy/connections.ts";
import type { MeshView } from "../state/view.ts";
import type { RequestTelemetry } from "../telemetry/http.ts";
import type { AgentMetrics } from "../telemetry/metrics.ts";
import { OutboundCapture } from "./capture.ts";
import { directEgress } from "./direct.ts";
import { HostResolver, type Lookup } from "./dns.ts";
import { EgressGateway } from "./gateway.ts";
import type { OpenSocket } from "./originate.ts";
import { sessionIdleMs } from "../proxy/tunnel/settings.ts";

export interface EgressRoleDeps {
  readonly datapath: Datapath;
  readonly log: Logger;
  readonly metrics: AgentMetrics;
  readonly requests: RequestTelemetry;
  readonly connections: ConnectionManager;
  readonly settings: Pick<AgentSettings, "connectTimeoutMs" | "connectAttempts" | "pingIntervalMs">;
  view(): MeshView;
  /** Rebuilds the view from the current snapshot (DNS answers changed). */
  readonly reapply: () => void;
  /** Tests inject a resolver; default: the system's getaddrinfo. */
  readonly lookup?: Lookup;
  readonly dnsRefreshMs?: number;
}

export class EgressRole {
  readonly #deps: EgressRoleDeps;
  readonly #open: OpenSocket;
  readonly #dns: HostResolver;
  readonly #capture: OutboundCapture;
  /** The carrier OutboundProxy hands direct-egress plans to. */
  readonly direct: ReturnType<typeof directEgress>;

  constructor(deps: EgressRoleDeps) {
    this.#deps = deps;
    const log = deps.log.child({ part: "egress" });
    this.#open = (uid, address, port) => deps.datapath.connectApp(uid, address, port);
    this.#dns = new HostResolver({
      log,
      onChange: deps.reapply,
      ...(deps.lookup ? { lookup: deps.lookup } : {}),
      ...(deps.dnsRefreshMs ? { refreshMs: deps.dnsRefreshMs } : {}),
    });
    this.#capture = new OutboundCapture(deps.datapath, log);
    this.direct = directEgress({ open: this.#open, metrics: deps.metrics, settings: deps.settings });
  }

  /** The DNS answers to build the next view with (a copy: the view keeps it). */
  resolved(): ReadonlyMap<string, readonly string[]> {
    return new Map(this.#dns.answers);
  }

  /** After a view is in place: the kernel capture mode, and the hosts to keep resolved. */
  applied(view: MeshView): void {
    this.#capture.apply(view.external.mode);
    void this.#dns.want(view.external.dnsHosts());
  }

  /** Is this workload served as an egress gateway (instead of an inbound tunnel)? */
  isGateway(view: MeshView, uid: string): boolean {
    return view.external.isGateway(uid);
  }

  gateway(uid: string, listener: Server): EgressGateway {
    return new EgressGateway(uid, listener, {
      view: this.#deps.view,
      metrics: this.#deps.metrics,
      requests: this.#deps.requests,
      connections: this.#deps.connections,
      log: this.#deps.log.child({ part: "egress-gateway", workload: uid }),
      open: this.#open,
      settings: this.#deps.settings,
      sessionIdleMs: sessionIdleMs(this.#deps.settings.pingIntervalMs),
    });
  }

  /** Undefined when the outbound traffic policy is enforced as configured (a readiness condition). */
  get problem(): string | undefined {
    return this.#capture.problem;
  }

  dump(view: MeshView | undefined): object {
    return {
      outboundTrafficPolicy: this.#capture.dump(),
      externalServices: view?.external.dump() ?? [],
      dns: Object.fromEntries(this.#dns.answers),
    };
  }

  close(): void {
    this.#dns.close();
  }
}

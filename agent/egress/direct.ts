// Direct egress: an ExternalService without egress gateway, carried by the source pod's own agent. The
// outside connection is made from inside the source pod's namespace (so it leaves from the pod's address,
// as it would without a mesh), optionally with TLS origination, and piped to the application's socket.
// Opaque TCP only: L7 needs the egress gateway hop (as Istio ambient needs a waypoint for it). Reported
// like any outbound connection (`nodemesh_tcp_*`, reporter="source", destination_service = the host).
import type { Socket } from "node:net";
import type { AgentSettings } from "../config.ts";
import { pipeBoth } from "../proxy/pipe.ts";
import type { DirectEgressPlan } from "../proxy/plan.ts";
import { unknownLabels, type AgentMetrics, type ConnRecord } from "../telemetry/metrics.ts";
import { EgressError, originate, type OpenSocket } from "./originate.ts";

export interface DirectEgressDeps {
  readonly open: OpenSocket;
  readonly metrics: AgentMetrics;
  readonly settings: Pick<AgentSettings, "connectAttempts">;
}

export function directEgress(deps: DirectEgressDeps): (socket: Socket, plan: DirectEgressPlan) => void {
  return (socket, plan) => void carry(deps, socket, plan);
}

async function carry(deps: DirectEgressDeps, socket: Socket, plan: DirectEgressPlan): Promise<void> {
  const { source, external: ext, destination: dst } = plan;
  const labels = unknownLabels("source");
  labels.source_workload = source.name;
  labels.source_workload_namespace = source.namespace;
  labels.source_principal = source.spiffeId;
  labels.destination_service = ext.host;
  const rec = deps.metrics.record("outbound", labels, source.address, `${dst.address}:${dst.port}`);
  let outside: Socket;
  try {
    const made = await originate(deps.open, source.uid, ext, {
      timeoutMs: plan.connectTimeoutMs,
      attempts: deps.settings.connectAttempts,
      prefer: dst.address,
    });
    outside = made.socket;
    rec.dstAddr = `${made.target.address}:${made.target.port}`;
  } catch (err) {
    const e = err instanceof EgressError ? err : new EgressError("ConnectionFailure", String(err));
    return fail(deps, socket, rec, e.flag, e.message);
  }
  if (socket.destroyed) {
    outside.destroy();
    return fail(deps, socket, rec, "DownstreamConnectionTermination", "client went away");
  }
  deps.metrics.opened(rec);
  pipeBoth(socket, outside, (err) => {
    rec.received = socket.bytesRead;
    rec.sent = socket.bytesWritten;
    if (err) rec.reason = err.message;
    deps.metrics.finish(rec, false);
  });
}

function fail(deps: DirectEgressDeps, socket: Socket, rec: ConnRecord, flag: string, reason: string): void {
  rec.labels.response_flags = flag;
  rec.reason = reason;
  socket.resetAndDestroy();
  deps.metrics.finish(rec, true);
}

// Counters of what the inbound tunnel refused before any policy ran: TLS handshakes it rejected
// (nodemesh_tls_handshake_failures_total{reason}) and tunnel streams whose source it could not
// authenticate (nodemesh_tunnel_source_refused_total{reason}, agent/proxy/tunnel/source-check.ts).
// Every reason is exported at 0 from the start, so an alert can use rate() without absent().
import type * as PromClient from "prom-client";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { Counter } = { Counter: require("prom-client/lib/counter.js") as typeof PromClient.Counter };

export const SOURCE_REFUSAL_REASONS = [
  "no_identity",
  "unknown_peer_node",
  "identity_not_on_node",
  "no_source_address",
  "forged_source_address",
] as const;
export const TLS_HANDSHAKE_FAILURE_REASONS = [
  "no_certificate",
  "unknown_ca",
  "expired",
  "protocol",
  "other",
] as const;

export class SecurityCounters {
  readonly #tls: PromClient.Counter<"reason">;
  readonly #source: PromClient.Counter<"reason">;

  constructor(registry: PromClient.Registry) {
    const registers = [registry];
    this.#tls = new Counter({
      name: "nodemesh_tls_handshake_failures_total",
      help: "TLS handshakes rejected at the inbound tunnel listeners, by reason.",
      labelNames: ["reason"],
      registers,
    });
    this.#source = new Counter({
      name: "nodemesh_tunnel_source_refused_total",
      help: "Inbound tunnel streams refused because their peer node, identity or source address did not agree.",
      labelNames: ["reason"],
      registers,
    });
    for (const reason of TLS_HANDSHAKE_FAILURE_REASONS) this.#tls.inc({ reason }, 0);
    for (const reason of SOURCE_REFUSAL_REASONS) this.#source.inc({ reason }, 0);
  }

  tlsHandshakeFailed(reason: (typeof TLS_HANDSHAKE_FAILURE_REASONS)[number]): void {
    this.#tls.inc({ reason });
  }

  sourceRefused(reason: (typeof SOURCE_REFUSAL_REASONS)[number]): void {
    this.#source.inc({ reason });
  }
}

// Who is really on the other end of an inbound tunnel stream. Three facts must agree before the
// source workload's address (HBONE `forwarded: for=`, as ztunnel sends it) is believed:
// - the peer node: named by the tunnel's TCP source address (agent/state/peer-nodes.ts);
// - the peer identity: the SPIFFE ID of the client certificate, which must have a workload on that
//   node (a key stolen from a workload elsewhere is useless from another node);
// - the claimed address: a workload of that identity placed on that node; or, from a Gateway's identity
//   on one of its nodes, any address (the external client it speaks for, as Istio honours `Forwarded`
//   from waypoints and gateways only).
// Anything else is refused: a forged address is an attack, and an address taken on trust would let an
// ipBlocks rule allow or deny the wrong pod. A stream without `for=` is refused too (every agent of this
// version sends it): falling back to the node's address would let an ipBlocks ALLOW for a node match
// every pod on it.
import type { IncomingHttpHeaders } from "node:http2";
import { ipv4ToInt, type PeerNodeResolver } from "../../state/peer-nodes.ts";
import type { MeshView, WorkloadInfo } from "../../state/view.ts";
import type { SOURCE_REFUSAL_REASONS } from "../../telemetry/security.ts";

export type SourceRefusal = (typeof SOURCE_REFUSAL_REASONS)[number];

export type SourceCheck =
  | {
      readonly ok: true;
      /** The authenticated client address: the source pod's, or a Gateway's external client's. */
      readonly address: string;
      /** The source workload; undefined for a Gateway's client. */
      readonly workload: WorkloadInfo | undefined;
    }
  | { readonly ok: false; readonly reason: SourceRefusal; readonly message: string };

export interface SourceFacts {
  /** SPIFFE ID of the peer certificate (undefined: none). */
  readonly principal: string | undefined;
  /** TCP source address of the tunnel connection. */
  readonly tunnelSource: string;
  /** The `for=` of the stream's `forwarded` header, port stripped (undefined: absent). */
  readonly forwardedFor: string | undefined;
}

export function authenticateSource(view: MeshView, nodes: PeerNodeResolver, facts: SourceFacts): SourceCheck {
  const { principal, tunnelSource, forwardedFor } = facts;
  if (!principal) return refuse("no_identity", "peer certificate has no SPIFFE ID");
  const candidates = nodes.nodesOf(view, tunnelSource);
  if (candidates.length === 0) {
    return refuse(
      "unknown_peer_node",
      `tunnel from ${tunnelSource} comes from no known node of the mesh (peer ${principal})`,
    );
  }
  const onNode = candidates.filter((n) => view.identityOnNode(principal, n));
  const where = candidates.length === 1 ? `node ${candidates[0]}` : `nodes ${candidates.join(", ")}`;
  if (onNode.length === 0) {
    return refuse(
      "identity_not_on_node",
      `peer identity ${principal} has no workload on ${where}, where the tunnel comes from`,
    );
  }
  if (forwardedFor === undefined || forwardedFor === "") {
    return refuse(
      "no_source_address",
      `tunnel stream from ${principal} on ${where} carries no source address (forwarded: for=)`,
    );
  }
  if (view.isGatewayIdentity(principal)) {
    if (!isIpv4(forwardedFor)) {
      return refuse("forged_source_address", `gateway ${principal} sent a malformed for= "${forwardedFor}"`);
    }
    return { ok: true, address: forwardedFor, workload: undefined };
  }
  const w = view.workloadByAddress(forwardedFor);
  if (!w || w.spiffeId !== principal || !onNode.includes(w.node)) {
    return refuse(
      "forged_source_address",
      `source address ${forwardedFor} is not a workload of ${principal} on ${where}` +
        (w ? ` (it is ${w.uid}, ${w.spiffeId} on node ${w.node})` : " (no workload has it)"),
    );
  }
  return { ok: true, address: w.address, workload: w };
}

function isIpv4(s: string): boolean {
  return ipv4ToInt(s) !== undefined;
}

function refuse(reason: SourceRefusal, message: string): SourceCheck {
  return { ok: false, reason, message };
}

interface Forwarded {
  readonly for?: string;
  readonly host?: string;
}
const NO_FORWARDED: Forwarded = Object.freeze({});
// The destination reads one stream's header three times (source check, routing, report): the last
// parse is kept, and a caller never changes the frozen result.
let lastForwarded: { value: string; parsed: Forwarded } | undefined;

/** `forwarded: for="10.0.0.1:5000";host="svc.ns"` (RFC 7239, the subset ztunnel sends). */
export function parseForwarded(value: string | string[] | undefined): Forwarded {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return NO_FORWARDED;
  if (lastForwarded?.value === v) return lastForwarded.parsed;
  const parsed = Object.freeze(parseForwardedValue(v));
  lastForwarded = { value: v, parsed };
  return parsed;
}

function parseForwardedValue(v: string): { for?: string; host?: string } {
  const out: { for?: string; host?: string } = {};
  // Only the first element: a proxy appends its own after a comma, and the first is the origin's.
  for (const part of (v.split(",")[0] ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const k = part.slice(0, eq).trim().toLowerCase();
    const val = part
      .slice(eq + 1)
      .trim()
      .replace(/^"|"$/g, "");
    if (k === "for") out.for = val.replace(/:\d+$/, "");
    else if (k === "host") out.host = val;
  }
  return out;
}

/** The source facts of one stream. */
export function sourceFacts(
  headers: IncomingHttpHeaders,
  principal: string | undefined,
  tunnelSource: string,
): SourceFacts {
  return { principal, tunnelSource, forwardedFor: parseForwarded(headers["forwarded"]).for };
}

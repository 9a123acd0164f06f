// The wire between the chained CNI plugin (cni/nodemesh-cni.ts) and the node agent
// (agent/node/cni-server.ts): one JSON request and one JSON answer per unix-socket connection, each
// a single line. Types and validation only, no I/O, and no imports outside node:, so the plugin
// can be copied onto a host by itself (the chart's installer does) and the agent shares the code.

import { isIPv4 } from "node:net";

/** Where the agent listens; the chart mounts the host's /var/run/nodemesh into the agent. */
export const DEFAULT_CNI_SOCKET = "/var/run/nodemesh/cni.sock";
/** Upper bound of one request's wait, so a confused plugin cannot hold an agent slot forever. */
export const MAX_WAIT_MS = 120_000;

/**
 * What the plugin knows of the pod besides its UID: the IPv4 address from the previous plugin's
 * result (a kubelet publishes it only after ADD, so the agent enrolls a pod without an IP in the API
 * with this one), and K8S_POD_NAMESPACE / K8S_POD_NAME, which the agent checks against the
 * controller's pod of that UID. Identity never comes from here.
 */
export interface PodFacts {
  readonly address?: string;
  readonly namespace?: string;
  readonly name?: string;
}

/**
 * add: "this pod's sandbox is being set up in netns N; answer once it is enrolled, or once the
 * controller says it is not meshed" (waits up to waitMs); check: "is it enrolled (or not meshed)
 * now?" (no wait); del: "forget the netns hint".
 */
export type CniRequest =
  | {
      readonly op: "add";
      readonly podUid: string;
      readonly netns: string;
      readonly waitMs: number;
      readonly facts?: PodFacts;
    }
  | { readonly op: "check"; readonly podUid: string }
  | { readonly op: "del"; readonly podUid: string };

/**
 * ok: the sandbox may start; `notMeshed` when that is because the controller says the pod is not in
 * the mesh (nothing was enrolled). Anything else, malformed answers included, is a refusal.
 */
export type CniAnswer =
  { readonly ok: true; readonly notMeshed?: true } | { readonly ok: false; readonly error: string };

// Pod UIDs are RFC 4122 strings on every kubelet; accepting less would let garbage become map keys.
const UID = /^[0-9a-fA-F-]{1,64}$/;
// Kubernetes names: a namespace is a DNS label, a pod name a DNS subdomain.
const K8S_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function facts(o: Record<string, unknown>): PodFacts | undefined {
  const f = o["facts"];
  if (f === undefined) return undefined;
  if (typeof f !== "object" || f === null || Array.isArray(f)) throw new Error("facts must be an object");
  const r = f as Record<string, unknown>;
  const out: { address?: string; namespace?: string; name?: string } = {};
  for (const k of Object.keys(r))
    if (k !== "address" && k !== "namespace" && k !== "name") throw new Error(`facts.${k} is not known`);
  if (r["address"] !== undefined) {
    if (typeof r["address"] !== "string" || !isIPv4(r["address"]))
      throw new Error("facts.address must be an IPv4 address");
    out.address = r["address"];
  }
  for (const k of ["namespace", "name"] as const) {
    const v = r[k];
    if (v === undefined) continue;
    if (typeof v !== "string" || !K8S_NAME.test(v)) throw new Error(`facts.${k} must be a Kubernetes name`);
    out[k] = v;
  }
  return out;
}

function field(o: Record<string, unknown>, name: string): string {
  const v = o[name];
  if (typeof v !== "string" || v === "") throw new Error(`${name} must be a non-empty string`);
  return v;
}

/** Parses one request line; throws an Error whose message names the bad field. */
export function parseRequest(line: string): CniRequest {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw new Error("request is not JSON");
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new Error("request must be a JSON object");
  const o = raw as Record<string, unknown>;
  const podUid = field(o, "podUid");
  if (!UID.test(podUid)) throw new Error(`podUid "${podUid}" is not a pod UID`);
  if (o["op"] === "check" || o["op"] === "del") return { op: o["op"], podUid };
  if (o["op"] !== "add")
    throw new Error(`op must be "add", "check" or "del", not ${JSON.stringify(o["op"])}`);
  const netns = field(o, "netns");
  if (!netns.startsWith("/")) throw new Error(`netns "${netns}" must be an absolute path`);
  const waitMs = o["waitMs"];
  if (typeof waitMs !== "number" || !Number.isInteger(waitMs) || waitMs < 0 || waitMs > MAX_WAIT_MS)
    throw new Error(`waitMs must be an integer from 0 to ${MAX_WAIT_MS}`);
  const f = facts(o);
  return { op: "add", podUid, netns, waitMs, ...(f ? { facts: f } : {}) };
}

/** Parses the agent's answer line; a malformed one is a failure (fail closed). */
export function parseAnswer(line: string): CniAnswer {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return { ok: false, error: "the agent's answer is not JSON" };
  }
  const o = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  if (o["ok"] === true) return o["notMeshed"] === true ? { ok: true, notMeshed: true } : { ok: true };
  return {
    ok: false,
    error: typeof o["error"] === "string" ? o["error"] : "the agent refused without a reason",
  };
}

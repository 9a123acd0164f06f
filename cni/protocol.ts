// The CNI side of the plugin (CNI spec 1.1, with 0.3.0-1.0.0 configs accepted): reading the
// environment and the network config, the result or error JSON written back. Pure: the runtime's
// inputs in, a decision out; nodemesh-cni.ts does the I/O. No imports outside cni/ and node:.
import { DEFAULT_CNI_SOCKET, MAX_WAIT_MS } from "./wire.ts";

export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
/** Spec error codes used here; 100+ are ours. */
export const ERR = {
  incompatibleVersion: 1,
  invalidEnv: 4,
  ioFailure: 5,
  decode: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  notEnrolled: 100,
} as const;
/**
 * Long enough for the controller's watch and the agent's enrolment (about 100 ms in the lab), short
 * enough that a kubelet retrying the sandbox does not look hung; the kubelet's own CRI timeout is 4 min.
 */
export const DEFAULT_ENROLL_TIMEOUT_MS = 10_000;
/** Namespaces whose pods are passed through untouched: the mesh itself and the cluster's plumbing. */
export const DEFAULT_EXCLUDE_NAMESPACES = ["kube-system", "nodemesh-system"];

export class CniError extends Error {
  readonly code: number;
  readonly details: string | undefined;
  constructor(code: number, msg: string, details?: string) {
    super(msg);
    this.code = code;
    this.details = details;
  }
}

export interface PluginConfig {
  readonly cniVersion: string;
  readonly agentSocket: string;
  readonly enrollTimeoutMs: number;
  readonly excludeNamespaces: readonly string[];
  /** The previous plugin's result, passed through unchanged on ADD. */
  readonly prevResult: Record<string, unknown> | undefined;
}

/** What the runtime asks, from the CNI_* environment. */
export type Invocation =
  | { readonly command: "VERSION" }
  | { readonly command: "ADD" | "CHECK"; readonly netns: string; readonly pod: PodArgs | undefined }
  | { readonly command: "DEL"; readonly pod: PodArgs | undefined };

export interface PodArgs {
  readonly uid: string;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
}

/** CNI_ARGS is "K1=V1;K2=V2" (spec: "Extra arguments passed in by the user at invocation time"). */
export function parseCniArgs(args: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const pair of (args ?? "").split(";")) {
    const i = pair.indexOf("=");
    if (i > 0) out.set(pair.slice(0, i), pair.slice(i + 1));
  }
  return out;
}

function podArgs(env: NodeJS.ProcessEnv): PodArgs | undefined {
  const a = parseCniArgs(env["CNI_ARGS"]);
  const uid = a.get("K8S_POD_UID");
  if (!uid) return undefined;
  return { uid, namespace: a.get("K8S_POD_NAMESPACE"), name: a.get("K8S_POD_NAME") };
}

export function parseInvocation(env: NodeJS.ProcessEnv): Invocation {
  const command = env["CNI_COMMAND"];
  if (command === "VERSION") return { command };
  if (command === "DEL") return { command, pod: podArgs(env) };
  if (command === "ADD" || command === "CHECK") {
    if (!env["CNI_CONTAINERID"]) throw new CniError(ERR.invalidEnv, "CNI_CONTAINERID is not set");
    const netns = env["CNI_NETNS"];
    if (!netns) throw new CniError(ERR.invalidEnv, `CNI_NETNS is not set (required for ${command})`);
    if (!netns.startsWith("/"))
      throw new CniError(ERR.invalidEnv, `CNI_NETNS "${netns}" must be an absolute path`);
    return { command, netns, pod: podArgs(env) };
  }
  throw new CniError(
    ERR.invalidEnv,
    `CNI_COMMAND ${JSON.stringify(command ?? "")} is not supported (ADD, DEL, CHECK, VERSION)`,
  );
}

function optionalNumber(o: Record<string, unknown>, name: string, fallback: number): number {
  const v = o[name];
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > MAX_WAIT_MS)
    throw new CniError(
      ERR.invalidConfig,
      `network config ${name} must be an integer from 0 to ${MAX_WAIT_MS}`,
    );
  return v;
}

function stringList(
  o: Record<string, unknown>,
  name: string,
  fallback: readonly string[],
): readonly string[] {
  const v = o[name];
  if (v === undefined) return fallback;
  if (!Array.isArray(v) || !v.every((s) => typeof s === "string" && s !== ""))
    throw new CniError(ERR.invalidConfig, `network config ${name} must be a list of namespace names`);
  return v as string[];
}

/** The network config on stdin; `needPrev` for ADD, where a chained plugin must have a prevResult. */
export function parseConfig(stdin: string, needPrev: boolean): PluginConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch {
    throw new CniError(ERR.decode, "the network config on stdin is not JSON");
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new CniError(ERR.decode, "the network config on stdin must be a JSON object");
  const o = raw as Record<string, unknown>;
  const cniVersion = o["cniVersion"];
  if (typeof cniVersion !== "string")
    throw new CniError(ERR.invalidConfig, "network config cniVersion is missing");
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(cniVersion))
    throw new CniError(
      ERR.incompatibleVersion,
      `cniVersion ${cniVersion} is not supported`,
      `supported: ${SUPPORTED_VERSIONS.join(", ")}`,
    );
  const socket = o["agentSocket"] ?? DEFAULT_CNI_SOCKET;
  if (typeof socket !== "string" || !socket.startsWith("/"))
    throw new CniError(ERR.invalidConfig, "network config agentSocket must be an absolute path");
  const prev = o["prevResult"];
  if (prev !== undefined && (typeof prev !== "object" || prev === null || Array.isArray(prev)))
    throw new CniError(ERR.invalidConfig, "network config prevResult must be an object");
  if (needPrev && prev === undefined)
    throw new CniError(
      ERR.invalidConfig,
      "nodemesh-cni is a chained plugin and got no prevResult: list it after the interface plugin in the .conflist",
    );
  return {
    cniVersion,
    agentSocket: socket,
    enrollTimeoutMs: optionalNumber(o, "enrollTimeoutMs", DEFAULT_ENROLL_TIMEOUT_MS),
    excludeNamespaces: stringList(o, "excludeNamespaces", DEFAULT_EXCLUDE_NAMESPACES),
    prevResult: prev as Record<string, unknown> | undefined,
  };
}

/** ADD's stdout: the previous result unchanged but for the version the runtime asked for. */
export function addResult(config: PluginConfig): Record<string, unknown> {
  return { ...config.prevResult, cniVersion: config.cniVersion };
}

export function versionResult(cniVersion: string): Record<string, unknown> {
  return { cniVersion, supportedVersions: [...SUPPORTED_VERSIONS] };
}

export function errorResult(cniVersion: string, err: unknown): Record<string, unknown> {
  if (err instanceof CniError)
    return { cniVersion, code: err.code, msg: err.message, ...(err.details ? { details: err.details } : {}) };
  return { cniVersion, code: ERR.ioFailure, msg: err instanceof Error ? err.message : String(err) };
}

/** Is this pod ours to hold? Non-Kubernetes sandboxes and excluded namespaces pass through. */
export function podToEnroll(pod: PodArgs | undefined, config: PluginConfig): PodArgs | undefined {
  if (!pod) return undefined;
  if (pod.namespace && config.excludeNamespaces.includes(pod.namespace)) return undefined;
  return pod;
}
